"""Audio reconstruction metrics for binaural clips (numpy/scipy, no torch).

Inputs are float arrays ``(N, C, T)`` (a single ``(C, T)`` clip is promoted to a batch of one),
``preds`` (the reconstruction) and ``target`` (the original) of the same shape, at
``sample_rate`` (16 kHz default). The interaural metrics need ``C == 2`` (left, right); the
others accept any channel count and average over channels. Each function returns one value per
clip, shape ``(N,)`` (``ild_error``: ``(N, bands)``), float64. Definitions, all STFTs centred
(``n_fft // 2`` reflect padding, as ``torch.stft``) with a periodic Hann window of ``n_fft``:

* LSD (dB): per frame sqrt(mean_f (10 log10(|X|^2 + 1e-10) - 10 log10(|Y|^2 + 1e-10))^2),
  averaged over frames and channels; n_fft 512, hop 128.
* spectral SSIM: SSIM (Gaussian 11 / 1.5, K1 0.01, K2 0.03) over (frequency, frame) of the
  dB magnitude spectrograms (n_fft 512, hop 128), both floored at the target's peak - 80 dB
  and mapped by (dB - floor) / 80, so the data range is 1; averaged over channels.
* multi-resolution STFT distance: mean over (n_fft, hop) in (512, 128), (1024, 256),
  (2048, 512) of spectral convergence ||Y| - |X||_F / ||Y||_F plus log-magnitude distance
  mean |ln|Y| - ln|X||, magnitudes clamped at sqrt(1e-8) (auraloss' STFTLoss definitions).
* SI-SDR (dB): Le Roux et al. 2019, zero-mean signals, a = <x, y> / <y, y>,
  10 log10(|a y|^2 / |x - a y|^2); ``inf`` for an exact copy (``max_db`` caps it).
* ILD error (dB, per octave band 125 Hz .. 8 kHz, edges fc / sqrt 2 .. fc sqrt 2, cut at
  Nyquist): ILD = 10 log10(E_L / E_R) from the Hann-windowed spectrum of the whole clip;
  error = |ILD(preds) - ILD(target)|.
* ITD error (ms): ITD = the lag in +-1 ms of the peak of the cross-correlation of the ears
  restricted to 0 < f < 1.5 kHz (plain, or GCC-PHAT with ``method="gcc-phat"``), refined by
  a parabola through the peak; positive when the right ear lags (source on the left).
  error = |ITD(preds) - ITD(target)|.
* IPD error (rad): the wrapped difference of the interaural phases angle(L R*) of preds and
  target per STFT bin with 0 < f < 1.5 kHz (n_fft 512, hop 128), weighted by the target's
  |L||R| and averaged.

A silent target gives NaN where the metric is undefined (SI-SDR, spectral convergence, ITD,
IPD). Tests: tests/eval/test_audio_metrics.py (closed forms: gains, delays, orthogonal noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.signal import get_window

from avworld.eval.image_metrics import ssim_maps
from avworld.eval.nav_metrics import MetricError

SAMPLE_RATE = 16_000
LSD_FFT = (512, 128)
SPEC_SSIM_FFT = (512, 128)
SPEC_SSIM_DB_RANGE = 80.0
MRSTFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))
OCTAVE_CENTERS_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
LOW_CUTOFF_HZ = 1500.0
MAX_ITD_MS = 1.0


class AudioMetricError(MetricError):
    """Audio given to a metric has the wrong shape, channel count, dtype or sample rate."""


def as_clips(audio, name: str = "audio", binaural: bool = False) -> np.ndarray:
    """``(N, C, T)`` or ``(C, T)`` float audio -> float64 ``(N, C, T)``."""
    x = np.asarray(audio)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise AudioMetricError(f"{name} must have shape (N, C, T) or (C, T), got {x.shape}; stack clips on axis 0")
    if x.shape[1] > x.shape[2]:
        raise AudioMetricError(
            f"{name} has shape {x.shape}: more channels than samples; put time last "
            "(x.transpose(0, 2, 1) for (N, T, C) arrays)"
        )
    if binaural and x.shape[1] != 2:
        raise AudioMetricError(
            f"{name} has {x.shape[1]} channel(s); interaural metrics need 2 (left, right): "
            "pass binaural clips (N, 2, T)"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise AudioMetricError(
            f"{name} has dtype {x.dtype}; pass float waveforms (x.astype(np.float32) / 32768 for int16 PCM)"
        )
    if not np.all(np.isfinite(x)):
        raise AudioMetricError(f"{name} contains NaN or inf samples; fix the producer of the audio")
    return x.astype(np.float64)


def _pair(preds, target, binaural: bool = False) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_clips(preds, "preds", binaural), as_clips(target, "target", binaural)
    if p.shape != t.shape:
        raise AudioMetricError(
            f"preds {p.shape} and target {t.shape} differ in shape; compare clips of the same "
            "length and channel count (trim or pad the reconstruction to the original's length)"
        )
    if p.shape[0] == 0 or p.shape[2] == 0:
        raise AudioMetricError(f"empty audio {p.shape}; pass at least one clip with samples")
    return p, t


def _check_rate(sample_rate: float) -> float:
    sr = float(sample_rate)
    if not np.isfinite(sr) or sr <= 0:
        raise AudioMetricError(f"sample_rate must be a positive number of Hz, got {sample_rate!r}")
    return sr


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred STFT of ``(..., T)`` -> complex ``(..., n_fft // 2 + 1, frames)`` (periodic Hann)."""
    pad = n_fft // 2
    mode = "reflect" if x.shape[-1] > pad else "constant"
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode=mode)
    if xp.shape[-1] < n_fft:
        xp = np.pad(xp, [(0, 0)] * (x.ndim - 1) + [(0, n_fft - xp.shape[-1])])
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :]
    spec = np.fft.rfft(frames * get_window("hann", n_fft), axis=-1)
    return np.swapaxes(spec, -1, -2)


