"""AV-Nav and AGSA: shapes, SAM / AGDF behaviour, ablations, GRU resets."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from avworld.models.encoders import AudioCNN, VisualCNN, conv_plan  # noqa: E402
from avworld.models.nav import (  # noqa: E402
    AGSAConfig,
    AudioGuidedDynamicFusion,
    ModelConfigError,
    StereoAwareAttention,
    build_policy,
    model_config,
)

SMALL = {"hidden_size": 32, "visual_size": 32, "audio_size": 32, "visual_channels": (4, 8, 8),
         "audio_channels": (4, 8, 8)}
SHAPES = {"rgb": (16, 16, 3), "depth": (16, 16, 1), "spectrogram": (2, 65, 7), "pointgoal": (2,)}


def _obs(b: int, shapes=SHAPES, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    h, w = shapes["rgb"][:2]
    return {"rgb": torch.randint(0, 256, (b, h, w, 3), generator=g, dtype=torch.uint8),
            "depth": torch.rand(b, h, w, 1, generator=g), "spectrogram": torch.rand(b, *shapes["spectrogram"],
                                                                                   generator=g),
            "pointgoal": torch.rand(b, 2, generator=g)}


def _policy(agent: str, ablations=(), shapes=SHAPES, **kw):
    torch.manual_seed(0)
    cfg = model_config(agent, ablations, **{**SMALL, "visual_keys": ("rgb", "depth"), **kw})
    return build_policy(agent, shapes, 4, config=cfg)


def test_conv_plan_adapts_to_short_spectrograms():
    plan, out = conv_plan((65, 7), (5, 3, 3), (2, 2, 1))
    assert plan == [((5, 5), (2, 2)), ((3, 2), (2, 1)), ((3, 1), (1, 1))]
    assert out == (13, 1)
    assert conv_plan((128, 128), (8, 4, 3), (4, 2, 1))[1] == (12, 12)  # SoundSpaces' visual CNN at 128x128


@pytest.mark.parametrize("ft", [(65, 7), (65, 26), (65, 1), (128, 64)])
def test_audio_cnn_any_spectrogram_length(ft):
    enc = AudioCNN(2, ft, 16)
    assert enc(torch.rand(3, 2, *ft)).shape == (3, 16)


def test_visual_cnn_default_sizes():
    enc = VisualCNN(4, (128, 128))
    assert enc(torch.rand(2, 4, 128, 128)).shape == (2, 512)
    assert [m.out_channels for m in enc.cnn if isinstance(m, torch.nn.Conv2d)] == [32, 64, 64]


@pytest.mark.parametrize("agent", ["avnav", "agsa"])
@pytest.mark.parametrize("ablations", [(), ("audio-only",), ("modality-dropout",)])
def test_act_and_evaluate_shapes(agent, ablations):
    p = _policy(agent, ablations)
    b = 3
    out = p.act(_obs(b), p.initial_state(b), torch.ones(b, dtype=torch.bool))
    assert out.action.shape == (b,) and out.action.dtype == torch.long
    assert out.log_prob.shape == out.value.shape == (b,)
    assert out.hidden.shape == (1, b, 32)
    t, n = 5, 2
    seq = {k: v.view(t, n, *v.shape[1:]) for k, v in _obs(t * n).items()}
    lp, v, ent, aux = p.evaluate_actions(seq, p.initial_state(n), torch.zeros(t, n, dtype=torch.bool),
                                         torch.zeros(t, n, dtype=torch.long))
    assert lp.shape == v.shape == ent.shape == (t, n)
    if agent == "agsa":
        assert aux["omega"].shape == (t * n, 32)


def test_default_sizes_match_soundspaces():
    shapes = {"depth": (128, 128, 1), "spectrogram": (2, 65, 7)}
    p = build_policy("avnav", shapes, 4, config=model_config("avnav", visual_keys=("depth",)))
    assert p.state_encoder.rnn.hidden_size == 512 and p.state_encoder.rnn.input_size == 1024
    assert p.actor.in_features == 512 and p.critic.out_features == 1
    a = build_policy("agsa", shapes, 4, config=model_config("agsa", visual_keys=("depth",)))
    assert a.state_encoder.rnn.input_size == 512  # AGDF output


def test_continuous_actions():
    p = build_policy("avnav", SHAPES, 3, continuous=True, config=model_config("avnav", **SMALL))
    out = p.act(_obs(2), p.initial_state(2), torch.ones(2, dtype=torch.bool), generator=torch.Generator())
    assert out.action.shape == (2, 3) and out.log_prob.shape == (2,)


def test_sam_uses_stereo_disparity():
    torch.manual_seed(0)
    sam = StereoAwareAttention((65, 7), out_size=24, channels=(4, 8, 8), heads=2)
    x = torch.rand(4, 2, 65, 7)
    y = sam(x)
    assert y.shape == (4, 24)
    swapped = sam(x.flip(1))  # left and right ears exchanged
    assert not torch.allclose(y, swapped, atol=1e-4)
    mono = torch.rand(4, 1, 65, 7).expand(4, 2, 65, 7)  # identical ears: swapping changes nothing
    assert torch.allclose(sam(mono), sam(mono.flip(1)))


def test_sam_output_depends_on_cross_attention():
    torch.manual_seed(0)
    sam = StereoAwareAttention((65, 7), out_size=16, channels=(4, 8, 8), heads=2)
    x = torch.rand(2, 2, 65, 7)
    y = sam(x)
    with torch.no_grad():
        sam.left_to_right.out_proj.weight.zero_()
        sam.left_to_right.out_proj.bias.zero_()
    assert not torch.allclose(y, sam(x))


@pytest.mark.parametrize("gate", ["channel", "scalar"])
def test_agdf_gate_in_unit_interval(gate):
    torch.manual_seed(0)
    agdf = AudioGuidedDynamicFusion(32, heads=4, gate=gate)
    a, v = torch.randn(6, 32) * 5, torch.randn(6, 32) * 5
    fused, aux = agdf(a, v)
    w = aux["omega"]
    assert fused.shape == (6, 32)
    assert w.shape == ((6, 32) if gate == "channel" else (6, 1))
    assert bool(((w > 0) & (w < 1)).all())
    assert bool(((aux["visual_attention"] >= 0) & (aux["visual_attention"] <= 1)).all())
    # the fused feature lies between audio and the cross-modal feature, weighted by omega
    cross = (fused - w * a) / (1 - w)
    assert torch.allclose(w * a + (1 - w) * cross, fused, atol=1e-5)
    # vision matters through the cross-modal feature
    assert not torch.allclose(fused, agdf(a, torch.randn(6, 32))[0])


def test_audio_only_ablation_ignores_images():
    p = _policy("agsa", ("audio-only",))
    o1, o2 = _obs(3, seed=1), _obs(3, seed=2)
    o2["spectrogram"] = o1["spectrogram"]
    h, s = p.initial_state(3), torch.ones(3, dtype=torch.bool)
    a, b = p.act(o1, h, s, deterministic=True), p.act(o2, h, s, deterministic=True)
    assert torch.equal(a.value, b.value) and torch.equal(a.log_prob, b.log_prob)
    full = _policy("agsa")
    assert not torch.equal(full.act(o1, h, s).value, full.act(o2, h, s).value)


def test_ablation_configs():
    assert model_config("agsa", ("static-fusion",)).fusion == "concat"
    assert model_config("agsa", ("no-sam",)).sam is False
    p = _policy("agsa", ("static-fusion", "no-sam"))
    assert p.fusion is None and p.state_encoder.rnn.input_size == 64
    with pytest.raises(ModelConfigError, match="does not apply"):
        model_config("avnav", ("no-sam",))
    with pytest.raises(ModelConfigError, match="unknown ablation"):
        model_config("agsa", ("no-ears",))
    with pytest.raises(ModelConfigError, match="fusion"):
        AGSAConfig(visual_keys=())
    with pytest.raises(ModelConfigError, match="needs observations"):
        build_policy("avnav", {"spectrogram": (2, 65, 7)}, 4)


def test_modality_dropout_is_seeded_and_zeroes_images():
    p = _policy("avnav", ("modality-dropout",))
    obs = _obs(64)
    d1 = p.drop_modalities(obs, torch.Generator().manual_seed(3))
    d2 = p.drop_modalities(obs, torch.Generator().manual_seed(3))
    dropped = (d1["depth"].flatten(1) == 0).all(1)
    assert 10 < int(dropped.sum()) < 54  # p = 0.5
    assert torch.equal(d1["rgb"], d2["rgb"]) and torch.equal(d1["spectrogram"], obs["spectrogram"])
    assert bool((d1["rgb"][dropped] == 0).all()) and torch.equal(d1["rgb"][~dropped], obs["rgb"][~dropped])


def test_gru_state_resets_at_episode_start():
    p = _policy("avnav", use_pointgoal=True)
    t, n = 6, 2
    seq = {k: v.view(t, n, *v.shape[1:]) for k, v in _obs(t * n).items()}
    start = torch.zeros(t, n, dtype=torch.bool)
    start[3, 0] = True  # env 0 starts a new episode at t = 3
    h0 = torch.randn(1, n, 32)
    acts = torch.zeros(t, n, dtype=torch.long)
    lp, v, _, _ = p.evaluate_actions(seq, h0, start, acts)
    # the new episode of env 0 does not depend on anything before it
    tail = {k: x[3:, :1] for k, x in seq.items()}
    lp2, v2, _, _ = p.evaluate_actions(tail, torch.zeros(1, 1, 32), torch.zeros(3, 1, dtype=torch.bool), acts[3:, :1])
    assert torch.allclose(v[3:, 0], v2[:, 0], atol=1e-6) and torch.allclose(lp[3:, 0], lp2[:, 0], atol=1e-6)
    # step-by-step acting gives the same values as the sequence pass
    h = h0
    for k in range(t):
        out = p.act({key: x[k] for key, x in seq.items()}, h, start[k])
        assert torch.allclose(out.value, v[k], atol=1e-5)
        h = out.hidden


@pytest.mark.parametrize("agent", ["avnav", "agsa"])
@pytest.mark.parametrize("prior", [0.02, 0.25, 0.6])
def test_stop_prior_sets_the_initial_stop_probability(agent, prior):
    policy = _policy(agent, stop_prior=prior)
    out = policy.act(_obs(8), policy.initial_state(8), torch.ones(8, dtype=torch.bool))
    assert out.action.shape == (8,)
    probs = policy._dist(torch.zeros(1, policy.config.hidden_size)).probs[0]  # hidden 0: the bias alone
    assert probs[0].item() == pytest.approx(prior, rel=1e-5)
    assert torch.allclose(probs[1:], torch.full((3,), (1 - prior) / 3))
    uniform = _policy(agent)._dist(torch.zeros(1, policy.config.hidden_size)).probs[0]
    assert torch.allclose(uniform, torch.full((4,), 0.25))
    with pytest.raises(ModelConfigError, match="stop_prior"):
        model_config(agent, stop_prior=1.0)


@pytest.mark.parametrize("agent", ["avnav", "agsa"])
def test_audio_log_compresses_the_spectrogram(agent):
    policy = _policy(agent, audio_log=True, audio_log_floor=1e-3)
    obs = _obs(3)
    x = obs["spectrogram"] * 0.05
    got = policy.audio_input({**obs, "spectrogram": x})
    assert torch.allclose(got, torch.log(x + 1e-3) - torch.log(torch.tensor(1e-3)), atol=1e-5)
    # a level ratio between the ears becomes a constant difference, whatever the overall level
    for gain in (1.0, 10.0):
        base = (x[0, 0] + 1.0) * gain
        pair = torch.stack([base * 4, base], dim=0)[None]
        y = policy.audio_input({**obs, "spectrogram": pair})
        assert torch.allclose(y[0, 0] - y[0, 1], torch.full_like(y[0, 0], torch.log(torch.tensor(4.0))), atol=2e-3)
    plain = _policy(agent)
    assert torch.equal(plain.audio_input({**obs, "spectrogram": x}), x)
    with pytest.raises(ModelConfigError, match="audio_log_floor"):
        model_config(agent, audio_log_floor=0.0)
