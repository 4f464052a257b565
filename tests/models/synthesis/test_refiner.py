"""The gated-convolution refiner: structure, conditioning, identity at start, overfitting a few examples."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from avworld.models.synthesis import GatedConvRefiner, RefinerConfig, flow_loss, pose_features, solve  # noqa: E402
from avworld.models.synthesis.pose import PoseError, num_pose_features  # noqa: E402
from avworld.models.synthesis.refiner import RefinerConfigError  # noqa: E402


def test_default_is_the_seeds_stack_of_30_gated_blocks_with_cycling_dilations():
    m = GatedConvRefiner(RefinerConfig(channels=4, emb_dim=8))
    assert len(m.blocks) == 30
    assert [b.conv.dilation[0] for b in m.blocks] == [2 ** (i % 10) for i in range(30)]
    # receptive field: 1 + 2 * 3 * (1 + 2 + ... + 512) samples
    assert m.config.receptive_field == 1 + 2 * 3 * 1023


def test_gate_is_tanh_times_sigmoid_with_residual_and_skip(one_torch_thread):
    torch.manual_seed(0)
    m = GatedConvRefiner(RefinerConfig(channels=4, blocks=1, emb_dim=8))
    blk = m.blocks[0]
    h, emb, cond = torch.randn(2, 4, 10), torch.randn(2, 8), torch.randn(2, 4, 10)
    y = blk.conv(h + blk.emb(emb)[:, :, None]) + blk.cond(cond)
    z = blk.out(torch.tanh(y[:, :4]) * torch.sigmoid(y[:, 4:]))
    res, skip = blk(h, emb, cond)
    torch.testing.assert_close(res, (h + z[:, :4]) / math.sqrt(2))
    torch.testing.assert_close(skip, z[:, 4:])


def _inputs(b=2, T=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pose = torch.cat([torch.rand(b, 3, generator=g) * 4, torch.rand(b, 1, generator=g) * 6 - 3,
                      torch.rand(b, 3, generator=g) * 4], 1)
    return torch.randn(b, 2, T, generator=g), torch.randn(b, T, generator=g), pose


def test_untrained_refiner_returns_x_sim_unchanged(one_torch_thread):
    m = GatedConvRefiner(RefinerConfig(channels=4, blocks=3, emb_dim=8))
    x, tx, pose = _inputs()
    out = solve(lambda psi, t: m(psi, tx, pose, t), x, "euler", 4)
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def test_output_depends_on_source_audio_pose_and_time(one_torch_thread):
    torch.manual_seed(0)
    m = GatedConvRefiner(RefinerConfig(channels=4, blocks=3, emb_dim=8))
    torch.nn.init.normal_(m.head[-1].weight)  # leave the zero start
    x, tx, pose = _inputs()
    t = torch.full((2,), 0.5)
    base = m(x, tx, pose, t)
    assert base.shape == x.shape
    assert not torch.allclose(base, m(x, tx * 2, pose, t))
    assert not torch.allclose(base, m(x, tx, pose + torch.tensor([0.5, 0, 0, 0, 0, 0, 0]), t))
    assert not torch.allclose(base, m(x, tx, pose, t * 0.5))


def test_pose_features_are_relative_to_the_source():
    lst = torch.tensor([[2.0, 1.0, 1.5, 0.3]])
    src = torch.tensor([[0.5, -1.0, 1.2]])
    f = pose_features(lst, src)
    assert f.shape == (1, num_pose_features(6))
    shift = torch.tensor([[3.0, -2.0, 0.0]])
    torch.testing.assert_close(pose_features(lst + torch.cat([shift, torch.zeros(1, 1)], 1), src + shift), f)
    # the source's azimuth in the head frame: straight ahead when the listener faces it
    d = src[0, :2] - lst[0, :2]
    facing = torch.tensor([[2.0, 1.0, 1.5, float(torch.atan2(d[1], d[0]))]])
    g = pose_features(facing, src)
    # last 12 entries: sin(k yaw), sin(k az) (k = 1..3), then the cosines; az = 0 -> sin 0, cos 1
    torch.testing.assert_close(g[0, -12 + 3:-12 + 6], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(g[0, -3:], torch.ones(3), atol=1e-6, rtol=0)
    with pytest.raises(PoseError):
        pose_features(torch.zeros(1, 3), src)


def test_bad_config_is_typed():
    with pytest.raises(RefinerConfigError):
        RefinerConfig(kernel_size=2)


def test_tiny_refiner_overfits_a_few_examples(one_torch_thread):
    torch.manual_seed(0)
    m = GatedConvRefiner(RefinerConfig(channels=8, blocks=4, dilation_cycle=4, emb_dim=16))
    x_sim, tx, pose = _inputs(b=3, T=128, seed=3)
    # the "recording": a delayed, attenuated and low-passed version of the simulation
    x_rx = 0.5 * torch.roll(x_sim, 2, dims=-1) + 0.25 * torch.roll(x_sim, 3, dims=-1)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(300):
        t, eps = torch.rand(3, generator=g), torch.randn(3, 2, 128, generator=g)
        loss = flow_loss(m, tx, x_sim, x_rx, pose, t, eps)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.15 * first  # measured: 0.07
    with torch.no_grad():
        out = solve(lambda psi, t: m(psi, tx, pose, t), x_sim, "euler", 4)
    err_raw = float(((x_sim - x_rx) ** 2).mean())
    assert float(((out - x_rx) ** 2).mean()) < 0.15 * err_raw  # measured: 0.05


def test_magnitude_domain_round_trip_and_shapes(one_torch_thread):
    from avworld.models.synthesis import tf

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 4000, generator=g, dtype=torch.float64)
    m = tf.encode(x)
    assert m.shape == (2, 2 * tf.BINS, 4000 // tf.HOP + 1)
    # magnitudes with their own phase give the clip back (STFT / ISTFT with a COLA window)
    torch.testing.assert_close(tf.decode(m, x, 4000), x, atol=1e-8, rtol=0)
    # compressed magnitude: a clip twice as loud has magnitudes 2 ** 0.3 as large
    torch.testing.assert_close(tf.encode(2 * x), 2 ** tf.POWER * m)
    model = GatedConvRefiner(RefinerConfig(channels=4, blocks=2, emb_dim=8, domain="mag"))
    v = model(m.float(), tf.encode(x[:, 0].float()), torch.zeros(2, 7), torch.zeros(2))
    assert v.shape == m.shape and not v.any()  # zero start
    with pytest.raises(RefinerConfigError, match="domain"):
        RefinerConfig(domain="mel")


def test_direct_path_is_zero_at_start_and_a_per_channel_gain_in_t():
    cfg = RefinerConfig(channels=4, blocks=2, emb_dim=8, domain="mag", direct=True)
    m = GatedConvRefiner(cfg)
    g = torch.Generator().manual_seed(0)
    psi = torch.rand(2, 514, 5, generator=g)
    tx, pose = torch.rand(2, 257, 5, generator=g), torch.zeros(2, 7)
    t = torch.tensor([0.0, 0.5])
    assert not m(psi, tx, pose, t).any()
    a, b = torch.linspace(-1, 1, 514), torch.linspace(0.5, -0.5, 514)
    with torch.no_grad():
        m.direct.weight.copy_(a[:, None, None])
        m.direct_t.weight.copy_(b[:, None, None])
    expect = (a[None, :, None] + t[:, None, None] * b[None, :, None]) * psi
    torch.testing.assert_close(m(psi, tx, pose, t), expect)


def test_ears_path_is_a_2x2_matrix_per_bin_over_the_ears():
    """direct_ears: each ear's velocity at bin f is (A_f + t B_f) applied to (psi_L[f], psi_R[f]),
    computed here by an explicit loop over bins; the untrained path is zero."""
    cfg = RefinerConfig(channels=4, blocks=2, emb_dim=8, domain="mag", direct=True, direct_ears=True)
    m = GatedConvRefiner(cfg)
    g = torch.Generator().manual_seed(1)
    psi = torch.rand(2, 514, 5, generator=g)
    tx, pose = torch.rand(2, 257, 5, generator=g), torch.zeros(2, 7)
    t = torch.tensor([0.25, 1.0])
    assert not m(psi, tx, pose, t).any()
    A, B = torch.randn(257, 2, 2, generator=g), torch.randn(257, 2, 2, generator=g)
    with torch.no_grad():
        m.ears.copy_(A)
        m.ears_t.copy_(B)
    expect = torch.zeros_like(psi)
    for i in range(2):
        for f in range(257):
            M = A[f] + t[i] * B[f]
            left, right = psi[i, f], psi[i, 257 + f]
            expect[i, f] = M[0, 0] * left + M[0, 1] * right
            expect[i, 257 + f] = M[1, 0] * left + M[1, 1] * right
    torch.testing.assert_close(m(psi, tx, pose, t), expect)
    # a matrix that averages the ears removes an interaural level difference
    with torch.no_grad():
        m.ears.copy_(torch.tensor([[-0.5, 0.5], [0.5, -0.5]]).expand(257, 2, 2))
        m.ears_t.zero_()
    out = psi + m(psi, tx, pose, t)
    torch.testing.assert_close(out[:, :257], out[:, 257:])


def test_ears_path_needs_the_direct_path():
    with pytest.raises(RefinerConfigError, match="direct=True"):
        RefinerConfig(domain="mag", direct_ears=True)
