"""Room-acoustic analysis: Schroeder energy decay, reverberation time, closed forms."""

from __future__ import annotations

import numpy as np

from avworld.acoustics.bands import AIR_ENERGY_ATTENUATION_PER_M, SPEED_OF_SOUND_M_S, octave_band_filter


def energy_decay_curve_db(rir: np.ndarray) -> np.ndarray:
    """Schroeder backward integral of ``rir**2`` in dB re its total (starts at 0 dB)."""
    e = np.asarray(rir, dtype=np.float64) ** 2
    edc = np.cumsum(e[::-1])[::-1]
    edc = edc / max(edc[0], 1e-300)
    return 10.0 * np.log10(np.maximum(edc, 1e-300))


def reverberation_time(rir: np.ndarray, sample_rate_hz: int, decay_db: tuple[float, float] = (-5.0, -35.0)) -> float:
    """T30-style RT60: least-squares slope of the EDC between ``decay_db`` limits, x 60 dB.

    Returns ``nan`` if the EDC never falls below the lower limit.
    """
    edc = energy_decay_curve_db(rir)
    hi, lo = decay_db
    i0 = int(np.argmax(edc <= hi))
    below = np.flatnonzero(edc <= lo)
    if len(below) == 0 or below[0] <= i0 + 2:
        return float("nan")
    i1 = int(below[0])
    t = np.arange(i0, i1) / sample_rate_hz
    slope = np.polyfit(t, edc[i0:i1], 1)[0]
    return float(-60.0 / slope) if slope < 0 else float("nan")


def band_reverberation_times(rir: np.ndarray, sample_rate_hz: int, bands=range(7)) -> np.ndarray:
    """RT60 (T30) per octave band (``nan`` where a band cannot be measured)."""
    out = []
    for b in bands:
        try:
            out.append(reverberation_time(octave_band_filter(rir, b, sample_rate_hz), sample_rate_hz))
        except ValueError:
            out.append(float("nan"))
    return np.asarray(out)


def sabine_rt60(volume_m3: float, surface_m2: float, absorption: float, air_m: float = 0.0) -> float:
    """Sabine: 24 ln(10) V / (c (S a + 4 m V))."""
    c = SPEED_OF_SOUND_M_S
    return 24.0 * np.log(10.0) * volume_m3 / (c * (surface_m2 * absorption + 4.0 * air_m * volume_m3))


def eyring_rt60(volume_m3: float, surface_m2: float, absorption: float, air_m: float = 0.0) -> float:
    """Eyring: 24 ln(10) V / (c (-S ln(1 - a) + 4 m V))."""
    c = SPEED_OF_SOUND_M_S
    return 24.0 * np.log(10.0) * volume_m3 / (c * (-surface_m2 * np.log(1.0 - absorption) + 4.0 * air_m * volume_m3))


def air_coefficient(band: int) -> float:
    """ISO 9613-1 energy attenuation m (1/m) of an octave band (for Sabine/Eyring's 4mV term)."""
    return float(AIR_ENERGY_ATTENUATION_PER_M[band])
