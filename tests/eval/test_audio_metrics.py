"""Audio metrics against closed forms: identical clips, known gains, delays and noise powers."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.eval.audio_metrics import (
    AudioMetricError,
    ild,
    ild_error,
    ipd_error,
    itd,
    itd_error,
    lsd,
    mr_stft_distance,
    octave_bands,
    si_sdr,
    spectral_ssim,
)
from avworld.eval.nav_metrics import MetricError

SR = 16_000
T = 2_400  # 0.15 s, the clip length of the world model


def _noise(n=3, t=T, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 2, t))


def _delayed(x, samples):
    out = np.zeros_like(x)
    out[..., samples:] = x[..., : x.shape[-1] - samples]
    return out


def test_identical_clips_give_the_ideal_values():
    x = _noise()
    np.testing.assert_allclose(lsd(x, x), 0.0, atol=1e-12)
    np.testing.assert_allclose(spectral_ssim(x, x), 1.0, atol=1e-12)
    np.testing.assert_allclose(mr_stft_distance(x, x), 0.0, atol=1e-12)
    assert np.all(np.isinf(si_sdr(x, x)))
    np.testing.assert_allclose(si_sdr(x, x, max_db=100.0), 100.0)
    np.testing.assert_allclose(ild_error(x, x), 0.0, atol=1e-12)
    np.testing.assert_allclose(itd_error(x, x), 0.0, atol=1e-12)
    np.testing.assert_allclose(ipd_error(x, x), 0.0, atol=1e-9)


def test_a_known_gain_gives_the_known_lsd_and_mr_stft_distance():
    x = _noise()
    np.testing.assert_allclose(lsd(2 * x, x), 20 * np.log10(2), atol=1e-9)
    # every magnitude doubles: spectral convergence |1 - 2| = 1, log distance ln 2, per resolution
    np.testing.assert_allclose(mr_stft_distance(2 * x, x), 1 + np.log(2), atol=1e-9)


def test_six_db_on_the_left_ear_gives_six_db_ild_error_in_every_band():
    x = _noise()
    louder = x.copy()
    louder[:, 0] *= 10 ** (6 / 20)
    err = ild_error(louder, x)
    assert err.shape == (3, 7)  # 125 Hz .. 8 kHz at 16 kHz
    np.testing.assert_allclose(err, 6.0, atol=1e-9)
    np.testing.assert_allclose(ild(louder) - ild(x), 6.0, atol=1e-9)


def test_octave_bands_stop_at_nyquist():
    assert [b[0] for b in octave_bands(8_000)] == [125, 250, 500, 1000, 2000, 4000]
    assert octave_bands(16_000)[-1][2] == 8_000


def test_swapped_ears_give_twice_the_ild():
    x = _noise(n=1)
    x[:, 0] = 2.0 * x[:, 1]  # left ear 6.02 dB louder in every band
    np.testing.assert_allclose(ild_error(x[:, ::-1], x), 2 * 20 * np.log10(2), atol=1e-9)


@pytest.mark.parametrize("method", ["xcorr", "gcc-phat"])
def test_an_eight_sample_interaural_delay_gives_half_a_millisecond(method):
    x = _noise(t=4_000, seed=1)
    x[:, 1] = x[:, 0]  # source straight ahead
    late_right = x.copy()
    late_right[:, 1] = _delayed(x[:, 0], 8)
    np.testing.assert_allclose(itd_error(late_right, x, method=method), 0.5, atol=0.005)
    np.testing.assert_allclose(itd(late_right, method=method), 0.5, atol=0.005)  # right ear lags: +
    np.testing.assert_allclose(itd(late_right[:, ::-1], method=method), -0.5, atol=0.005)


def test_itd_is_searched_within_one_millisecond_and_silence_is_nan():
    x = _noise(t=4_000, seed=2)
    x[:, 1] = _delayed(x[:, 0], 40)  # 2.5 ms, outside the search range
    assert np.all(np.abs(itd(x)) <= 1.0 + 1e-9)
    assert np.isnan(itd(np.zeros((2, T)))[0])


def test_a_quarter_period_delay_of_a_tone_gives_a_right_angle_ipd_error():
    for length, tol in ((16_000, 0.01), (T, 0.03)):  # the centred STFT's edge frames add a little
        t = np.arange(length)
        tone = np.sin(2 * np.pi * 500 * t / SR)  # period 32 samples; 8 samples = pi / 2
        ref = np.stack([tone, tone])
        shifted = np.stack([tone, np.roll(tone, 8)])
        np.testing.assert_allclose(ipd_error(shifted, ref), np.pi / 2, atol=tol)


def _orthogonal_noise(s, power, seed=3):
    n = np.random.default_rng(seed).standard_normal(s.shape)
    basis = np.stack([np.ones_like(s), s])  # remove the mean and the component along s
    q, _ = np.linalg.qr(basis.T)
    n = n - q @ (q.T @ n)
    return n * np.sqrt(power / np.sum(n**2))


@pytest.mark.parametrize(("scale", "snr_db"), [(1.0, 15.0), (0.5, 3.0), (-2.0, 30.0)])
def test_si_sdr_matches_the_closed_form(scale, snr_db):
    rng = np.random.default_rng(4)
    s = rng.standard_normal(T)
    s -= s.mean()
    n = _orthogonal_noise(s, np.sum(s**2) / 10 ** (snr_db / 10))
    est = scale * s + n
    expected = 10 * np.log10(scale**2 * np.sum(s**2) / np.sum(n**2))
    clip_est, clip_ref = np.stack([est, est]), np.stack([s, s])
    np.testing.assert_allclose(si_sdr(clip_est, clip_ref), expected, atol=1e-9)


def test_spectral_ssim_falls_with_noise_and_needs_enough_frames():
    x = _noise(n=1)
    rng = np.random.default_rng(5)
    values = [spectral_ssim(x + s * rng.standard_normal(x.shape), x)[0] for s in (0.05, 0.3, 1.0)]
    assert 1.0 > values[0] > values[1] > values[2]
    with pytest.raises(AudioMetricError, match="11 STFT frames.*hop <="):
        spectral_ssim(x[..., :1000], x[..., :1000])


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: lsd(np.zeros((2, 2, 100)), np.zeros((2, 2, 101))), "differ in shape"),
        (lambda: itd_error(np.zeros((1, 1, 800)), np.zeros((1, 1, 800))), "need 2 (left, right)"),
        (lambda: ild(np.zeros((3, 800))), "need 2 (left, right)"),
        (lambda: lsd(np.zeros((800, 2)), np.zeros((800, 2))), "put time last"),
        (lambda: lsd(np.zeros((2, 800), np.int16), np.zeros((2, 800), np.int16)), "32768"),
        (lambda: si_sdr(np.full((2, 800), np.nan), np.zeros((2, 800))), "NaN"),
        (lambda: lsd(np.zeros(800), np.zeros(800)), "(N, C, T)"),
        (lambda: ild_error(np.zeros((2, 800)), np.zeros((2, 800)), sample_rate=0), "sample_rate"),
        (lambda: itd(np.zeros((2, 800)), method="music"), "gcc-phat"),
    ],
)
def test_bad_inputs_raise_typed_errors_with_the_fix(call, words):
    with pytest.raises(AudioMetricError) as err:
        call()
    assert words in str(err.value)
    assert isinstance(err.value, MetricError) and isinstance(err.value, ValueError)