def lsd(preds, target, n_fft: int = LSD_FFT[0], hop: int = LSD_FFT[1], eps: float = 1e-10) -> np.ndarray:
    """Log-spectral distance in dB per clip (0 for identical clips)."""
    p, t = _pair(preds, target)
    lp = 10 * np.log10(np.abs(stft(p, n_fft, hop)) ** 2 + eps)
    lt = 10 * np.log10(np.abs(stft(t, n_fft, hop)) ** 2 + eps)
    per_frame = np.sqrt(np.mean((lp - lt) ** 2, axis=-2))
    return per_frame.mean(axis=(1, 2))


def spectral_ssim(
    preds, target, n_fft: int = SPEC_SSIM_FFT[0], hop: int = SPEC_SSIM_FFT[1], db_range: float = SPEC_SSIM_DB_RANGE
) -> np.ndarray:
    """SSIM of the dB magnitude spectrograms per clip (1 for identical clips)."""
    p, t = _pair(preds, target)
    frames = 1 + p.shape[-1] // hop
    if frames < 11:
        raise AudioMetricError(
            f"spectral SSIM needs at least 11 STFT frames, got {frames} ({p.shape[-1]} samples, hop {hop}); "
            f"pass hop <= {max(1, p.shape[-1] // 10)} or longer clips"
        )
    dp = 20 * np.log10(np.abs(stft(p, n_fft, hop)) + 1e-12)
    dt = 20 * np.log10(np.abs(stft(t, n_fft, hop)) + 1e-12)
    floor = dt.max(axis=(-2, -1), keepdims=True) - db_range
    xp = (np.maximum(dp, floor) - floor) / db_range
    xt = (np.maximum(dt, floor) - floor) / db_range
    s, _ = ssim_maps(xp, xt, axes=(-2, -1), data_range=1.0)
    return s.mean(axis=(1, 2, 3))


def mr_stft_distance(
    preds, target, resolutions: Sequence[tuple[int, int]] = MRSTFT_RESOLUTIONS, eps: float = 1e-8
) -> np.ndarray:
    """Multi-resolution STFT distance per clip: mean of spectral convergence + log magnitude L1."""
    p, t = _pair(preds, target)
    total = np.zeros(p.shape[:2])
    for n_fft, hop in resolutions:
        mp = np.sqrt(np.maximum(np.abs(stft(p, n_fft, hop)) ** 2, eps))
        mt = np.sqrt(np.maximum(np.abs(stft(t, n_fft, hop)) ** 2, eps))
        with np.errstate(divide="ignore", invalid="ignore"):
            sc = np.linalg.norm(mt - mp, axis=(-2, -1)) / np.linalg.norm(mt, axis=(-2, -1))
        total += sc + np.mean(np.abs(np.log(mt) - np.log(mp)), axis=(-2, -1))
    return (total / len(resolutions)).mean(axis=1)


