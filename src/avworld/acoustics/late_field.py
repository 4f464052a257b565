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

NUM_DIRS = NUM_SECTORS + 1
_ROWS_IN = NUM_DIRS * 7 * 2  # noise rows: direction bin, band, {noise, Hilbert twin}


@lru_cache(maxsize=4)
def direction_noise_bank(sample_rate_hz: int, n_samples: int, seed: int = 24680) -> np.ndarray:
    """(126, n_samples) float32 read-only rows ``(bin k, band b, h)``: band b of white noise k (h = 0)
    and its Hilbert transform (h = 1); each white noise has unit variance, band b keeps its share."""
    rng = np.random.default_rng(seed)
    masks = band_split_masks(n_samples, sample_rate_hz)
    out = np.empty((NUM_DIRS, 7, 2, n_samples), np.float32)
    for k in range(NUM_DIRS):
        white = rng.standard_normal(n_samples)
        spec = np.fft.rfft(white / white.std())
        for b in range(7):
            part = spec * masks[b]
            out[k, b, 0] = np.fft.irfft(part, n_samples)
            out[k, b, 1] = np.fft.irfft(-1j * part, n_samples)
    out = out.reshape(_ROWS_IN, n_samples)
    out.flags.writeable = False
    return out


def component_weights(dec: LateDecoder) -> np.ndarray:
    """(2 (2M+1), 126) real weights of the noise rows in the components U[e, 0], U[e, m], V[e, m]."""
    M = dec.order
    R = 2 * M + 1
    W = np.zeros((2, R, NUM_DIRS, 7, 2))

    def put(e, r, k, g, imag_part: bool):
        # Re(g s^a) = Re g s - Im g Hs ; Im(g s^a) = Im g s + Re g Hs
        if imag_part:
            W[e, r, k, :, 0], W[e, r, k, :, 1] = g.imag, g.real
        else:
            W[e, r, k, :, 0], W[e, r, k, :, 1] = g.real, -g.imag

    for e in range(2):
        for k in range(NUM_SECTORS):
            a = SECTOR_AZ_RAD[k]
            put(e, 0, k, dec.c[e, :, M], False)
            for m in range(1, M + 1):
                plus = dec.c[e, :, M + m] * np.exp(1j * m * a)
                minus = dec.c[e, :, M - m] * np.exp(-1j * m * a)
                put(e, 2 * m - 1, k, plus + minus, False)
                put(e, 2 * m, k, plus - minus, True)
        put(e, 0, NUM_SECTORS, dec.v[e], False)
    return W.reshape(2 * R, _ROWS_IN).astype(np.float32)


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


#: columns per matrix product: (14 x 18) @ (18 x 1,024) stays under OpenBLAS's threshold for threads
#: (m n k < 262,144), whose spinning threads cost 10x when another process uses the second core
_GEMM_COLUMNS = 1024


def _shape(bank, offset, gp, Wb, rows, h, k, m, frac_t, R):
    """(2R, h + k m) components: per band b, its (9 directions x {noise, Hilbert}) = 18 noise rows times
    their amplitudes (value ``gp[b, :, j]`` at bin centre j, linear to the next), weighted by ``Wb[b]``
    (2R, 18) for the orders the band needs (``rows[b]`` = 2 M_b + 1 per ear)."""
    total = h + k * m
    out = np.zeros((2, R, total), np.float32)
    x = np.empty((gp.shape[1], total), np.float32)
    for b in range(7):
        rb = int(rows[b])
        gb = gp[b]
        x[:, :h] = gb[:, :1]
        body = x[:, h:].reshape(gp.shape[1], k, m)
        np.multiply((gb[:, 1:] - gb[:, :k])[:, :, None], frac_t, out=body)
        body += gb[:, :k, None]
        x *= bank[:, b, :, offset : offset + total].reshape(gp.shape[1], total)
        w = Wb[b].reshape(2, R, -1)[:, :rb].reshape(2 * rb, -1)
        ob = out[:, :rb].reshape(2 * rb, total) if rb < R else out.reshape(2 * R, total)
        acc = np.empty((2 * rb, _GEMM_COLUMNS), np.float32)
        for c0 in range(0, total, _GEMM_COLUMNS):  # small products: OpenBLAS keeps them on one thread
            c1 = min(c0 + _GEMM_COLUMNS, total)
            np.matmul(w, x[:, c0:c1], out=acc[:, : c1 - c0])
            if rb < R:
                out[:, :rb, c0:c1] += acc[:, : c1 - c0].reshape(2, rb, c1 - c0)
            else:
                ob[:, c0:c1] += acc[:, : c1 - c0]
    return out.reshape(2 * R, total)




class DirectionalTail:
    """The ``2 (2M+1)`` component signals of one spatial RIR's directional tail (read-only, (2R, n)),
    and the binaural tail at any yaw (:meth:`at`, cached for the last few yaws)."""

    def __init__(self, srir, dec: LateDecoder, n: int) -> None:
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
        g = amp.T[:, :, None] * np.sqrt(np.maximum(frac, 0.0))  # (B, 7, 9) amplitude per band and direction
        g = np.repeat(g.transpose(0, 2, 1)[:, :, :, None], 2, axis=3).reshape(bins, _ROWS_IN)  # (B, 126)
        W = component_weights(dec).reshape(2, 2 * dec.order + 1, NUM_DIRS, 7, 2)
        # amplitude per sample of each (direction, band): linear between bin centres (the first bin's
        # value before its centre, a ramp to zero after the last), as the isotropic tail's envelope;
        # built block by block (h samples, then k blocks of m from the bin centres), all contiguous
        h = (m + 1) // 2
        k = max(0, -(-(n - h) // m))
        gp = np.zeros((_ROWS_IN, k + 1), np.float32)
        gp[:, : min(bins, k + 1)] = g[: k + 1].T
        gp = gp.reshape(NUM_DIRS, 7, 2, k + 1)
        frac_t = ((np.arange(m) + (h - 0.5 * m)) / m).astype(np.float32)
        total = h + k * m
        bank_len = 1 << int(np.ceil(np.log2(max(2 * total, 4 * fs))))
        bank = direction_noise_bank(fs, bank_len).reshape(NUM_DIRS, 7, 2, bank_len)
        offset = int(srir.noise_seed % (bank_len - total))
        R = 2 * self.order + 1
        Wb = np.ascontiguousarray(W.transpose(3, 0, 1, 2, 4).reshape(7, 2 * R, NUM_DIRS * 2))  # (7, 2R, 18)
        rows = (2 * np.asarray(dec.band_order, np.int64) + 1)
        out = _shape(bank, offset, np.ascontiguousarray(gp.transpose(1, 0, 2, 3).reshape(7, NUM_DIRS * 2, k + 1)),
                     Wb, rows, h, k, m, frac_t, R)
        out = out[:, :n]
        self.components = out
        self.components.flags.writeable = False
        self._at: dict[float, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        return self.components.nbytes

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
        if len(self._at) >= 8:
            self._at.pop(next(iter(self._at)))
        self._at[key] = out
        return out
