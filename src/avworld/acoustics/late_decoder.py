"""Binaural decoder of the directional late field: circular harmonics of the HRTF per octave band.

The late field (:mod:`avworld.acoustics.late_field`) is a set of direction bins fixed in the
world: 8 horizontal sectors (azimuths 0, 45, ..., 315 degrees, counter-clockwise from +x) and
one vertical bin (energy from above and below), each with its own independent noise. What an
ear hears of a horizontal sector at azimuth ``a`` for a head yaw ``phi`` is the HRTF at the
relative azimuth ``a - phi``. Written as a circular-harmonic series of that azimuth,

    h_e(theta, b) ~ sum_{|m| <= M} c[e, b, m] exp(i m theta),

the ear signal of *any* yaw becomes a fixed set of ``2 M + 1`` signals per ear mixed with
``cos(m phi)`` and ``sin(m phi)`` (a rotation of an order-M ambisonic field about z), so a turn
costs a weighted sum and never a new rendering. This module computes the coefficients ``c``
(and ``v``, the vertical bin's per-ear coefficient) once per HRTF and order.

Per octave band each direction's HRTF is one complex number: its band RMS magnitude and, below
:data:`PHASE_LIMIT_HZ`, its phase at the band centre relative to the head centre (the
interaural phase of the late field at low frequencies, where it is the cue). Above, only the
magnitude is fitted (magnitude least squares, "MagLS": Schoerkhuber, Zaunschirm & Hoeldrich,
DAGA 2018), because a low order cannot follow the fast-turning phase of a 4 kHz HRTF and would
lose its level, and interaural phase is not a cue there. Finally a 2x2 mixing per band (the
"diffuse-field covariance constraint" of Zaunschirm, Schoerkhuber & Hoeldrich, JASA 143 (2018);
the optimal mixing matrix of Vilkamo, Baeckstroem & Kuntz, JAES 61 (2013)) makes an isotropic
field come out with exactly the HRTF's diffuse-field interaural coherence, and with unit power
per ear and band (diffuse-field equalized: the tail keeps the energy per band that the ray
trace gives it, as the isotropic tail always did).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.acoustics.bands import BANDS_HZ, band_split_masks
from avworld.acoustics.late_direction import NUM_SECTORS

SECTOR_AZ_RAD = 2.0 * np.pi * np.arange(NUM_SECTORS) / NUM_SECTORS
#: isotropic field: fraction of the energy per sector (<cos^2 el> = 2/3 over the sphere) and vertical
ISO_SECTOR, ISO_VERTICAL = 2.0 / 3.0 / NUM_SECTORS, 1.0 / 3.0
#: interaural phase is fitted in bands up to here; above, magnitudes only (MagLS)
PHASE_LIMIT_HZ = 1500.0
MAX_ORDER = 3  # 8 sectors carry circular harmonics up to order 3 without aliasing
_N_FFT = 1024
_AZ_STEP_DEG = 5.0


@dataclass(frozen=True)
class LateDecoder:
    """Per-band circular-harmonic decoder of the late field for one HRTF.

    ``c`` (2, 7, 2M+1) complex: ear, band, order m = -M..M (index m + M); ``v`` (2, 7) complex:
    the vertical bin; ``coherence`` (7,) complex: the HRTF's diffuse-field interaural coherence
    per band (band-integrated cross-spectrum over the sphere: the target the decoder meets for an
    isotropic field); ``band_order`` (7,) the order each band needs (its higher orders are zero).
    """

    order: int
    c: np.ndarray
    v: np.ndarray
    coherence: np.ndarray
    band_order: np.ndarray

    def gains(self, rel_az_rad: np.ndarray) -> np.ndarray:
        """(N, 2, 7) complex decoded response of a horizontal plane wave at head-relative azimuths."""
        m = np.arange(-self.order, self.order + 1)
        e = np.exp(1j * np.outer(np.asarray(rel_az_rad, float), m))  # (N, 2M+1)
        return np.einsum("nm,ebm->neb", e, self.c)


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + 5**0.5) * k
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


def _band_values(hrtf, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band HRTFs of head-frame directions: ((N, 2, 7) complex one-number-per-band responses,
    (N, 2, F) complex spectra relative to the head centre) at :data:`_N_FFT`."""
    from avworld.acoustics.synthesis import _hrtf_onset  # the head-centre latency the early part removes

    spec = hrtf.lookup_spectra(dirs, _N_FFT).astype(np.complex128)  # includes the onsets.min() latency
    f = np.fft.rfftfreq(_N_FFT, 1.0 / hrtf.sample_rate_hz)
    latency = _hrtf_onset(hrtf) - hrtf.onsets.min()
    spec *= np.exp(2j * np.pi * f * (latency + hrtf.onsets.min()) / hrtf.sample_rate_hz)
    w = band_split_masks(_N_FFT, hrtf.sample_rate_hz) ** 2  # (7, F)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    mag = np.sqrt(np.einsum("nef,bf->neb", np.abs(spec) ** 2, w))
    centre = np.array([np.argmin(np.abs(f - fc)) for fc in BANDS_HZ])
    phase = np.angle(spec[:, :, centre])
    return mag * np.exp(1j * phase), spec


