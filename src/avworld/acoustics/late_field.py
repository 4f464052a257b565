"""The directional late field, rendered once per position and turned with the head for free.

A spatial RIR's tail (:class:`~avworld.acoustics.spatial_rir.SpatialRIR`) carries the energy
per band and time (``tail``, from the source-side ray trace) and, when directional, the
fractions of that energy per direction bin, band and time segment after the direct sound
(``tail_dir`` (S, 7, 9), from :mod:`avworld.acoustics.listener_trace`). Each direction bin (8
horizontal sectors fixed in the world, one vertical bin) gets its own independent band noise
shaped by ``sqrt(energy x fraction)``, so energy from different directions is incoherent, as
in a real reverberant field.

The ears hear those bins through the HRTF, per band one complex gain (level and, below 1.5
kHz, interaural phase) written as a circular-harmonic series of the head-relative azimuth
(:mod:`avworld.acoustics.late_decoder`). Hence, for the order M of the decoder, what ear ``e``
hears at head yaw ``phi`` is

    y_e(phi) = U[e, 0] + sum_{m=1..M} cos(m phi) U[e, m] + sin(m phi) V[e, m],

``2 (2 M + 1)`` fixed signals per position (:class:`DirectionalTail`, rendered once). A new yaw
is a weighted sum of them, never a new rendering. The complex gain acts on a band noise
through its Hilbert twin: ``Re(g (n + i H n)) = Re(g) n - Im(g) H n``.

Rendering: each of the 126 noise rows (9 direction bins x 7 bands x {noise, Hilbert twin}) is
multiplied by its amplitude (linear between the 4 ms bins' centres, as the isotropic tail's
envelope), then one ``(2 R, 126) @ (126, n)`` product gives all components.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avworld.acoustics.bands import band_split_masks
from avworld.acoustics.late_decoder import NUM_SECTORS, SECTOR_AZ_RAD, LateDecoder
from avworld.acoustics.listener_trace import SEGMENT_EDGES_S
from avworld.acoustics.tail_kernel import amplitude_times_noise

NUM_DIRS = NUM_SECTORS + 1
_ROWS_IN = NUM_DIRS * 7 * 2  # noise rows: direction bin, band, {noise, Hilbert twin}


@lru_cache(maxsize=4)
def direction_noise_bank(sample_rate_hz: int, n_samples: int, seed: int = 24680) -> np.ndarray:
    """(7, 9, 2, n_samples) float32 read-only, band-major: band b of white noise k (direction bin k) in
    ``[b, k, 0]`` and its Hilbert transform in ``[b, k, 1]``; each white noise has unit variance, band b
    keeps its share of it."""
    rng = np.random.default_rng(seed)
    masks = band_split_masks(n_samples, sample_rate_hz)
    out = np.empty((7, NUM_DIRS, 2, n_samples), np.float32)
    for k in range(NUM_DIRS):
        white = rng.standard_normal(n_samples)
        spec = np.fft.rfft(white / white.std())
        for b in range(7):
            part = spec * masks[b]
            out[b, k, 0] = np.fft.irfft(part, n_samples)
            out[b, k, 1] = np.fft.irfft(-1j * part, n_samples)
    out.flags.writeable = False
    return out


def component_weights(dec: LateDecoder, sector_az: np.ndarray = SECTOR_AZ_RAD) -> np.ndarray:
    """(2 (2M+1), (K+1) x 7 x 2) real weights of the noise rows (K horizontal sectors at ``sector_az`` and
    the vertical bin, band, {noise, Hilbert twin}) in the components U[e, 0], U[e, m], V[e, m]."""
    M = dec.order
    R = 2 * M + 1
    K = len(sector_az)
    W = np.zeros((2, R, K + 1, 7, 2))

    def put(e, r, k, g, imag_part: bool):
        # Re(g s^a) = Re g s - Im g Hs ; Im(g s^a) = Im g s + Re g Hs
        if imag_part:
            W[e, r, k, :, 0], W[e, r, k, :, 1] = g.imag, g.real
        else:
            W[e, r, k, :, 0], W[e, r, k, :, 1] = g.real, -g.imag

    for e in range(2):
        for k in range(K):
            a = sector_az[k]
            put(e, 0, k, dec.c[e, :, M], False)
            for m in range(1, M + 1):
                plus = dec.c[e, :, M + m] * np.exp(1j * m * a)
                minus = dec.c[e, :, M - m] * np.exp(-1j * m * a)
                put(e, 2 * m - 1, k, plus + minus, False)
                put(e, 2 * m, k, plus - minus, True)
        put(e, 0, K, dec.v[e], False)
    return W.reshape(2 * R, (K + 1) * 14).astype(np.float32)


def yaw_weights(order: int, yaw_rad: float) -> np.ndarray:
    """(2M+1,) float32 weights of the components for a head yaw: 1, cos(phi), sin(phi), cos(2 phi), ..."""
    w = [1.0]
    for m in range(1, order + 1):
        w += [np.cos(m * yaw_rad), np.sin(m * yaw_rad)]
    return np.asarray(w, np.float32)


def bin_fractions(tail_dir: np.ndarray, n_bins: int, bin_s: float, direct_s: float) -> np.ndarray:
    """(n_bins, 7, 9) fractions per tail bin: ``tail_dir`` (S, 7, 9) per time segment after the direct
    sound, interpolated linearly in time between the segments' centres (constant beyond)."""
    edges = np.asarray(SEGMENT_EDGES_S)
    centres = np.append(0.5 * (edges[:-1] + edges[1:]), edges[-1] + 0.1) + direct_s
    t = (np.arange(n_bins) + 0.5) * bin_s
    pos = np.interp(t, centres, np.arange(len(centres)))
    i0 = np.minimum(np.floor(pos).astype(np.int64), len(centres) - 2)
    w = (pos - i0)[:, None, None]
    return ((1.0 - w) * tail_dir[i0] + w * tail_dir[i0 + 1]).astype(np.float32)


