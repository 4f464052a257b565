"""Octave bands, air absorption and band-gain filters.

Band gains are per-octave amplitudes at :data:`OCTAVE_BANDS_HZ`. Two kinds of filters
turn them into signals:

* :func:`band_gain_response`: a smooth, zero-phase amplitude response on an FFT grid,
  interpolated linearly in log-frequency between band centres (flat beyond the outer
  centres). Used to colour each discrete arrival of an impulse response.
* :func:`band_split_masks`: power-complementary band masks (raised-cosine in
  log-frequency, squares summing to 1) that split white noise into octave bands for the
  diffuse tail, so that per-band energies add up exactly.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avworld.geometry.materials import NUM_BANDS, OCTAVE_BANDS_HZ

BANDS_HZ = np.asarray(OCTAVE_BANDS_HZ)

#: Speed of sound (m/s) at 20 degC.
SPEED_OF_SOUND_M_S = 343.0

#: Air attenuation (dB per km) at 20 degC, 50 % relative humidity, 101.325 kPa
#: (ISO 9613-1 table values at the octave-band centres).
AIR_ATTENUATION_DB_PER_KM = np.array([0.44, 1.31, 2.73, 4.66, 9.86, 29.7, 105.0])

#: The same as an *energy* attenuation coefficient m (1/m): E(d) = E0 * exp(-m d).
AIR_ENERGY_ATTENUATION_PER_M = AIR_ATTENUATION_DB_PER_KM / 1000.0 / (10.0 * np.log10(np.e))

#: Sample rates the engine supports.
SUPPORTED_SAMPLE_RATES_HZ = (16000, 22050, 24000, 32000, 44100, 48000)


class SampleRateError(ValueError):
    """The sample rate is not one of :data:`SUPPORTED_SAMPLE_RATES_HZ`."""


def check_sample_rate(sample_rate_hz) -> int:
    if int(sample_rate_hz) != sample_rate_hz or int(sample_rate_hz) not in SUPPORTED_SAMPLE_RATES_HZ:
        raise SampleRateError(
            f"unsupported sample rate {sample_rate_hz!r} Hz; use one of {SUPPORTED_SAMPLE_RATES_HZ}"
        )
    return int(sample_rate_hz)


def air_amplitude(distance_m: np.ndarray) -> np.ndarray:
    """(..., 7) amplitude factor of air absorption over ``distance_m`` (...)."""
    d = np.asarray(distance_m, dtype=np.float64)[..., None]
    return np.exp(-0.5 * AIR_ENERGY_ATTENUATION_PER_M * d)


def _log_positions(freqs_hz: np.ndarray) -> np.ndarray:
    """Position of each frequency on the band axis (0 at 125 Hz, 1 at 250 Hz...)."""
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), 1e-3)
    return np.log2(f / BANDS_HZ[0])


@lru_cache(maxsize=32)
def _band_gain_weights(n_fft: int, sample_rate_hz: int) -> np.ndarray:
    """(7, n_fft//2+1) weights of the band gains at every FFT bin (two non-zero per column)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    pos = np.clip(_log_positions(freqs), 0.0, NUM_BANDS - 1)
    lo = np.minimum(np.floor(pos).astype(np.int64), NUM_BANDS - 2)
    frac = pos - lo
    w = np.zeros((NUM_BANDS, len(freqs)))
    cols = np.arange(len(freqs))
    w[lo, cols] = 1.0 - frac
    w[lo + 1, cols] = frac
    w.flags.writeable = False
    return w


def band_gain_response(gains: np.ndarray, n_fft: int, sample_rate_hz: int) -> np.ndarray:
    """(..., 7) band amplitudes -> (..., n_fft//2+1) real zero-phase response.

    Interpolated linearly in log-frequency between band centres (flat beyond the outer
    centres): one small matrix product with cached weights.
    """
    return np.asarray(gains, dtype=np.float64) @ _band_gain_weights(int(n_fft), int(sample_rate_hz))


def band_split_masks(n_fft: int, sample_rate_hz: int) -> np.ndarray:
    """(7, n_fft//2+1) masks with sum of squares == 1 at every frequency."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    pos = np.clip(_log_positions(freqs), 0.0, NUM_BANDS - 1)
    masks = np.zeros((NUM_BANDS, len(freqs)))
    lo = np.minimum(np.floor(pos).astype(np.int64), NUM_BANDS - 2)
    frac = pos - lo
    # cos/sin crossfade between neighbouring bands: cos^2 + sin^2 = 1
    masks[lo, np.arange(len(freqs))] = np.cos(0.5 * np.pi * frac)
    masks[lo + 1, np.arange(len(freqs))] = np.sin(0.5 * np.pi * frac)
    return masks


def octave_band_filter(signal: np.ndarray, band: int, sample_rate_hz: int) -> np.ndarray:
    """Zero-phase octave-band filtering (for analysis, e.g. per-band RT60).

    A 4th-order Butterworth band-pass between fc/sqrt(2) and fc*sqrt(2) applied forward
    and backward (scipy ``sosfiltfilt``); bands reaching Nyquist become high-passes.
    """
    from scipy import signal as sps

    fc = BANDS_HZ[band]
    lo, hi = fc / np.sqrt(2.0), fc * np.sqrt(2.0)
    nyq = sample_rate_hz / 2.0
    if lo >= nyq:
        raise SampleRateError(f"band {fc:g} Hz lies above Nyquist at {sample_rate_hz} Hz")
    if hi >= 0.95 * nyq:
        sos = sps.butter(4, lo, btype="highpass", fs=sample_rate_hz, output="sos")
    else:
        sos = sps.butter(4, [lo, hi], btype="bandpass", fs=sample_rate_hz, output="sos")
    return sps.sosfiltfilt(sos, signal, axis=-1)
