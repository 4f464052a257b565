"""Direction of the late field: where the ray-traced tail's energy comes from, and what the ears make of it.

The diffuse tail (:mod:`avworld.acoustics.synthesis`) is noise shaped by per-band energy
envelopes. In a room that the sound enters through a door, the late energy is not isotropic:
more of it travels away from the door than toward it. This module measures that from the
ray trace and turns it into per-ear, per-band gains of the tail for a head yaw.

* :func:`box_direction_energy` (:func:`sphere_direction_energy` where the listener's room has
  no receiver box): the receiver's ray chords (the same chords whose energy makes the tail's
  histogram, :func:`~avworld.acoustics.raytrace.box_histogram`) binned by
  the direction they arrive *from* (minus the propagation direction): 8 horizontal sectors
  of 45° (centred on 0°, 45°, ..., in the world frame, counter-clockwise from +x) weighted by
  cos²(elevation), and one "vertical" bin weighted by sin²(elevation). Energy per band and
  bin, (7, 9).
* :func:`tail_gains`: the energy-weighted HRTF power of those directions for a head yaw,
  relative to the same for an isotropic field, per ear and band: ``g = sqrt(sum_k f_k P_k /
  sum_k u_k P_k)``, ``f`` the measured and ``u`` the isotropic fractions (2/3 over the
  sectors, 1/3 vertical). An isotropic field gets gains of exactly 1 (the tail as before);
  energy arriving from the left raises the left ear's tail and lowers the right's, most at
  high frequencies, as the head's shadow does.

The HRTF power of a sector is the mean over the measured directions within ±22.5° of its
azimuth and ±45° of the horizontal plane; the vertical bin's is the mean over directions more
than 45° above or below it. The tail keeps its noise, envelope and interaural coherence; only
its level per ear and band follows the direction (no time difference: the late field's
interaural phase is already random). Per tail this is a handful of numbers (7 x 9 floats).
"""

from __future__ import annotations

import numpy as np

from avworld.acoustics.bands import band_split_masks

NUM_SECTORS = 8
NUM_BINS = NUM_SECTORS + 1  # 8 horizontal sectors + the vertical bin
_SECTOR_RAD = 2.0 * np.pi / NUM_SECTORS
#: fractions of an isotropic field's energy per bin: <cos^2 el> = 2/3 over the sphere, spread over the sectors
ISOTROPIC = np.array([2.0 / 3.0 / NUM_SECTORS] * NUM_SECTORS + [1.0 / 3.0])
_TABLE_STEP_DEG = 5  # relative azimuths of the HRTF power table


