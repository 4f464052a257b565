"""Baselines at the tokenizers' latent size: bicubic, copy, linear PCM and mu-law resampling."""

import numpy as np
import pytest

from avworld.eval import audio_metrics as am
from avworld.eval import image_metrics as im
from avworld.eval.nav_metrics import MetricError
from avworld.eval.tokenizer_baselines import (
    BaselineError,
    bicubic_matrix,
    bicubic_roundtrip,
    copy_roundtrip,
    float16_latent_bytes,
    linear_resample_roundtrip,
    mulaw_decode,
    mulaw_encode,
    mulaw_roundtrip,
    mulaw_samples_per_ear,
    resize_bicubic,
    side_for_latent,
)

SR = 16_000


def tone(freq, amp=0.05, n=2400, right_gain=0.5, batch=1):
    t = np.arange(n) / SR
    s = amp * np.sin(2 * np.pi * freq * t)
    return np.repeat(np.stack([s, right_gain * s])[None], batch, axis=0).astype(np.float32)


def test_side_for_latent():
    assert side_for_latent(4 * 8 * 8) == 9  # 3 * 81 = 243 <= 256 < 300
    assert side_for_latent(3) == 1
    assert side_for_latent(4 * 16 * 16) == 18
    with pytest.raises(BaselineError, match="at least 3"):
        side_for_latent(2)


@pytest.mark.parametrize("shape", [(3, 64, 64, 3), (1, 48, 40, 3)])
def test_image_baselines_keep_shape_and_dtype(shape):
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for out in (bicubic_roundtrip(x, 256), copy_roundtrip(x)):
        assert out.shape == x.shape and out.dtype == np.uint8
    assert np.array_equal(copy_roundtrip(x), x)


def test_bicubic_of_a_constant_image_is_that_constant():
    x = np.full((2, 64, 64, 3), 77, dtype=np.uint8)
    x[1] = 200
    assert np.array_equal(bicubic_roundtrip(x, 256), x)


def test_bicubic_matches_pillow_bicubic():
    from PIL import Image

    a = np.random.default_rng(1).random((64, 48)).astype(np.float32)
    for h, w in [(9, 9), (32, 20), (128, 96)]:
        ref = np.asarray(Image.fromarray(a, mode="F").resize((w, h), Image.BICUBIC))
        ours = resize_bicubic(a[None, :, :, None], h, w)[0, :, :, 0]
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert np.allclose(bicubic_matrix(64, 9).sum(axis=1), 1.0)


def test_bicubic_loses_detail_but_keeps_smooth_images():
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.stack([(100 + 50 * np.sin(xx / 20.0) + 30 * np.cos(yy / 25.0))] * 3, axis=-1)
    smooth = np.repeat(smooth[None], 2, axis=0).round().astype(np.uint8)
    assert im.psnr(bicubic_roundtrip(smooth, 256), smooth).min() > 35
    assert im.psnr(bicubic_roundtrip(noise, 256), noise).max() < 15


def test_copy_gives_infinite_psnr_capped_by_max_db():
    x = np.random.default_rng(3).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert np.all(np.isinf(im.psnr(copy_roundtrip(x), x)))
    assert np.all(im.psnr(copy_roundtrip(x), x, max_db=100) == 100)


def test_image_errors_are_typed_and_name_the_fix():
    x = np.zeros((2, 3, 64, 64), dtype=np.uint8)
    with pytest.raises(BaselineError, match=r"transpose\(0, 2, 3, 1\)"):
        bicubic_roundtrip(x, 256)
    with pytest.raises(BaselineError, match="uint8"):
        bicubic_roundtrip(np.zeros((2, 64, 64, 3), dtype=np.float32), 256)
    for bad in (0, -4, 2.5, True):
        with pytest.raises(BaselineError, match="positive integer"):
            bicubic_roundtrip(np.zeros((1, 64, 64, 3), dtype=np.uint8), bad)
    assert issubclass(BaselineError, MetricError) and issubclass(BaselineError, ValueError)


