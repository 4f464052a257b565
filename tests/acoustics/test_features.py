"""Audio features: STFT framing vs references, SoundSpaces pooling, log-mel filterbank, shapes, errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.signal

from avworld.acoustics.features import (
    MelConfig,
    SpectrogramConfig,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    spectrogram,
    spectrogram_shape,
    stft_magnitude,
)

FS = 16000


def _hann_padded(n_fft=512, win=400):
    w = np.zeros(n_fft)
    w[(n_fft - win) // 2 : (n_fft - win) // 2 + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    return w


def _dft_reference(x, n_fft=512, hop=160, win=400):
    """Direct DFT with librosa center=True framing (reflect padding), float64."""
    xp = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    t = 1 + len(x) // hop
    k = np.arange(n_fft // 2 + 1)[:, None]
    basis = np.exp(-2j * np.pi * k * np.arange(n_fft)[None, :] / n_fft)  # (F, n_fft)
    frames = np.stack([xp[i * hop : i * hop + n_fft] * _hann_padded(n_fft, win) for i in range(t)], axis=1)
    return np.abs(basis @ frames)  # (F, T)


def test_stft_matches_direct_dft_and_scipy():
    x = np.random.default_rng(0).normal(size=(2, 4000)).astype(np.float32)
    mag = stft_magnitude(x)
    assert mag.shape == (2, 257, 26) and mag.dtype == np.float32
    for c in range(2):
        ref = _dft_reference(x[c])
        np.testing.assert_allclose(mag[c], ref, rtol=1e-5, atol=1e-5 * ref.max())
        w = _hann_padded()
        _, _, z = scipy.signal.stft(
            x[c].astype(np.float64), window=w, nperseg=512, noverlap=512 - 160, boundary="even", padded=True
        )
        sp = np.abs(z) * w.sum()  # scipy scales by 1 / sum(window)
        np.testing.assert_allclose(mag[c], sp[:, :26], rtol=1e-5, atol=1e-5 * ref.max())


def _pool_loop(m, bf, bt):
    f, t = m.shape
    out = np.zeros((-(-f // bf), -(-t // bt)))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = m[i * bf : (i + 1) * bf, j * bt : (j + 1) * bt].sum() / (bf * bt)  # zero padding counts
    return out


@pytest.mark.parametrize("n", [2400, 4000, 16000, 4321])
def test_spectrogram_pooling_and_shapes(n):
    x = np.random.default_rng(1).normal(size=(2, n)).astype(np.float32)
    spec = spectrogram(x)
    assert spec.shape == (2, *spectrogram_shape(n)) and spec.dtype == np.float32
    mag = stft_magnitude(x)
    for c in range(2):
        np.testing.assert_allclose(spec[c], np.log1p(_pool_loop(mag[c].astype(np.float64), 4, 4)), rtol=1e-5)
    raw = spectrogram(x, SpectrogramConfig(log1p=False, pool=(3, 2)))
    assert raw.shape == (2, *spectrogram_shape(n, SpectrogramConfig(pool=(3, 2))))
    np.testing.assert_allclose(raw[1], _pool_loop(mag[1].astype(np.float64), 3, 2), rtol=1e-5)


def test_soundspaces_shapes():
    assert spectrogram_shape(16000) == (65, 26)  # 1 s: SoundSpaces' AudioGoal (65, 26, 2)
    assert spectrogram_shape(4000) == (65, 7)  # 0.25 s
    assert spectrogram_shape(2400) == (65, 4)  # 0.15 s


def test_tone_energy_in_right_row():
    t = np.arange(4000) / FS
    f0 = 2000.0  # bin 64 of 257 -> pooled row 16
    x = np.stack([np.sin(2 * np.pi * f0 * t), 0.1 * np.sin(2 * np.pi * f0 * t)]).astype(np.float32)
    mag = stft_magnitude(x)
    assert np.all(mag[0, :, 1:-1].argmax(axis=0) == 64)  # edge frames see the reflected padding
    spec = spectrogram(x)
    assert np.all(spec[0].argmax(axis=0) == 16) and np.all(spec[1].argmax(axis=0) == 16)
    assert spec[0, 16].mean() > spec[1, 16].mean()


def test_mel_scale_and_filterbank():
    np.testing.assert_allclose(hz_to_mel([0.0, 200.0, 1000.0, 6400.0]), [0.0, 3.0, 15.0, 42.0])
    np.testing.assert_allclose(
        mel_to_hz(hz_to_mel([50.0, 999.0, 1000.0, 3000.0, 8000.0])), [50.0, 999.0, 1000.0, 3000.0, 8000.0]
    )
    fb = mel_filterbank(FS, 512, 64)
    assert fb.shape == (64, 257) and fb.dtype == np.float32 and np.all(fb >= 0)
    f = np.fft.rfftfreq(512, 1.0 / FS)
    pts = mel_to_hz(np.linspace(0.0, hz_to_mel(8000.0), 66))
    df = f[1] - f[0]
    # unit area in Hz (slaney norm) for filters spanning several bins
    wide = (pts[2:] - pts[:-2]) > 8 * df
    np.testing.assert_allclose(fb[wide].sum(axis=1) * df, 1.0, rtol=0.05)
    # triangle peaks at the mel centre: value 2 / (f_hi - f_lo) at a bin that hits a centre exactly
    for m in (10, 30, 50):
        centre_bin = np.argmin(np.abs(f - pts[m + 1]))
        expected = (
            2.0
            / (pts[m + 2] - pts[m])
            * min(
                (f[centre_bin] - pts[m]) / (pts[m + 1] - pts[m]),
                (pts[m + 2] - f[centre_bin]) / (pts[m + 2] - pts[m + 1]),
            )
        )
        assert fb[m, centre_bin] == pytest.approx(expected, rel=1e-5)
    # below 1 kHz the centres are linear in Hz: 3 mel per 200 Hz
    centres = pts[1:-1]
    low = centres < 1000
    np.testing.assert_allclose(np.diff(centres[low]), np.diff(centres[low]).mean(), rtol=1e-9)
    with pytest.raises(ValueError, match="Nyquist"):
        mel_filterbank(FS, 512, 64, 0.0, 9000.0)


def test_log_mel_tone_peaks_in_expected_band():
    f0 = 3000.0
    x = np.sin(2 * np.pi * f0 * np.arange(8000) / FS)[None].astype(np.float32)
    out = log_mel(x)
    assert out.shape == (1, 64, 51) and out.dtype == np.float32
    pts = mel_to_hz(np.linspace(0.0, hz_to_mel(8000.0), 66))
    expected = int(np.argmin(np.abs(pts[1:-1] - f0)))
    assert abs(int(np.median(out[0].argmax(axis=0))) - expected) <= 1
    silent = log_mel(np.zeros((1, 4000), np.float32), MelConfig(log_offset=1e-6))
    np.testing.assert_allclose(silent, np.log(1e-6), rtol=1e-6)


def test_speed():
    x = np.random.default_rng(3).normal(size=(2, 4000)).astype(np.float32)
    spectrogram(x)
    t0 = time.perf_counter()
    for _ in range(50):
        spectrogram(x)
    assert (time.perf_counter() - t0) / 50 < 0.005  # ~0.2 ms on one core; loose for busy CI


@pytest.mark.parametrize(
    "audio, match",
    [
        (np.zeros(4000, np.float32), r"\(channels, samples\)"),
        (np.zeros((2, 4000), np.int16), "floating-point.*PCM"),
        (np.zeros((2, 4000), np.complex64), "floating-point"),
        (np.full((2, 4000), np.nan, np.float32), "NaN"),
        (np.zeros((2, 100), np.float32), "at least 257"),
        (np.zeros((0, 4000), np.float32), "no channels"),
    ],
)
def test_bad_audio(audio, match):
    with pytest.raises(ValueError, match=match):
        spectrogram(audio)
    with pytest.raises(ValueError, match=match):
        log_mel(audio)