#: OpenBLAS runs a product on one thread when m n k < 262,144; its spinning threads cost 10x when
#: another process uses the second core (a 14 x 18 x 16,000 product took 80 ms instead of 6)
_BLAS_ONE_THREAD = 262_144


def _shape(bank, offset, gp, W, h, m, frac_t, j0, j1):
    """(2R, width) components over blocks ``j0 .. j1 - 1`` (block -1: the ``h`` samples before the first
    bin centre; block j >= 0: the ``m`` samples from centre j): the noise rows ``bank[:, :D]`` (band,
    direction, {noise, Hilbert}) from ``offset`` times their amplitudes (``gp`` (7 x 2D, k + 1): value at
    bin centre j, linear to the next), weighted by ``W`` (2R, 7 x 2D). All bands in one product, in
    column pieces small enough for OpenBLAS to stay on one thread (see :data:`_GEMM_COLUMNS`)."""
    n_in = gp.shape[0]
    x = amplitude_times_noise(bank, offset, gp, h, m, frac_t, j0, j1, n_in // 14)
    width = x.shape[1]
    out = np.empty((W.shape[0], width), np.float32)
    cols = max(128, (_BLAS_ONE_THREAD // (W.shape[0] * n_in)) // 64 * 64)
    for c0 in range(0, width, cols):
        c1 = min(c0 + cols, width)
        np.matmul(W, x[:, c0:c1], out=out[:, c0:c1])
    return out


#: the late field's second stage: 4 horizontal sectors (0, 90, 180, 270 degrees) + vertical, order 1
LATE_SECTOR_AZ_RAD = 0.5 * np.pi * np.arange(4)
#: the second stage starts this long after the direct sound (the start of the last time segment)
LATE_STAGE_S = SEGMENT_EDGES_S[-1]


def _merge_to_quadrants(frac: np.ndarray) -> np.ndarray:
    """(..., 7, 5) fractions on 4 quadrant directions + vertical from (..., 7, 9) on 8 sectors + vertical:
    a sector on a quadrant direction goes to it, one between two quadrants half to each."""
    out = np.empty(frac.shape[:-1] + (5,), frac.dtype)
    for j in range(4):
        out[..., j] = frac[..., 2 * j] + 0.5 * (frac[..., (2 * j - 1) % 8] + frac[..., 2 * j + 1])
    out[..., 4] = frac[..., 8]
    return out


_WEIGHTS: dict[tuple, tuple] = {}


def _band_major_weights(dec: LateDecoder, sector_az: np.ndarray) -> np.ndarray:
    """:func:`component_weights` with the noise rows in the bank's order (band, direction, {noise,
    Hilbert}), read-only; cached per decoder (decoders are cached per HRTF and order, and this costs
    ~0.1 ms, a twentieth of a tail)."""
    key = (id(dec), sector_az.tobytes())
    hit = _WEIGHTS.get(key)
    if hit is not None and hit[0] is dec:
        return hit[1]
    R2, K = 2 * (2 * dec.order + 1), len(sector_az)
    W = component_weights(dec, sector_az).reshape(R2, K + 1, 7, 2).transpose(0, 2, 1, 3).reshape(R2, -1)
    W = np.ascontiguousarray(W)
    W.flags.writeable = False
    if len(_WEIGHTS) >= 16:
        _WEIGHTS.pop(next(iter(_WEIGHTS)))
    _WEIGHTS[key] = (dec, W)
    return W


class DirectionalTail:
    """The ``2 (2M+1)`` component signals of one spatial RIR's directional tail (read-only, (2R, n)),
    and the binaural tail at any yaw (:meth:`at`, cached for the last few yaws)."""

    def __init__(self, srir, dec: LateDecoder, n: int, late_dec: LateDecoder | None = None) -> None:
        self.order = dec.order
        fs = srir.sample_rate_hz
        spb = srir.tail_bin_s * fs
        m = int(round(spb))
        if abs(spb - m) > 1e-9 or m < 2:
            raise ValueError(f"tail bins of {srir.tail_bin_s} s are not a whole number of samples at {fs} Hz")
        amp = np.sqrt(np.maximum(srir.tail, 0.0) / np.float32(spb)).astype(np.float32)  # (7, B)
        bins = amp.shape[1]
        direct_s = float(srir.delay_s.min()) if len(srir.delay_s) else 0.0
        frac = bin_fractions(np.asarray(srir.tail_dir, np.float32), bins, srir.tail_bin_s, direct_s)  # (B, 7, 9)
        # blocks: h samples before the first bin centre, then k blocks of m samples from the bin centres
        h = (m + 1) // 2
        k = max(0, -(-(n - h) // m))
        total = h + k * m
        frac_t = ((np.arange(m) + (h - 0.5 * m)) / m).astype(np.float32)
        bank_len = 1 << int(np.ceil(np.log2(max(2 * total, 4 * fs))))
        bank = direction_noise_bank(fs, bank_len)
        offset = int(srir.noise_seed % (bank_len - total))
        R = 2 * self.order + 1
        # stage 1, up to LATE_STAGE_S after the direct sound (+ one block to crossfade): 8 sectors + vertical
        # at the decoder's order; stage 2, the rest: 4 quadrants + vertical at order 1 (a late field close to
        # diffuse needs no more, and this costs ~1/3), from other noise rows of the bank
        jc = int(np.clip(np.ceil(((direct_s + LATE_STAGE_S) * fs - h) / m), 0, k)) if late_dec is not None else k
        out = np.zeros((2, R, total), np.float32)
        stop1 = min(jc + 1, k)
        if stop1 > -1:
            g = self._amplitudes(amp, frac, k)  # (7 x 18, k + 1)
            part = _shape(bank, offset, g, _band_major_weights(dec, SECTOR_AZ_RAD), h, m, frac_t, -1, stop1)
            out[:, :, : part.shape[1]] = part.reshape(2, R, -1)
        if jc < k:
            g4 = self._amplitudes(amp, _merge_to_quadrants(frac), k)  # (7 x 10, k + 1)
            offset2 = (offset + bank_len // 2) % (bank_len - total)  # noise independent of stage 1's
            part = _shape(bank, offset2, g4, _band_major_weights(late_dec, LATE_SECTOR_AZ_RAD), h, m, frac_t, jc, k)
            part = part.reshape(2, 3, -1)
            lo = h + jc * m
            if stop1 > jc:  # crossfade block jc with equal power (the two stages' noises are independent)
                ramp = (np.arange(m) + 0.5) / m
                out[:, :, lo : lo + m] *= np.sqrt(1.0 - ramp).astype(np.float32)
                part[:, :, :m] *= np.sqrt(ramp).astype(np.float32)
            out[:, :3, lo:] += part
        self.components = out.reshape(2 * R, total)[:, :n]
        self.components.flags.writeable = False
        self._at: dict[float, np.ndarray] = {}

    @staticmethod
    def _amplitudes(amp: np.ndarray, frac: np.ndarray, k: int) -> np.ndarray:
        """(7 x D x 2, k + 1) float32 amplitude per (band, direction, {noise, Hilbert}) and bin centre:
        ``sqrt(energy x fraction)``, zero beyond the tail's last bin."""
        bins, D = amp.shape[1], frac.shape[-1]
        g = amp.T[:, :, None] * np.sqrt(np.maximum(frac, 0.0))  # (B, 7, D)
        out = np.zeros((7, D, 2, k + 1), np.float32)
        nb = min(bins, k + 1)
        out[:, :, :, :nb] = g[:nb].transpose(1, 2, 0)[:, :, None, :]
        return out.reshape(7 * 2 * D, k + 1)

    #: binaural tails kept per spatial RIR for recent yaws (:meth:`at`)
    YAWS_KEPT = 8

    @property
    def nbytes(self) -> int:
        """Bytes this object may hold: the components and, at most, :attr:`YAWS_KEPT` rendered yaws."""
        return self.components.nbytes + self.YAWS_KEPT * 2 * self.components.shape[1] * 4

    def at(self, yaw_rad: float) -> np.ndarray:
        """(2, n) float32 read-only binaural tail for head yaw ``yaw_rad`` (a weighted sum of the components)."""
        key = round(float(yaw_rad), 6)
        hit = self._at.get(key)
        if hit is not None:
            return hit
        R = 2 * self.order + 1
        w = yaw_weights(self.order, key)
        c = self.components
        out = np.stack([w @ c[:R], w @ c[R:]])
        out.flags.writeable = False
        if len(self._at) >= self.YAWS_KEPT:
            self._at.pop(next(iter(self._at)))
        self._at[key] = out
        return out
