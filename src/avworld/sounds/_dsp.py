"""Small signal helpers shared by the synthesizers (numpy/scipy only)."""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d
from scipy.signal import butter, resample_poly, sosfilt


def smooth_contour(rng: np.random.Generator, n: int, sample_rate_hz: int, rate_hz: float) -> np.ndarray:
    """``n`` samples of a smooth random contour (zero mean, unit-ish std) varying about ``rate_hz`` times a second."""
    num_knots = max(2, int(np.ceil(n / sample_rate_hz * rate_hz)) + 2)
    knots = rng.standard_normal(num_knots)
    pos = np.linspace(0.0, num_knots - 1.0, n)
    k = np.minimum(pos.astype(np.int64), num_knots - 2)
    f = pos - k
    f = f * f * (3.0 - 2.0 * f)  # smoothstep between knots
    return knots[k] * (1.0 - f) + knots[k + 1] * f


def adsr(n: int, sample_rate_hz: int, attack_s: float, decay_s: float, sustain: float, release_s: float) -> np.ndarray:
    """An attack-decay-sustain-release envelope of ``n`` samples (release at the end)."""
    t = np.arange(n) / sample_rate_hz
    dur = n / sample_rate_hz
    env = np.where(
        t < attack_s,
        t / max(attack_s, 1e-6),
        sustain + (1.0 - sustain) * np.exp(-(t - attack_s) / max(decay_s, 1e-6)),
    )
    rel = np.clip((dur - t) / max(release_s, 1e-6), 0.0, 1.0)
    return env * rel


def band_noise(rng: np.random.Generator, n: int, sample_rate_hz: int, lo_hz: float | None, hi_hz: float | None,
               order: int = 2) -> np.ndarray:
    """White noise band-limited to [lo_hz, hi_hz] (either may be None for a low/high-pass)."""
    x = rng.standard_normal(n)
    nyq = 0.5 * sample_rate_hz
    lo = None if lo_hz is None else min(lo_hz, 0.9 * nyq)
    hi = None if hi_hz is None or hi_hz >= 0.95 * nyq else hi_hz
    if lo is not None and hi is not None and hi > lo * 1.05:
        sos = butter(order, [lo, hi], btype="bandpass", fs=sample_rate_hz, output="sos")
    elif lo is not None:
        sos = butter(order, lo, btype="highpass", fs=sample_rate_hz, output="sos")
    elif hi is not None:
        sos = butter(order, hi, btype="lowpass", fs=sample_rate_hz, output="sos")
    else:
        return x
    return sosfilt(sos, x)


def pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise with a 1/f power spectrum (unit std)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.std(x) + 1e-12)


def fade(x: np.ndarray, sample_rate_hz: int, fade_s: float = 0.01) -> np.ndarray:
    """``x`` with raised-cosine fade-in and fade-out of ``fade_s`` (in place, returned)."""
    m = min(int(fade_s * sample_rate_hz), x.size // 2)
    if m > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
        x[:m] *= r
        x[-m:] *= r[::-1]
    return x


def add_at(out: np.ndarray, start: int, x: np.ndarray) -> None:
    """Add ``x`` into ``out`` at sample ``start`` (clipped to ``out``'s bounds)."""
    if start >= out.size or start + x.size <= 0:
        return
    a, b = max(start, 0), min(start + x.size, out.size)
    out[a:b] += x[a - start : b - start]


def decaying_partials(t: np.ndarray, freqs_hz, amps, decays_s, phases=None) -> np.ndarray:
    """Sum of sinusoids ``a sin(2 pi f t + p) exp(-t / d)``; partials above ~Nyquist should be removed by the caller."""
    f = np.asarray(freqs_hz, dtype=float)[None, :]
    a = np.asarray(amps, dtype=float)[None, :]
    d = np.asarray(decays_s, dtype=float)[None, :]
    p = 0.0 if phases is None else np.asarray(phases, dtype=float)[None, :]
    tt = t[:, None]
    return np.sum(a * np.sin(2 * np.pi * f * tt + p) * np.exp(-tt / d), axis=1)


def resample(x: np.ndarray, rate_in_hz: int, rate_out_hz: int) -> np.ndarray:
    """``x`` (last axis = time) resampled by a rational factor with a polyphase anti-aliasing filter."""
    if rate_in_hz == rate_out_hz:
        return x
    g = gcd(int(rate_in_hz), int(rate_out_hz))
    return resample_poly(x, int(rate_out_hz) // g, int(rate_in_hz) // g, axis=-1)


def limit_crest(x: np.ndarray, sample_rate_hz: int, ceiling: float, window_s: float = 0.005) -> np.ndarray:
    """``x`` with peaks above ``ceiling`` turned down by a smooth gain (5 ms look-around; no clipping)."""
    peak = np.max(np.abs(x)) if x.size else 0.0
    if peak <= ceiling:
        return x
    w = max(1, int(window_s * sample_rate_hz))
    env = maximum_filter1d(np.abs(x), size=2 * w + 1)
    gain = np.minimum(1.0, ceiling / np.maximum(env, 1e-30))
    gain = uniform_filter1d(minimum_filter1d(gain, size=2 * w + 1), size=2 * w + 1)
    return x * np.minimum(gain, ceiling / np.maximum(np.abs(x), 1e-30))