def _fit(h: np.ndarray, az: np.ndarray, order: int, magnitude_only: bool, start=None) -> np.ndarray:
    """(2M+1,) circular-harmonic coefficients of ``h`` (A,) on azimuths ``az`` (A,): least squares on
    the complex values, or magnitude least squares (phase iterated from ``start``)."""
    m = np.arange(-order, order + 1)
    Y = np.exp(1j * np.outer(az, m))
    pinv = np.linalg.pinv(Y)
    if not magnitude_only:
        return pinv @ h
    c = pinv @ (np.abs(h) * np.exp(1j * np.angle(Y @ start))) if start is not None else pinv @ np.abs(h)
    for _ in range(30):
        c = pinv @ (np.abs(h) * np.exp(1j * np.angle(Y @ c)))
    return c


def _sqrtm_chol(C: np.ndarray) -> np.ndarray:
    return np.linalg.cholesky(C + 1e-12 * np.eye(2))


def build_decoder(hrtf, order: int = 2) -> LateDecoder:
    """The late-field decoder of ``hrtf`` for circular-harmonic ``order`` (1..3); cached on the HRTF."""
    if not 1 <= int(order) <= MAX_ORDER:
        raise ValueError(f"late-field order must lie in 1..{MAX_ORDER} (8 direction sectors), got {order}")
    cache = getattr(hrtf, "_cache", None)
    key = ("late_decoder", int(order))
    if cache is not None and key in cache:
        return cache[key]
    M = int(order)
    # horizontal ring (elevation 0) and the vertical bin (the mean power of |elevation| > 45 degrees)
    az = np.radians(np.arange(0.0, 360.0, _AZ_STEP_DEG))
    ring = np.column_stack([np.cos(az), np.sin(az), np.zeros_like(az)])
    h_ring, _ = _band_values(hrtf, ring)  # (A, 2, 7)
    sphere = _fibonacci_sphere(1200)
    h_sph, spec_sph = _band_values(hrtf, sphere)
    up = np.abs(sphere[:, 2]) > np.sqrt(0.5)
    v = np.sqrt((np.abs(h_sph[up]) ** 2).mean(axis=0)).astype(np.complex128)  # (2, 7), zero phase
    c = np.zeros((2, 7, 2 * M + 1), np.complex128)
    for e in range(2):
        prev = None
        for b in range(7):
            mag_only = BANDS_HZ[b] > PHASE_LIMIT_HZ
            c[e, b] = _fit(h_ring[:, e, b], az, M, mag_only, start=prev)
            prev = c[e, b]
    # a band needs the orders that carry its HRTF's variation with azimuth: drop the highest orders
    # while they hold < 0.5 % of the band's power (KEMAR: order 1 at 125-250 Hz, 2 at 500 Hz, 3 above)
    power = (np.abs(c) ** 2).sum(axis=0)  # (7, 2M+1)
    band_order = np.full(7, M)
    for b in range(7):
        while band_order[b] > 1:
            m = band_order[b]
            if power[b, [M - m, M + m]].sum() >= 0.005 * power[b].sum():
                break
            c[:, b, [M - m, M + m]] = 0.0
            band_order[b] -= 1
    # target: the HRTF's diffuse-field covariance per band (band-integrated cross-spectrum over the
    # sphere), normalized to unit power per ear
    w = band_split_masks(_N_FFT, hrtf.sample_rate_hz) ** 2
    pl = np.einsum("nf,bf->b", np.abs(spec_sph[:, 0]) ** 2, w)
    pr = np.einsum("nf,bf->b", np.abs(spec_sph[:, 1]) ** 2, w)
    cross = np.einsum("nf,bf->b", spec_sph[:, 0] * np.conj(spec_sph[:, 1]), w)
    coherence = cross / np.sqrt(pl * pr)
    for b in range(7):
        Cy = np.array([[1.0, coherence[b]], [np.conj(coherence[b]), 1.0]])
        cb = c[:, b, :]  # (2, 2M+1)
        Cx = NUM_SECTORS * ISO_SECTOR * (cb @ cb.conj().T) + ISO_VERTICAL * np.outer(v[:, b], v[:, b].conj())
        Kx, Ky = _sqrtm_chol(Cx), _sqrtm_chol(Cy)
        U, _, Vh = np.linalg.svd(Kx.conj().T @ Ky)
        P = Vh.conj().T @ U.conj().T
        Mx = Ky @ P @ np.linalg.inv(Kx)
        c[:, b, :] = Mx @ cb
        v[:, b] = Mx @ v[:, b]
    dec = LateDecoder(M, c, v, coherence, band_order)
    if cache is not None:
        cache[key] = dec
    return dec
