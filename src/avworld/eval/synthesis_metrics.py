"""Metrics of novel-view binaural synthesis (π-AVAS / AV-NeRF), numpy/scipy only.

Inputs ``preds`` and ``target`` are binaural clips (N, 2, T) (or one (2, T)). Each metric returns one
value per clip. Added here (the rest comes from :mod:`avworld.eval.audio_metrics`):

* MAG, magnitude distance: mean over (frequency, frame) of (|P| - |T|)^2 of the STFT magnitudes
  (n_fft 512, hop 128, periodic Hann, centred), summed over the two ears.
* ENV, envelope distance: per ear the RMS over time of |hilbert(p)| - |hilbert(t)|, summed over ears
  (AV-NeRF's definition).
* LRE, left-right energy ratio error (dB): |10 log10(E_L / E_R)(preds) - 10 log10(E_L / E_R)(target)|
  with E the broadband energy of the clip.
* RT60 error (s): both clips are deconvolved by the known source audio x_tx (regularized spectral
  division, :func:`estimate_ir`), and the reverberation time of each estimated impulse response (the
  two ears summed) is measured by the Schroeder T20 line fit (-5 to -25 dB) extrapolated to 60 dB;
  error = |RT60(preds) - RT60(target)|, NaN where either cannot be measured.

From audio_metrics: LSD (dB), ILD error (dB, averaged over octave bands), ITD error (ms), SI-SDR (dB).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

from avworld.eval.audio_metrics import AudioMetricError, as_clips, ild_error, itd_error, lsd, si_sdr, stft

MAG_FFT = (512, 128)
METRICS = ("mag", "env", "lre", "lsd", "rt60", "ild", "itd", "sisdr")
#: lower is better, except SI-SDR
HIGHER_IS_BETTER = {"sisdr"}
UNITS = {"mag": "", "env": "", "lre": "dB", "lsd": "dB", "rt60": "s", "ild": "dB", "itd": "ms", "sisdr": "dB"}


def _pair(preds, target):
    p = as_clips(preds, "preds", binaural=True)
    t = as_clips(target, "target", binaural=True)
    if p.shape != t.shape:
        raise AudioMetricError(f"preds {p.shape} and target {t.shape} must have the same shape")
    return p, t


def mag_distance(preds, target, n_fft: int = MAG_FFT[0], hop: int = MAG_FFT[1]) -> np.ndarray:
    p, t = _pair(preds, target)
    d = (np.abs(stft(p, n_fft, hop)) - np.abs(stft(t, n_fft, hop))) ** 2
    return d.mean(axis=(-2, -1)).sum(axis=1)


def envelope_distance(preds, target) -> np.ndarray:
    p, t = _pair(preds, target)
    d = np.abs(hilbert(p, axis=-1)) - np.abs(hilbert(t, axis=-1))
    return np.sqrt(np.mean(d ** 2, axis=-1)).sum(axis=1)


def lr_energy_ratio(audio, eps: float = 1e-12) -> np.ndarray:
    x = as_clips(audio, "audio", binaural=True)
    e = np.sum(x ** 2, axis=-1)
    return 10 * np.log10(e[:, 0] + eps) - 10 * np.log10(e[:, 1] + eps)


def lre(preds, target) -> np.ndarray:
    p, t = _pair(preds, target)
    return np.abs(lr_energy_ratio(p) - lr_energy_ratio(t))


def estimate_ir(audio, x_tx, reg: float = 1e-3) -> np.ndarray:
    """(N, C, T) impulse responses h with audio ~= x_tx * h: H = X S* / (|S|^2 + reg mean|S|^2)."""
    x = as_clips(audio, "audio")
    s = np.asarray(x_tx, np.float64).reshape(len(x), -1)
    if s.shape[-1] != x.shape[-1]:
        raise AudioMetricError(f"x_tx has {s.shape[-1]} samples, the audio {x.shape[-1]}; they must match")
    n = 2 * x.shape[-1]
    S = np.fft.rfft(s, n)[:, None]
    X = np.fft.rfft(x, n)
    power = np.abs(S) ** 2
    H = X * np.conj(S) / (power + reg * power.mean(axis=-1, keepdims=True) + 1e-30)
    return np.fft.irfft(H, n)[..., : x.shape[-1]]


def rt60_from_ir(ir: np.ndarray, sample_rate: float, decay_db=(-5.0, -25.0)) -> float:
    """T20-style RT60 (s) of one impulse response (C, T) summed over channels; NaN if not measurable."""
    e = np.sum(np.asarray(ir, np.float64) ** 2, axis=0)
    peak = int(np.argmax(e))
    e = e[peak:]
    edc = np.cumsum(e[::-1])[::-1]
    if edc[0] <= 0:
        return float("nan")
    edc = 10 * np.log10(np.maximum(edc / edc[0], 1e-300))
    hi, lo = decay_db
    i0 = int(np.argmax(edc <= hi))
    below = np.flatnonzero(edc <= lo)
    if len(below) == 0 or below[0] <= i0 + 2:
        return float("nan")
    i1 = int(below[0])
    slope = np.polyfit(np.arange(i0, i1) / sample_rate, edc[i0:i1], 1)[0]
    return float(-60.0 / slope) if slope < 0 else float("nan")


def rt60_error(preds, target, x_tx, sample_rate: float) -> np.ndarray:
    p, t = _pair(preds, target)
    hp, ht = estimate_ir(p, x_tx), estimate_ir(t, x_tx)
    return np.array([abs(rt60_from_ir(a, sample_rate) - rt60_from_ir(b, sample_rate)) for a, b in zip(hp, ht)])


def all_metrics(preds, target, x_tx, sample_rate: float) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS`, one value per clip each."""
    p, t = _pair(preds, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"mag": mag_distance(p, t), "env": envelope_distance(p, t), "lre": lre(p, t), "lsd": lsd(p, t),
                "rt60": rt60_error(p, t, x_tx, sample_rate), "ild": ild_error(p, t, sample_rate).mean(axis=1),
                "itd": itd_error(p, t, sample_rate), "sisdr": si_sdr(p, t, max_db=100.0)}


def mean_ci(values, confidence_z: float = 1.96) -> tuple[float, float, int]:
    """(mean, half-width of the normal 95 % interval of the mean, count) over the finite values."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    half = confidence_z * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half), int(len(v))


def paired_ci(a, b, confidence_z: float = 1.96) -> tuple[float, float, int]:
    """Mean and 95 % half-width of the per-clip difference a - b (clips where both are finite)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    return mean_ci(a[ok] - b[ok], confidence_z)