def direction_bins(arrive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sector index (m,), horizontal weight cos^2(elevation) (m,)) of unit arrival directions (m, 3)."""
    a = np.asarray(arrive, np.float64)
    az = np.arctan2(a[:, 1], a[:, 0])
    sector = np.floor((az + 0.5 * _SECTOR_RAD) / _SECTOR_RAD).astype(np.int64) % NUM_SECTORS
    return sector, np.clip(1.0 - a[:, 2] ** 2, 0.0, 1.0)


def bin_energy(arrive: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """(7, 9) energy per band of contributions ``energy`` (m, 7) arriving from unit directions ``arrive`` (m, 3)."""
    out = np.zeros((energy.shape[1], NUM_BINS))
    if len(arrive) == 0:
        return out
    sector, horiz = direction_bins(arrive)
    e = np.asarray(energy, np.float64)
    for b in range(e.shape[1]):  # 7 bincounts of m values
        out[b, :NUM_SECTORS] = np.bincount(sector, e[:, b] * horiz, NUM_SECTORS)
        out[b, NUM_SECTORS] = float(np.dot(e[:, b], 1.0 - horiz))
    return out


def box_direction_energy(trace, box_lo, box_hi, air_absorption: bool = True) -> np.ndarray:
    """(7, 9) late energy per band by arrival direction bin in a receiver box (see the module docstring)."""
    from avworld.acoustics.raytrace import box_chords

    _points, _path, energy, arrive = box_chords(trace, np.asarray(box_lo, float), np.asarray(box_hi, float),
                                                air_absorption)
    return bin_energy(arrive, energy)


def sphere_direction_energy(trace, listener, radius_m: float, air_absorption: bool = True) -> np.ndarray:
    """(7, 9) late energy per band by arrival direction bin at a receiver sphere."""
    from avworld.acoustics.raytrace import sphere_chords

    _path, energy, arrive = sphere_chords(trace, listener, radius_m, air_absorption)
    return bin_energy(arrive, energy)


def fractions(energy: np.ndarray) -> np.ndarray | None:
    """(7, 9) float32 fractions per band (rows sum to 1), or None when a band has no energy (isotropic)."""
    total = energy.sum(axis=1, keepdims=True)
    if not np.all(total > 0):
        return None
    return (energy / total).astype(np.float32)


def _power_table(hrtf) -> np.ndarray:
    """(A, 9, 2, 7) HRTF power per relative head azimuth (A steps of 5°), direction bin, ear and band.

    Bin k < 8 is the sector whose centre lies at azimuth ``k * 45° - a`` in the head frame for
    head yaw ``a``; cached on the HRTF object.
    """
    cache = getattr(hrtf, "_cache", None)
    if cache is not None and "late_power_table" in cache:
        return cache["late_power_table"]
    n_fft = max(256, 1 << int(np.ceil(np.log2(hrtf.irs.shape[-1]))))
    spec = np.fft.rfft(hrtf.irs.astype(np.float64), n_fft, axis=-1)  # (D, 2, F)
    masks = band_split_masks(n_fft, hrtf.sample_rate_hz) ** 2  # (7, F), sum 1 at every frequency
    power = np.einsum("def,bf->deb", np.abs(spec) ** 2, masks) / masks.sum(axis=1)  # (D, 2, 7) mean power per band
    d = hrtf.directions
    el = np.arcsin(np.clip(d[:, 2], -1.0, 1.0))
    az = np.arctan2(d[:, 1], d[:, 0])
    level = np.abs(el) <= np.radians(45.0)
    vertical = power[~level].mean(axis=0) if np.any(~level) else power.mean(axis=0)
    steps = np.arange(0, 360, _TABLE_STEP_DEG)
    table = np.empty((len(steps), NUM_BINS, 2, 7))
    for i, yaw_deg in enumerate(steps):
        for k in range(NUM_SECTORS):
            centre = np.radians(k * 45.0 - yaw_deg)
            diff = np.abs((az - centre + np.pi) % (2.0 * np.pi) - np.pi)
            pick = level & (diff <= np.radians(22.5) + 1e-9)
            if not np.any(pick):  # a sparse set: the nearest measured level direction
                pick = level & (diff <= diff[level].min() + 1e-9)
            table[i, k] = power[pick].mean(axis=0)
        table[i, NUM_SECTORS] = vertical
    if cache is not None:
        cache["late_power_table"] = table
    return table


def tail_gains(tail_dir: np.ndarray | None, hrtf, yaw_rad: float) -> np.ndarray | None:
    """(2, 7) float32 amplitude gains of the tail per ear and band for a head yaw; None for an isotropic tail."""
    if tail_dir is None:
        return None
    table = _power_table(hrtf)
    pos = (np.degrees(float(yaw_rad)) % 360.0) / _TABLE_STEP_DEG
    i0 = int(np.floor(pos)) % len(table)
    w = pos - np.floor(pos)
    p = (1.0 - w) * table[i0] + w * table[(i0 + 1) % len(table)]  # (9, 2, 7)
    f = np.asarray(tail_dir, np.float64)  # (7, 9)
    heard = np.einsum("bk,keb->eb", f, p)
    isotropic = np.einsum("k,keb->eb", ISOTROPIC, p)
    return np.sqrt(heard / isotropic).astype(np.float32)
