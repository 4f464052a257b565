"""Binaural audio codec: shapes, seeding, typed errors, the mid/side-aware loss, a tiny overfit."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from avworld.models.tokenizers import (  # noqa: E402
    AudioCodec,
    AudioCodecConfig,
    AudioCodecError,
    AudioLossError,
    BinauralCodecLoss,
    BinauralLossConfig,
    ChannelCountError,
    ClipLengthError,
    SampleRateMismatchError,
    multi_resolution_stft_loss,
)

TINY = AudioCodecConfig(base_width=4, latent_dim=8)


def _tone(freq: float, n: int = 2400, sr: int = 16_000, amp: float = 0.5) -> torch.Tensor:
    return amp * torch.sin(2 * math.pi * freq * torch.arange(n) / sr)


def _noise(b: int, seed: int = 0) -> torch.Tensor:
    return 0.2 * torch.randn(b, 2, 2400, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("causal", [False, True])
def test_round_trip_shapes_and_dtypes(batch, causal, one_torch_thread):
    codec = AudioCodec(AudioCodecConfig(base_width=4, latent_dim=12, causal=causal))
    x = _noise(batch)
    z = codec.encode(x, sample_rate=16_000)
    assert z.shape == (batch, 12, 20) and z.dtype == torch.float32
    y = codec.decode(z)
    assert y.shape == (batch, 2, 2400) and y.dtype == torch.float32
    loss, logs = codec({"audio": x, "sample_rate": 16_000})
    assert loss.dim() == 0 and torch.isfinite(loss) and logs["loss"] == pytest.approx(float(loss.detach()))
    assert {"wave_l1", "stft_lr", "stft_ms", "sc_s", "logmag_m"} <= set(logs)


def test_default_config_gives_20_latent_frames():
    cfg = AudioCodecConfig()
    assert cfg.strides == (8, 5, 3) and cfg.hop == 120 and cfg.latent_frames == 20
    assert cfg.clip_seconds == pytest.approx(0.15)


def test_causal_encoder_ignores_the_future(one_torch_thread):
    codec = AudioCodec(AudioCodecConfig(base_width=4, latent_dim=8, causal=True))
    x = _noise(1)
    x2 = x.clone()
    x2[..., 1200:] = 0.0
    with torch.no_grad():
        z, z2 = codec.encode(x), codec.encode(x2)
    assert torch.equal(z[..., :10], z2[..., :10])  # frames 0-9 end at sample 1199
    assert not torch.equal(z[..., 10:], z2[..., 10:])


def test_same_seed_same_weights_same_bytes(one_torch_thread):
    x = _noise(3)
    a, b, c = AudioCodec(TINY, seed=7), AudioCodec(TINY, seed=7), AudioCodec(TINY, seed=8)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    with torch.no_grad():
        assert a.reconstruct(x).numpy().tobytes() == b.reconstruct(x).numpy().tobytes()
        assert not torch.equal(a.reconstruct(x), c.reconstruct(x))


def test_seeded_init_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    AudioCodec(TINY, seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_untrained_output_depends_on_the_input(one_torch_thread):
    codec = AudioCodec(TINY)
    x = _noise(2)
    with torch.no_grad():
        y = codec.reconstruct(x)
    assert (y[0] - y[1]).abs().mean() > 0.1 * y.abs().mean()


def test_typed_errors_for_bad_input():
    codec = AudioCodec(TINY)
    with pytest.raises(SampleRateMismatchError, match="48000 Hz.*16000 Hz"):
        codec.encode(_noise(1), sample_rate=48_000)
    with pytest.raises(SampleRateMismatchError):
        codec({"audio": _noise(1), "sample_rate": 22_050})
    with pytest.raises(ClipLengthError, match="not a multiple of the total stride 120"):
        codec.encode(torch.zeros(1, 2, 2401))
    with pytest.raises(ClipLengthError, match="expects 2400"):
        codec.encode(torch.zeros(1, 2, 4800))
    with pytest.raises(ChannelCountError, match="2 channels"):
        codec.encode(torch.zeros(1, 1, 2400))
    with pytest.raises(AudioCodecError, match="shape"):
        codec.encode(torch.zeros(2, 2400))
    with pytest.raises(AudioCodecError, match="latents"):
        codec.decode(torch.zeros(1, 8, 19))
    with pytest.raises(ClipLengthError, match="multiple of the total stride"):
        AudioCodecConfig(clip_samples=2500)
    with pytest.raises(ChannelCountError):
        AudioCodecConfig(channels=1)
    with pytest.raises(AudioLossError):
        BinauralLossConfig(fft_sizes=(100,))
    with pytest.raises(AudioLossError):
        multi_resolution_stft_loss(torch.zeros(1, 2, 2400), torch.zeros(1, 2, 1200))
    assert issubclass(ClipLengthError, ValueError) and issubclass(AudioLossError, ValueError)


def test_loss_is_zero_for_identical_inputs_and_grows_with_noise():
    loss_fn = BinauralCodecLoss()
    x = _noise(3)
    loss0, logs0 = loss_fn(x, x)
    assert float(loss0) == 0.0 and all(v == 0.0 for v in logs0.values())
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    losses = [float(loss_fn(x + a * noise, x)[0]) for a in (0.001, 0.01, 0.1)]
    assert 0 < losses[0] < losses[1] < losses[2]


def test_mid_side_terms_catch_a_polarity_flip_of_one_ear():
    tone = _tone(500)
    target = torch.stack([tone, tone])[None]  # source in front: L == R
    flipped = torch.stack([tone, -tone])[None]  # same |L|, |R|; interaural phase 180 degrees
    terms = multi_resolution_stft_loss(flipped, target)
    assert float(terms["sc_l"]) < 1e-6 and float(terms["sc_r"]) < 1e-6
    assert float(terms["logmag_l"]) < 1e-6 and float(terms["logmag_r"]) < 1e-6
    assert float(terms["lr"]) < 1e-6
    assert float(terms["sc_m"]) > 0.9 and float(terms["sc_s"]) > 0.9 and float(terms["ms"]) > 1.0
    loss, logs = BinauralCodecLoss()(flipped, target)
    assert logs["stft_ms"] > 1.0 and logs["stft_lr"] < 1e-6


def test_tiny_codec_overfits_four_clips_and_keeps_left_left(one_torch_thread):
    # Warm-up loss (waveform-led, no log term; see audio_losses): STFT terms are ramped in later.
    warmup = BinauralLossConfig(w_lr=0.1, w_ms=0.1, w_logmag=0.0)
    cfg = AudioCodecConfig(base_width=8, latent_dim=16, loss=warmup)
    codec = AudioCodec(cfg, seed=0)
    silent = torch.zeros(2400)
    x = torch.stack([torch.stack([_tone(440), silent]), torch.stack([silent, _tone(1000)]), _noise(1)[0],
                     torch.stack([_tone(1000), _tone(1000)])])
    opt = torch.optim.Adam(codec.parameters(), lr=3e-3)
    first = None
    for _ in range(200):
        loss, logs = codec({"audio": x, "sample_rate": 16_000})
        first = logs["loss"] if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final, _ = codec({"audio": x})
        y = codec.reconstruct(x)
    assert float(final) < first / 5
    energy = y.square().sum(-1)
    ild_left = 10 * torch.log10(energy[0, 0] / energy[0, 1])
    ild_right = 10 * torch.log10(energy[1, 0] / energy[1, 1])
    assert ild_left > 3.0 and ild_right < -3.0  # measured: +8.6 dB and -29 dB


def test_tokenizers_do_not_import_the_simulator():
    import subprocess
    import sys

    code = ("import sys, avworld.models.tokenizers; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in "
            "(['avworld', 'geometry'], ['avworld', 'acoustics'], ['avworld', 'sim'], ['avworld', 'tasks'])]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_latent_scale_and_input_gain_round_trip():
    cfg = AudioCodecConfig(base_width=4, latent_dim=8, input_gain=100.0)
    codec = AudioCodec(cfg, seed=0).eval()
    x = torch.randn(3, 2, cfg.clip_samples, generator=torch.Generator().manual_seed(1)) * 0.01
    with torch.no_grad():
        z = codec.encode(x)
        scale = codec.measure_latent_scale(x)
        assert scale == pytest.approx(1.0 / z.double().std(unbiased=False).item(), rel=1e-6)
        codec.set_latent_scale(scale)
        assert torch.allclose(codec.encode_latents(x), z * scale)
        assert torch.allclose(codec.decode_latents(codec.encode_latents(x)), codec.decode(z), atol=1e-6)
        # the gain is undone after decoding: the network sees x * 100, the output is at the input's scale
        unit = AudioCodec(AudioCodecConfig(base_width=4, latent_dim=8), seed=0).eval()
        assert torch.allclose(unit.decoder(unit.encoder(x * 100)) / 100, codec.reconstruct(x), atol=1e-6)
    assert "latent_scale" in codec.state_dict()
    with pytest.raises(AudioCodecError, match="finite positive"):
        codec.set_latent_scale(0.0)
    with pytest.raises(AudioCodecError, match="input_gain"):
        AudioCodecConfig(input_gain=-1.0)