def test_audio_baselines_keep_shape_and_dtype():
    x = np.random.default_rng(4).standard_normal((3, 2, 2400)).astype(np.float32) * 0.1
    for out in (linear_resample_roundtrip(x, 1280), mulaw_roundtrip(x, float16_latent_bytes(1280))):
        assert out.shape == x.shape and out.dtype == np.float32
    assert float16_latent_bytes(64 * 20) == 2560
    assert mulaw_samples_per_ear(2560) == 1279  # 2 bytes hold the float16 peak
    assert mulaw_samples_per_ear(2560, bits=16) == 639


def test_linear_resample_keeps_a_low_tone_and_drops_one_above_the_reduced_nyquist():
    low = tone(200.0, batch=2)
    rec = linear_resample_roundtrip(low, 3200)  # 1,600 samples per ear: Nyquist 5.33 kHz over 0.15 s
    assert am.si_sdr(rec, low).min() > 50
    assert am.lsd(rec, low).max() < 8  # what is left are the tone's -100 dB sidelobe bins
    assert am.ild_error(rec, low)[:, :3].max() < 0.01  # the 6 dB ILD survives at 125-500 Hz
    high = tone(3000.0)
    lost = linear_resample_roundtrip(high, 1280)  # 640 per ear: Nyquist 2.13 kHz
    assert np.sum(lost.astype(np.float64) ** 2) < 1e-3 * np.sum(high.astype(np.float64) ** 2)
    assert am.lsd(lost, high)[0] > 3 * am.lsd(rec, low).max()
    assert np.array_equal(linear_resample_roundtrip(low, 2 * 2400), low)  # budget of the full clip: unchanged


def test_mulaw_codes_are_within_half_a_step():
    x = np.linspace(-1, 1, 20001)
    codes = mulaw_encode(x)
    assert codes.min() == 0 and codes.max() == 255
    y = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
    y_hat = codes / 255 * 2 - 1
    assert np.abs(y_hat - y).max() <= 1 / 255 + 1e-12  # half of the step 2 / 255
    dec = mulaw_decode(codes)
    # in the linear domain the step grows with |x|: |dx/dy| = ln(256) (1 + 255 |x|) / 255
    bound = np.log1p(255) * (1 + 255 * np.maximum(np.abs(x), np.abs(dec))) / 255 / 255
    assert np.all(np.abs(dec - x) <= bound + 1e-12)


def test_mulaw_roundtrip_error_is_bounded_by_the_quantization_step():
    x = tone(440.0, amp=0.3)
    rec = mulaw_roundtrip(x, 2 * (2 * 2400) + 2)  # enough bytes for every sample: no resampling
    peak = np.abs(x).max()
    step_at_peak = np.log1p(255) * 256 / 255 / 255 * peak  # half a step at full scale, in signal units
    assert np.abs(rec - x).max() <= step_at_peak * 1.01
    assert np.abs(rec - x).max() > 0  # it did quantize
    assert np.array_equal(mulaw_roundtrip(np.zeros((2, 2, 2400), np.float32), 2560), np.zeros((2, 2, 2400)))


def test_mulaw_beats_linear_at_the_same_bytes_on_broadband_audio():
    x = np.random.default_rng(5).standard_normal((4, 2, 2400)).astype(np.float32) * 0.05
    lin = linear_resample_roundtrip(x, 1280)
    mu = mulaw_roundtrip(x, float16_latent_bytes(1280))
    assert am.si_sdr(mu, x).mean() > am.si_sdr(lin, x).mean()


def test_audio_errors_are_typed_and_name_the_fix():
    with pytest.raises(BaselineError, match=r"\(N, 2, S\)"):
        linear_resample_roundtrip(np.zeros((2, 2400, 2), np.float32), 1280)
    with pytest.raises(BaselineError, match="float"):
        mulaw_roundtrip(np.zeros((1, 2, 2400), np.int16), 2560)
    with pytest.raises(BaselineError, match="NaN"):
        linear_resample_roundtrip(np.full((1, 2, 2400), np.nan, np.float32), 1280)
    with pytest.raises(BaselineError, match="bits"):
        mulaw_roundtrip(np.zeros((1, 2, 2400), np.float32), 2560, bits=1)
    with pytest.raises(BaselineError, match="at least 4"):
        mulaw_roundtrip(np.zeros((1, 2, 2400), np.float32), 3)
    with pytest.raises(BaselineError, match="at least 2"):
        linear_resample_roundtrip(np.zeros((1, 2, 2400), np.float32), 1)
