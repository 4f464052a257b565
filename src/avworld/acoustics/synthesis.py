"""Render a :class:`~avworld.acoustics.spatial_rir.SpatialRIR` into sampled impulse responses.

* Early arrivals: each arrival becomes a short block, its band amplitudes interpolated
  into a smooth zero-phase response, delayed by its exact (fractional) delay in the
  frequency domain; binaural blocks are also multiplied by the HRTF of the arrival's
  direction *relative to the head* (so changing only the yaw re-renders arrivals and
  never re-simulates). Blocks are added into the output at their integer delays.
* Diffuse tail: band-limited noise (fixed, seeded noise bank, cut at an offset chosen
  per RIR) shaped by the square root of the per-band energy envelope. The two ears get
  noises with the interaural coherence of a diffuse field, ``sinc(2 f d / c)`` for
  ears ``d`` = 0.18 m apart. By default the tail is isotropic: the same at every yaw,
  rendered once per spatial RIR and cached. When the spatial RIR carries the late field's
  direction (``AcousticConfig.directional_tail``, experimental), each ear's bands are scaled
  by that direction as heard at the head's yaw (:mod:`avworld.acoustics.late_direction`), and
  the tail is rendered (and cached) per yaw.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from avworld.acoustics.bands import BANDS_HZ, band_gain_response, band_split_masks
from avworld.acoustics.late_decoder import build_decoder
from avworld.acoustics.late_field import DirectionalTail
from avworld.acoustics.spatial_rir import SpatialRIR

EAR_DISTANCE_M = 0.18
_TAIL_CACHE: dict[int, tuple] = {}
_TAIL_CACHE_SIZE = 64  # rendered tails are ~100-200 kB each; only recent RIRs get re-rendered


def _next_pow2(n: int) -> int:
    return 1 << int(np.ceil(np.log2(max(n, 2))))


@lru_cache(maxsize=8)
def _noise_bank(sample_rate_hz: int, n_samples: int, seed: int = 12345) -> np.ndarray:
    """(2, 7, n_samples) float32 band parts of two independent unit-variance white noises.

    Band b keeps its share of the white noise's power (its share of the spectrum), so a
    band gain g_b and a band energy E_b mean the same thing for the tail as for the image
    sources, whose band filters act on a flat spectrum: energy sum_b E_b * share_b.
    (Normalizing each band to unit variance instead would count the tail 1 / share_b
    times too loud in band b, about 7x overall.)
    """
    rng = np.random.default_rng(seed)
    masks = band_split_masks(n_samples, sample_rate_hz)
    out = np.empty((2, 7, n_samples), np.float32)
    for ear in range(2):
        white = rng.standard_normal(n_samples)
        spec = np.fft.rfft(white / white.std())
        for b in range(7):
            out[ear, b] = np.fft.irfft(spec * masks[b], n_samples)
    return out


@lru_cache(maxsize=8)
def _tail_noises(sample_rate_hz: int, n_samples: int) -> np.ndarray:
    """(3, 7, n_samples) float32 band noises: the mono tail's, and the left and right ears'.

    The ears get ``a n1 +- b n2`` with ``a = sqrt((1 + g) / 2)``, ``b = sqrt((1 - g) / 2)``:
    unit power per band and interaural coherence ``g = |sinc(2 f d / c)|`` (diffuse field).
    """
    bank = _noise_bank(sample_rate_hz, n_samples)
    gamma = np.abs(np.sinc(2.0 * BANDS_HZ * EAR_DISTANCE_M / 343.0)).astype(np.float32)[:, None]
    a, b = np.sqrt((1 + gamma) / 2), np.sqrt((1 - gamma) / 2)
    common, diff = a * bank[0], b * bank[1]
    out = np.stack([bank[0], common + diff, common - diff]).astype(np.float32)
    out.flags.writeable = False
    return out


def _envelope_pieces(srir: SpatialRIR, n: int):
    """The tail's amplitude envelope as pieces, or None when bins are not whole numbers of samples.

    Returns ``(head, coef, frac, h, k, m)``: the (7,) amplitude for samples ``[0, h)`` (the first
    bin's value before the first bin centre), then ``k`` blocks of ``m`` samples starting at the
    bin centres, where block ``j`` has amplitude ``coef[j, 0] + coef[j, 1] * frac`` per band
    (``coef`` (k, 2, 7): value at the centre and slope to the next centre; linear interpolation,
    a ramp to zero over the half bin after the last one).
    """
    fs = srir.sample_rate_hz
    bins = srir.tail.shape[1]
    spb = srir.tail_bin_s * fs  # samples per bin
    amp = np.sqrt(np.maximum(srir.tail, 0.0) / np.float32(spb)).astype(np.float32)
    m = int(round(spb))
    if abs(spb - m) > 1e-9 or m < 2:
        return None, amp
    h = (m + 1) // 2  # first sample at or after centre 0
    k = max(0, -(-(n - h) // m))  # blocks needed to cover [h, n)
    ampp = np.zeros((7, k + 1), np.float32)
    ampp[:, : min(bins, k + 1)] = amp[:, : k + 1]
    coef = np.empty((k, 2, 7), np.float32)
    coef[:, 0] = ampp[:, :k].T
    coef[:, 1] = (ampp[:, 1:] - ampp[:, :k]).T
    frac = ((np.arange(m) + (h - 0.5 * m)) / m).astype(np.float32)  # (m,) position between centres
    return (amp[:, 0], coef, frac, h, k, m), amp


def _envelope(srir: SpatialRIR, n: int) -> np.ndarray:
    """(7, n) float32 amplitude envelope per sample from the tail's energy-per-bin histogram."""
    pieces, amp = _envelope_pieces(srir, n)
    if pieces is None:
        spb = srir.tail_bin_s * srir.sample_rate_hz
        centres = (np.arange(amp.shape[1]) + 0.5) * spb
        t = np.arange(n)
        return np.stack([np.interp(t, centres, amp[b], left=amp[b, 0], right=0.0) for b in range(7)]).astype(
            np.float32)
    head, coef, frac, h, k, m = pieces
    env = np.empty((7, h + k * m), np.float32)
    env[:, :h] = head[:, None]
    env[:, h:] = (coef[:, 0, :, None] + coef[:, 1, :, None] * frac).transpose(1, 0, 2).reshape(7, k * m)
    return env[:, :n]


def _shape_noise(srir: SpatialRIR, n: int, noises: np.ndarray, offset: int,
                 gains: np.ndarray | None = None) -> np.ndarray:
    """(C, n) float32: sum over bands of envelope x band noise, for the C noises (C, 7, bank) from ``offset``;
    ``gains`` (C, 7) scale each channel's bands (the late field's direction, :func:`tail_gains`).

    Block by block (bins are whole numbers of samples): each block is a (2, 7) @ (7, m) product
    of the envelope's value and slope with the block's band noises, so the (7, n) per-sample
    envelope is never materialized (it is memory traffic, not arithmetic, that costs here).
    """
    pieces, _ = _envelope_pieces(srir, n)
    # whole blocks may run past n; near the end of the noise bank they would run past the bank too
    if pieces is None or offset + pieces[3] + pieces[4] * pieces[5] > noises.shape[-1]:
        env = _envelope(srir, n)
        return np.stack([np.einsum("bt,bt->t", env if gains is None else env * gains[c][:, None],
                                   nz[:, offset : offset + n]) for c, nz in enumerate(noises)])
    head, coef, frac, h, k, m = pieces
    out = np.empty((len(noises), h + k * m), np.float32)
    for c, nz in enumerate(noises):
        g_head, g_coef = (head, coef) if gains is None else (head * gains[c], coef * gains[c])
        out[c, :h] = g_head @ nz[:, offset : offset + h]
        blocks = nz[:, offset + h : offset + h + k * m].reshape(7, k, m).transpose(1, 0, 2)  # (k, 7, m) view
        r = np.matmul(g_coef, blocks)  # (k, 2, m): value and slope parts
        body = out[c, h:].reshape(k, m)
        np.multiply(r[:, 1], frac, out=body)
        body += r[:, 0]
    return out[:, :n]


def render_tail(srir: SpatialRIR, n: int, binaural: bool, gains: np.ndarray | None = None) -> np.ndarray:
    """(2, n) or (1, n) float32 diffuse tail, ears' bands scaled by ``gains`` (2, 7) if given (the late
    field's direction for one head yaw, :func:`~avworld.acoustics.late_direction.tail_gains`); cached per
    spatial RIR object and gains; read-only."""
    key = (id(srir), n, binaural, None if gains is None else gains.tobytes())
    hit = _TAIL_CACHE.pop(key, None)
    if hit is not None and hit[0] is srir:
        _TAIL_CACHE[key] = hit  # least recently used first out: a position the agent turns at stays
        return hit[1]
    fs = srir.sample_rate_hz
    bank_len = _next_pow2(max(n * 2, fs * 4))
    noises = _tail_noises(fs, bank_len)
    offset = int(srir.noise_seed % (bank_len - n))
    out = _shape_noise(srir, n, noises[1:] if binaural else noises[:1], offset, gains if binaural else None)
    out.flags.writeable = False  # shared: by the cache, and by the streams that convolve it
    if len(_TAIL_CACHE) >= _TAIL_CACHE_SIZE:
        _TAIL_CACHE.pop(next(iter(_TAIL_CACHE)))
    _TAIL_CACHE[key] = (srir, out)
    return out


_DIR_CACHE: dict[tuple, tuple] = {}
#: bytes of directional tails kept (14 components x n float32 and up to 8 rendered yaws, 2 x n float32 each:
#: ~2.8 MB for a 1.5 s tail at 16 kHz; DirectionalTail.nbytes counts both): an
#: agent revisits positions (turning on the spot, episodes of a pool starting at the same points), and
#: a rebuild costs 2-3 ms; the least recently used go first
DIR_CACHE_BYTES = 192 << 20
_dir_bytes = 0


def directional_tail(srir: SpatialRIR, hrtf, n: int) -> DirectionalTail:
    """The :class:`~avworld.acoustics.late_field.DirectionalTail` of a spatial RIR with ``tail_dir``
    (rendered once per spatial RIR, HRTF and length; cached within :data:`DIR_CACHE_BYTES`)."""
    global _dir_bytes
    key = (id(srir), id(hrtf), n)
    hit = _DIR_CACHE.pop(key, None)
    if hit is not None:
        if hit[0] is srir and hit[1] is hrtf:
            _DIR_CACHE[key] = hit  # least recently used first out
            return hit[2]
        _dir_bytes -= hit[2].nbytes
    dt = DirectionalTail(srir, build_decoder(hrtf, srir.late_order), n, late_dec=build_decoder(hrtf, 1))
    while _DIR_CACHE and _dir_bytes + dt.nbytes > DIR_CACHE_BYTES:
        _dir_bytes -= _DIR_CACHE.pop(next(iter(_DIR_CACHE)))[2].nbytes
    _DIR_CACHE[key] = (srir, hrtf, dt)
    _dir_bytes += dt.nbytes
    return dt


def late_tail(srir: SpatialRIR, hrtf, n: int, yaw_rad: float) -> np.ndarray:
    """(2, n) float32 read-only binaural tail for a head yaw: the directional late field turned to the
    yaw when the spatial RIR has one, else the isotropic tail (the same array at every yaw)."""
    if srir.tail_dir is None:
        return render_tail(srir, n, binaural=True)
    return directional_tail(srir, hrtf, n).at(yaw_rad)


def _mono_blocks(srir: SpatialRIR, n_fft: int, shift: int) -> np.ndarray:
    """(A, 1, n_fft) blocks; arrival a's block starts at sample floor(delay) - shift."""
    delay = srir.delay_s * srir.sample_rate_hz
    frac = delay - np.floor(delay)
    f = np.arange(n_fft // 2 + 1)
    phase = np.exp(-2j * np.pi * f[None, :] * (frac[:, None] + shift) / n_fft)
    blocks = np.fft.irfft(_band_response(srir, n_fft)[:, 0] * phase, n_fft, axis=-1)[:, None]
    # taper the band filter's (short) ringing; the window peaks at the arrival (shift = n_fft / 2)
    return blocks * np.hanning(n_fft + 1)[:n_fft]


def _add_blocks(out: np.ndarray, blocks: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Add (A, C, B) blocks into ``out`` (C, n) at ``starts`` (clipped to the output)."""
    n, width = out.shape[1], blocks.shape[2]
    for a, s0 in enumerate(np.asarray(starts).tolist()):  # ~10-300 slice adds beat a bincount
        lo, hi = max(s0, 0), min(s0 + width, n)
        if hi > lo:
            out[:, lo:hi] += blocks[a, :, lo - s0 : hi - s0]
    return out


def rir_length(srir: SpatialRIR) -> int:
    return int(np.ceil(srir.duration_s * srir.sample_rate_hz))


def mono_rir(srir: SpatialRIR, n_fft: int = 256) -> np.ndarray:
    """(n,) float32 omnidirectional impulse response at the listener."""
    n = rir_length(srir)
    shift = n_fft // 2
    starts = np.floor(srir.delay_s * srir.sample_rate_hz).astype(np.int64) - shift
    out = render_tail(srir, n, binaural=False).astype(np.float64)
    return _add_blocks(out, _mono_blocks(srir, n_fft, shift), starts)[0].astype(np.float32)


def head_directions(doa_world: np.ndarray, yaw_rad: float) -> np.ndarray:
    """World-frame unit vectors -> head frame (+x nose, +y left ear, +z up) for a head yaw."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    v = np.asarray(doa_world, dtype=np.float64)
    return np.column_stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1], v[:, 2]])


