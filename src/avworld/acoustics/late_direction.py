"""Direction bins of the late field: 8 horizontal sectors and one vertical bin.

Energy arriving at the listener from unit direction ``a`` (pointing from the listener toward where
the sound comes from) is split between the horizontal sector of its azimuth (8 sectors of 45
degrees centred on 0, 45, ..., 315 degrees in the world frame, counter-clockwise from +x), weighted
by cos^2(elevation), and the vertical bin, weighted by sin^2(elevation). An isotropic field puts
1/12 of its energy in each sector and 1/3 in the vertical bin (:data:`ISOTROPIC`).

Used by the listener-side trace (:mod:`avworld.acoustics.listener_trace`); the binaural rendering
of the bins is :mod:`avworld.acoustics.late_field`.
"""

from __future__ import annotations

import numpy as np

NUM_SECTORS = 8
NUM_BINS = NUM_SECTORS + 1  # 8 horizontal sectors + the vertical bin
_SECTOR_RAD = 2.0 * np.pi / NUM_SECTORS
#: fractions of an isotropic field's energy per bin: <cos^2 el> = 2/3 over the sphere, spread over the sectors
ISOTROPIC = np.array([2.0 / 3.0 / NUM_SECTORS] * NUM_SECTORS + [1.0 / 3.0])


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
