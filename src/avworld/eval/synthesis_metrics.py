"""Metrics of novel-view binaural synthesis (π-AVAS / AV-NeRF), numpy/scipy only.

Inputs ``preds`` and ``target`` are binaural clips (N, 2, T) (or one (2, T)). Each metric returns one
value per clip. Added here (the rest comes from :mod:`avworld.eval.audio_metrics`):

* MAG, magnitude distance: mean over (frequency, frame) of (|P| - |T|)^2 of the STFT magnitudes
  (n_fft 512, hop 128, periodic Hann, centred), summed over the two ears.
* ENV, envelope distance: per ear the RMS over time of |hilbert(p)| - |hilbert(t)|, summed over ears
  (AV-NeRF's definition).
* LRE, left-right energy ratio error (dB): |10 log10(E_L / E_R)(preds) - 10 log10(E_L / E_R)(target)|
  with E the broadband energy of the clip.
* RT60 error (s): the impulse response from the known source audio x_tx to each clip is estimated
  (H1 estimator over 128 ms Welch segments, :func:`estimate_ir`), and its reverberation time (the
  two ears summed, noise floor removed) measured by the Schroeder T20 line fit (-5 to -25 dB)
  extrapolated to 60 dB; error = |RT60(preds) - RT60(target)|, NaN where either cannot be measured.
  On 0.5 s clips this is a rough, biased estimate (decays longer than the 128 ms window read
  short: measured 0.37 / 0.51 / 0.81 s for true 0.2 / 0.4 / 0.8 s on white-noise sources): use it
  to compare methods on the same clips, not as an absolute RT60.

From audio_metrics: LSD (dB), ILD error (dB, averaged over octave bands), ITD error (ms), SI-SDR (dB).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import hilbert

from avworld.eval.audio_metrics import AudioMetricError, as_clips, ild_error, itd_error, lsd, si_sdr, stft

MAG_FFT = (512, 128)
#: segment length of the impulse-response estimate behind the RT60 error (128 ms at 16 kHz)
IR_FFT = 2048
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


def estimate_ir(audio, x_tx, n_fft: int = IR_FFT) -> np.ndarray:
    """(N, C, n_fft) impulse responses h with audio ~= x_tx * h, by the H1 estimator.

    H = P_xy / P_xx from Welch averages (Hann segments of ``n_fft`` samples, 3/4 overlap) of the
    source x_tx and each channel; h = irfft(H). Averaging over segments tolerates what a plain
    spectral division of a short clip does not: the clip starts mid-sound (the reverberation of
    earlier source audio is in it) and the convolution is cut at the clip's end.
    """
    from scipy.signal import csd, welch

    x = as_clips(audio, "audio")
    s = np.asarray(x_tx, np.float64).reshape(len(x), -1)
    if s.shape[-1] != x.shape[-1]:
        raise AudioMetricError(f"x_tx has {s.shape[-1]} samples, the audio {x.shape[-1]}; they must match")
    n = min(n_fft, x.shape[-1])
    kw = {"nperseg": n, "noverlap": 3 * n // 4, "window": "hann"}
    _, pxx = welch(s, **kw)
    _, pxy = csd(s[:, None], x, **kw)
    return np.fft.irfft(pxy / np.maximum(pxx[:, None], 1e-30), n)


def rt60_from_ir(ir: np.ndarray, sample_rate: float, decay_db=(-5.0, -25.0)) -> float:
    """T20-style RT60 (s) of one impulse response (C, T) summed over channels; NaN if not measurable.

    From the energy peak on, the mean energy of the last fifth (the estimate's noise floor) is taken
    out before the Schroeder backward integral; the line fit between ``decay_db`` is extrapolated
    to -60 dB.
    """
    e = np.sum(np.asarray(ir, np.float64) ** 2, axis=0)
    e = e[int(np.argmax(e)):]
    if len(e) < 10:
        return float("nan")
    e = np.maximum(e - e[-max(len(e) // 5, 1):].mean(), 0.0)
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