def si_sdr(preds, target, max_db: float | None = None) -> np.ndarray:
    """Scale-invariant signal-to-distortion ratio in dB per clip (mean over channels)."""
    p, t = _pair(preds, target)
    p = p - p.mean(axis=-1, keepdims=True)
    t = t - t.mean(axis=-1, keepdims=True)
    tt = np.sum(t * t, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        proj = np.sum(p * t, axis=-1, keepdims=True) / tt * t
        out = 10 * np.log10(np.sum(proj**2, axis=-1) / np.sum((p - proj) ** 2, axis=-1))
    out = out.mean(axis=1)
    return out if max_db is None else np.minimum(out, float(max_db))


def octave_bands(sample_rate: float = SAMPLE_RATE) -> list[tuple[float, float, float]]:
    """(centre, low, high) of the octave bands 125 Hz .. 8 kHz below Nyquist (high cut at Nyquist)."""
    nyq = _check_rate(sample_rate) / 2
    bands = []
    for fc in OCTAVE_CENTERS_HZ:
        lo, hi = fc / np.sqrt(2), fc * np.sqrt(2)
        if lo < nyq:
            bands.append((fc, lo, min(hi, nyq)))
    return bands


def ild(audio, sample_rate: float = SAMPLE_RATE, eps: float = 1e-12) -> np.ndarray:
    """Interaural level difference 10 log10(E_L / E_R) in dB, ``(N, bands)`` (see :func:`octave_bands`)."""
    x = as_clips(audio, "audio", binaural=True)
    n = x.shape[-1]
    power = np.abs(np.fft.rfft(x * get_window("hann", n, fftbins=False), axis=-1)) ** 2
    f = np.fft.rfftfreq(n, 1 / _check_rate(sample_rate))
    out = []
    for _, lo, hi in octave_bands(sample_rate):
        sel = (f >= lo) & ((f < hi) | (f == hi))
        e = power[..., sel].sum(axis=-1)
        out.append(10 * np.log10(e[:, 0] + eps) - 10 * np.log10(e[:, 1] + eps))
    return np.stack(out, axis=1)


def ild_error(preds, target, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
    """|ILD(preds) - ILD(target)| in dB per clip and octave band, ``(N, bands)``."""
    p, t = _pair(preds, target, binaural=True)
    return np.abs(ild(p, sample_rate) - ild(t, sample_rate))


def itd(
    audio,
    sample_rate: float = SAMPLE_RATE,
    max_ms: float = MAX_ITD_MS,
    cutoff_hz: float = LOW_CUTOFF_HZ,
    method: str = "xcorr",
) -> np.ndarray:
    """Interaural time difference in ms per clip (positive: the right ear lags); NaN if silent below cutoff."""
    if method not in ("xcorr", "gcc-phat"):
        raise AudioMetricError(f"method must be 'xcorr' or 'gcc-phat', got {method!r}")
    x = as_clips(audio, "audio", binaural=True)
    sr = _check_rate(sample_rate)
    if not 0 < cutoff_hz <= sr / 2:
        raise AudioMetricError(f"cutoff_hz must be in (0, {sr / 2:g}] at {sr:g} Hz, got {cutoff_hz!r}")
    n = x.shape[-1]
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, nfft, axis=-1)
    cross = np.conj(spec[:, 0]) * spec[:, 1]
    f = np.fft.rfftfreq(nfft, 1 / sr)
    cross[:, (f <= 0) | (f >= cutoff_hz)] = 0
    if method == "gcc-phat":
        mag = np.abs(cross)
        cross = np.where(mag > 1e-12 * max(mag.max(), 1e-300), cross / np.maximum(mag, 1e-300), 0)
    corr = np.fft.irfft(cross, nfft, axis=-1)
    max_lag = min(int(np.floor(max_ms * 1e-3 * sr)), n - 1)
    lags = np.arange(-max_lag, max_lag + 1)
    c = corr[:, lags % nfft]
    k = np.argmax(c, axis=1)
    rows = np.arange(len(k))
    inner = (k > 0) & (k < len(lags) - 1)
    km, kp = np.clip(k - 1, 0, len(lags) - 1), np.clip(k + 1, 0, len(lags) - 1)
    y0, y1, y2 = c[rows, km], c[rows, k], c[rows, kp]
    den = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = np.where(inner & (den < 0), 0.5 * (y0 - y2) / den, 0.0)
    out = (lags[k] + delta) / sr * 1e3
    silent = ~np.any(cross != 0, axis=1)
    return np.where(silent, np.nan, out)


def itd_error(preds, target, sample_rate: float = SAMPLE_RATE, method: str = "xcorr") -> np.ndarray:
    """|ITD(preds) - ITD(target)| in ms per clip (peaks searched within +-1 ms, < 1.5 kHz)."""
    p, t = _pair(preds, target, binaural=True)
    return np.abs(itd(p, sample_rate, method=method) - itd(t, sample_rate, method=method))


def ipd_error(
    preds,
    target,
    sample_rate: float = SAMPLE_RATE,
    n_fft: int = LSD_FFT[0],
    hop: int = LSD_FFT[1],
    cutoff_hz: float = LOW_CUTOFF_HZ,
) -> np.ndarray:
    """Target-energy-weighted mean |wrapped IPD difference| in radians per clip, 0 < f < cutoff."""
    p, t = _pair(preds, target, binaural=True)
    f = np.fft.rfftfreq(n_fft, 1 / _check_rate(sample_rate))
    sel = (f > 0) & (f < cutoff_hz)
    sp, st = stft(p, n_fft, hop)[:, :, sel], stft(t, n_fft, hop)[:, :, sel]
    cp, ct = sp[:, 0] * np.conj(sp[:, 1]), st[:, 0] * np.conj(st[:, 1])
    err = np.abs(np.angle(cp * np.conj(ct)))
    w = np.abs(ct)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(w * err, axis=(1, 2)) / np.sum(w, axis=(1, 2))
