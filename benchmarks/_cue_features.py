"""Direction cues of binaural signals and a plain logistic reader (numpy/scipy only).

Used by ``bench_binaural_cues.py`` and tested by ``tests/acoustics/test_cue_features.py``.

* :func:`cue_features`: per half-octave band (125 Hz-8 kHz, 12 bands, from a 512-point STFT):
  interaural level difference (dB), interaural coherence (per frequency bin over the frames,
  power-weighted over the band's bins: a pure delay keeps it at 1), and ``cos``/``sin`` of the
  interaural phase difference (of the band's summed cross-spectrum) for the bands below 1.5 kHz;
  plus the GCC-PHAT time difference.
* :func:`gcc_phat_itd`: interaural time difference in seconds, positive when the left ear leads
  (the source is on the left).
* :func:`steady_state`: the part of ``dry * rir`` where every tap of the RIR is covered (linear
  convolution of a dry signal longer than the RIR; no wrap-around).
* :func:`part_energies`: the energy per ear of the direct part (-1 ms to +4 ms around the straight
  path's delay d/c), the early part (to 50 ms after d/c) and the late part (after that).
* :func:`fit_logistic` / :func:`predict`: gradient-descent logistic regression on standardized
  features (as in ``probe_binaural_cues.py``), labels in {-1, +1}.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

N_FFT = 512
HOP = 256
#: half-octave band edges, 125 Hz to 8 kHz
BAND_EDGES_HZ = 125.0 * 2.0 ** (np.arange(13) / 2.0)
#: interaural phase is used in the bands whose upper edge is at most this
IPD_MAX_HZ = 1500.0
#: the largest interaural delay searched by GCC-PHAT (a head is ~0.7 ms wide)
MAX_ITD_S = 1e-3


def _bands(sample_rate_hz: int) -> list[np.ndarray]:
    f = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate_hz)
    return [np.flatnonzero((f >= lo) & (f < hi)) for lo, hi in zip(BAND_EDGES_HZ[:-1], BAND_EDGES_HZ[1:])]


def _ipd_bands() -> int:
    return int(np.sum(BAND_EDGES_HZ[1:] <= IPD_MAX_HZ))


def feature_names() -> list[str]:
    lo = [f"{int(round(f))}" for f in BAND_EDGES_HZ[:-1]]
    k = _ipd_bands()
    return ([f"ild_{b}" for b in lo] + [f"ic_{b}" for b in lo] + [f"cos_ipd_{b}" for b in lo[:k]]
            + [f"sin_ipd_{b}" for b in lo[:k]] + ["gcc_phat_itd_ms"])


def stft(x: np.ndarray) -> np.ndarray:
    """(C, n) -> (C, frames, N_FFT // 2 + 1) Hann-windowed spectra, hop HOP."""
    x = np.asarray(x, np.float64)
    frames = 1 + max(0, (x.shape[-1] - N_FFT) // HOP)
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]  # (frames, N_FFT)
    seg = np.pad(x, ((0, 0), (0, max(0, N_FFT - x.shape[-1]))))[:, idx]  # (C, frames, N_FFT)
    return np.fft.rfft(seg * np.hanning(N_FFT), axis=-1)


def gcc_phat_itd(x: np.ndarray, sample_rate_hz: int, max_s: float = MAX_ITD_S) -> float:
    """Interaural time difference (s) of a (2, n) signal by GCC-PHAT; > 0: the left ear leads.

    The cross-spectrum of the whole window (zero-padded to avoid wrap-around) is whitened, the
    correlation's peak within +-``max_s`` is refined by a parabola through its neighbours.
    """
    x = np.asarray(x, np.float64)
    n = 2 * x.shape[-1]
    spec = np.fft.rfft(x, n, axis=-1)
    g = spec[0] * np.conj(spec[1])
    r = np.fft.irfft(g / np.maximum(np.abs(g), 1e-12 * np.abs(g).max() + 1e-300), n)
    m = int(np.ceil(max_s * sample_rate_hz))
    lags = np.r_[np.arange(-m, 0), np.arange(0, m + 1)]
    vals = r[lags]  # r[k] = sum_t left(t + k) right(t): peaks at k = -delay of the right ear
    i = int(np.argmax(vals))
    frac = 0.0
    if 0 < i < len(vals) - 1:
        a, b, c = vals[i - 1], vals[i], vals[i + 1]
        den = a - 2 * b + c
        frac = 0.5 * (a - c) / den if den < 0 else 0.0
    return float(-(lags[i] + frac) / sample_rate_hz)


def cue_features(x: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """(2, n) binaural signal (channel 0 = left) -> feature vector (see :func:`feature_names`)."""
    spec = stft(x)  # (2, T, F)
    left, right = spec[0], spec[1]
    pl, pr = np.abs(left) ** 2, np.abs(right) ** 2
    cross = left * np.conj(right)
    floor = 1e-10 * (pl.sum() + pr.sum()) + 1e-30
    ild, ic, ipd = [], [], []
    for b in _bands(sample_rate_hz):
        el, er, c = pl[:, b].sum(), pr[:, b].sum(), cross[:, b].sum()
        ild.append(10.0 * np.log10((el + floor) / (er + floor)))
        ic.append(np.abs(cross[:, b].sum(0)).sum() / np.sqrt((el + floor) * (er + floor)))  # per bin over frames
        ipd.append(np.angle(c))
    k = _ipd_bands()
    ipd = np.asarray(ipd[:k])
    return np.r_[ild, ic, np.cos(ipd), np.sin(ipd), 1000.0 * gcc_phat_itd(x, sample_rate_hz)]


def steady_state(dry: np.ndarray, rir: np.ndarray, n: int) -> np.ndarray:
    """(2, n) steady-state response: ``dry`` (L + n - 1 samples at least) through each ear's RIR (2, L).

    Sample t of the result is output sample L - 1 + t of the linear convolution, which every
    tap of the RIR contributes to (no onset transient, no circular wrap).
    """
    rir = np.asarray(rir, np.float64)
    length = rir.shape[-1]
    if dry.shape[-1] < length + n - 1:
        raise ValueError(f"dry signal has {dry.shape[-1]} samples; needs {length + n - 1}")
    seg = np.asarray(dry[: length + n - 1], np.float64)
    return np.stack([fftconvolve(seg, h, mode="valid") for h in rir])[:, :n]


def part_energies(rir: np.ndarray, sample_rate_hz: int, direct_delay_s: float,
                  early_s: float = 0.05) -> dict[str, np.ndarray]:
    """Energy per ear (2,) of the direct, early and late parts of a binaural RIR (2, n).

    The parts are cut at the straight path's delay ``direct_delay_s`` (d/c): direct from 1 ms
    before to 4 ms after it (an HRIR's bulk plus rlr's HRTF latency of ~0.5 ms), early to
    ``early_s`` after it, late the rest.
    """
    e = np.asarray(rir, np.float64) ** 2
    fs = sample_rate_hz
    a = max(0, int(round((direct_delay_s - 0.001) * fs)))
    b = int(round((direct_delay_s + 0.004) * fs))
    c = int(round((direct_delay_s + early_s) * fs))
    return {"direct": e[:, a:b].sum(1), "early": e[:, b:c].sum(1), "late": e[:, c:].sum(1)}


def ild_db(energy_lr: np.ndarray) -> float:
    """10 log10(left / right) of a pair of energies (0 dB when both vanish)."""
    el, er = float(energy_lr[0]), float(energy_lr[1])
    return float(10.0 * np.log10((el + 1e-30) / (er + 1e-30)))


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 3000, l2: float = 1e-3) -> tuple:
    """Logistic regression by gradient descent on standardized features; ``y`` in {-1, +1}."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    a = np.c_[(x - mu) / sd, np.ones(len(x))]
    w, t = np.zeros(a.shape[1]), (np.asarray(y) > 0).astype(float)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-a @ w))
        w -= 0.1 * (a.T @ (p - t) / len(t) + l2 * w)
    return mu, sd, w


def predict(model: tuple, x: np.ndarray) -> np.ndarray:
    """Labels in {-1, +1} of a model from :func:`fit_logistic`."""
    mu, sd, w = model
    return np.where(np.c_[(x - mu) / sd, np.ones(len(x))] @ w > 0, 1.0, -1.0)