@lru_cache(maxsize=16)
def _hrtf_onset(hrtf) -> int:
    """The HRTF's latency at the head centre: the mean onset of both ears for a frontal source.

    Subtracting it makes a frontal arrival reach both ears at its path delay ``d / c``;
    for a lateral source the near ear then leads by about half the ITD, as physically.
    """
    idx, w = hrtf.lookup_weights(np.array([[1.0, 0.0, 0.0]]))
    return int(round(float(np.einsum("nk,nkc->nc", w, hrtf.onsets[idx]).mean())))


_RESP_CACHE: dict[int, tuple] = {}


def _band_response(srir: SpatialRIR, n_fft: int) -> np.ndarray:
    """(A, 1, F) float32 band-gain responses of the arrivals (yaw-independent, cached)."""
    hit = _RESP_CACHE.get(id(srir))
    if hit is not None and hit[0] is srir and hit[1] == n_fft:
        return hit[2]
    resp = band_gain_response(srir.gain.astype(np.float64), n_fft, srir.sample_rate_hz).astype(np.float32)[:, None]
    if len(_RESP_CACHE) >= _TAIL_CACHE_SIZE:
        _RESP_CACHE.pop(next(iter(_RESP_CACHE)))
    _RESP_CACHE[id(srir)] = (srir, n_fft, resp)
    return resp


def binaural_rir(srir: SpatialRIR, hrtf, yaw_rad: float) -> np.ndarray:
    """(2, n) float32 binaural impulse response (channel 0 = left ear) for a head yaw.

    Each arrival's HRTF is interpolated between measured directions with the HRIR onsets
    aligned first (so high frequencies do not smear) and the interpolated onset put back
    as a phase, together with the arrival's fractional delay. The HRTF's latency at the
    head centre is removed (see :func:`_hrtf_onset`): a frontal arrival reaches both ears
    at its path delay. Equals ``tail + early`` of :func:`binaural_parts` (early placed at its start).
    """
    early, start, tail = binaural_parts(srir, hrtf, yaw_rad)
    out = tail.copy()
    out[:, start : start + early.shape[1]] += early
    return out


def binaural_parts(srir: SpatialRIR, hrtf, yaw_rad: float) -> tuple[np.ndarray, int, np.ndarray]:
    """The binaural RIR of :func:`binaural_rir` in two parts: ``(early, start, tail)``.

    ``early`` (2, E) float32 holds the discrete arrivals (HRTF-filtered blocks) for samples
    ``[start, start + E)``; ``tail`` (2, n) float32 is the diffuse tail, shared (read-only). An
    isotropic tail (``srir.tail_dir`` None) is the same array at every yaw, so the streaming
    convolution reuses its spectrum while only the head turns; a directional one is rendered
    (and cached) per yaw, with per-ear band gains from the late field's direction.
    """
    if hrtf.sample_rate_hz != srir.sample_rate_hz:
        raise ValueError(
            f"HRTF sample rate {hrtf.sample_rate_hz} Hz != RIR sample rate {srir.sample_rate_hz} Hz; "
            "load the HRTF at the engine's rate"
        )
    fs = srir.sample_rate_hz
    n = rir_length(srir)
    n_fft = _next_pow2(hrtf.irs.shape[-1] + 128)
    shift = 64
    onsets = hrtf.onsets
    idx, w = hrtf.lookup_weights(head_directions(srir.doa, yaw_rad))
    aligned = hrtf.aligned_spectra(n_fft)  # (D, 2, F)
    A, F = len(idx), n_fft // 2 + 1
    # interpolated spectra: (A, 1, 3) weights @ (A, 3, 2 F) spectra of the 3 directions
    h = np.matmul(w.astype(np.complex64)[:, None, :],
                  np.take(aligned, idx.reshape(-1), axis=0).reshape(A, 3, 2 * F)).reshape(A, 2, F)
    delay = srir.delay_s * fs
    start = np.floor(delay)
    # per arrival and ear: fractional path delay + block offset + interpolated HRIR onset
    d = (delay - start)[:, None] + shift + np.einsum("ak,akc->ac", w, onsets[idx]) - onsets.min()
    ang = (-2.0 * np.pi / n_fft * d[..., None]).astype(np.float32) * np.arange(F, dtype=np.float32)
    phase = np.empty(ang.shape, np.complex64)
    np.cos(ang, out=phase.real)
    np.sin(ang, out=phase.imag)
    h *= phase
    h *= _band_response(srir, n_fft)
    # scipy.fft keeps complex64 -> float32 (numpy's FFT would promote to float64)
    blocks = scipy.fft.irfft(h, n_fft, axis=-1)
    starts = start.astype(np.int64) - shift - _hrtf_onset(hrtf)
    tail = late_tail(srir, hrtf, n, yaw_rad)
    lo = int(min(max(int(starts.min()), 0), n)) if A else 0
    hi = int(min(max(int(starts.max()) + n_fft, lo), n)) if A else 0
    early = np.zeros((2, hi - lo), np.float32)
    _add_blocks(early, blocks, starts - lo)
    return early, lo, tail
