"""Configuration, inputs and offline reference of the streaming binaural renderer
(:mod:`avworld.acoustics.stream`, which re-exports the public names), and the
uniformly partitioned convolution it uses for the long tails of split RIRs."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal import fftconvolve


class StreamError(ValueError):
    """Bad streaming configuration or step input (wrong counts, shapes, lengths, NaN)."""


def _whole_samples(seconds: float, rate: int, name: str) -> int:
    exact = seconds * rate
    rounded = int(round(exact))
    if abs(exact - rounded) > 1e-6 * max(1.0, abs(exact)):
        raise StreamError(f"{name} = {seconds} s is {exact:.4f} samples at {rate} Hz; choose a whole number of samples")
    return rounded


@dataclass(frozen=True)
class StreamConfig:
    """Streaming renderer settings.

    Attributes:
        sample_rate_hz: rate of dry signals, RIRs and output.
        chunk_s: duration of one step's audio; must be a whole number of samples.
        crossfade_s: how an RIR change is faded in: None = linearly over the whole chunk,
            ``c > 0`` = raised cosine over the first ``c`` seconds, 0 = instant switch (clicks).
        noise_snr_db: microphone noise relative to each chunk's clean binaural power; None = no noise.
        max_rir_s: longest RIR accepted (sets the carry buffer length).
    """

    sample_rate_hz: int = 16000
    chunk_s: float = 0.25
    crossfade_s: float | None = None
    noise_snr_db: float | None = None
    max_rir_s: float = 2.0

    def __post_init__(self) -> None:
        fs = self.sample_rate_hz
        if isinstance(fs, bool) or not isinstance(fs, int | np.integer) or fs <= 0:
            raise StreamError(f"sample_rate_hz must be a positive integer, got {fs!r}")
        if not np.isfinite(self.chunk_s) or self.chunk_s <= 0:
            raise StreamError(f"chunk_s must be positive, got {self.chunk_s!r}")
        if _whole_samples(self.chunk_s, fs, "chunk_s") < 1:
            raise StreamError(f"chunk_s = {self.chunk_s} s is shorter than one sample at {fs} Hz")
        if self.crossfade_s is not None:
            if not np.isfinite(self.crossfade_s) or not 0.0 <= self.crossfade_s <= self.chunk_s:
                raise StreamError(
                    f"crossfade_s must be None (whole chunk) or between 0 and chunk_s = {self.chunk_s}, "
                    f"got {self.crossfade_s!r}"
                )
        if self.noise_snr_db is not None and not np.isfinite(self.noise_snr_db):
            raise StreamError(f"noise_snr_db must be a finite number of dB or None, got {self.noise_snr_db!r}")
        if not np.isfinite(self.max_rir_s) or self.max_rir_s <= 0 or int(round(self.max_rir_s * fs)) < 1:
            raise StreamError(f"max_rir_s must be positive (at least one sample), got {self.max_rir_s!r}")

    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_s * self.sample_rate_hz))

    @property
    def max_rir_samples(self) -> int:
        return int(round(self.max_rir_s * self.sample_rate_hz))

    @property
    def crossfade_samples(self) -> int:
        """Length of the fade-in of a new RIR (the whole chunk when ``crossfade_s`` is None)."""
        if self.crossfade_s is None:
            return self.chunk_samples
        return min(self.chunk_samples, int(round(self.crossfade_s * self.sample_rate_hz)))


def _fade_in(config: StreamConfig) -> np.ndarray:
    """(n,) float32 weight of the new RIR over the emission samples of a changing chunk."""
    n = config.chunk_samples
    m = config.crossfade_samples
    w = np.ones(n, np.float64)
    if config.crossfade_s is None:
        w = (np.arange(n) + 0.5) / n  # linear, symmetric: steps of 0.5/n at both chunk edges
    elif m > 0:
        w[:m] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    return w.astype(np.float32)


@dataclass(frozen=True, eq=False)
class SplitRIR:
    """A binaural RIR in two parts: ``tail`` ``(2, L)`` plus ``early`` ``(2, E)`` added at samples
    ``[start, start + E)`` (``0 <= start``, ``start + E <= L``); see
    :func:`~avworld.acoustics.synthesis.binaural_parts`.

    The stream convolves the parts separately, and while the same tail comes back (the same
    array, or an equal one; only the head turned) it reuses the tail's partition spectra and
    convolves the chunk with it once, crossfading only the short early part. A read-only
    ``tail`` is kept by reference (a writeable one is copied); ``tail_spectrum`` is an optional
    callable ``(block, nfft) -> partition_spectra(tail, block, nfft)`` (cached by the caller).
    """

    early: np.ndarray
    start: int
    tail: np.ndarray
    tail_spectrum: object = None

    @property
    def length(self) -> int:
        return int(self.tail.shape[1])

    def full(self) -> np.ndarray:
        """(2, L) float32 = tail + early in place: the RIR as one array."""
        out = np.array(self.tail, dtype=np.float32, copy=True)
        out[:, self.start : self.start + self.early.shape[1]] += self.early
        return out


def _ring_slices(start: int, length: int, size: int):
    """Physical ``(lo, hi, offset)`` slices of ``length`` logical samples from ``start`` in a ring of ``size``."""
    first = min(length, size - start)
    out = [(start, start + first, 0)]
    if length > first:
        out.append((0, length - first, first))
    return out


def _as_float32(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise StreamError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    # a float64 sum of float32 values cannot overflow: it is finite iff every value is
    if not np.isfinite(arr.sum(dtype=np.float64)):
        raise StreamError(f"{name} contains NaN or infinite values")
    return arr


def render_static(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Reference offline rendering: ``(2, n)`` float32 = the first ``n`` samples of ``signal * rir``.

    ``signal`` is ``(n,)`` dry audio, ``rir`` a ``(2, L)`` binaural RIR; computed in float64.
    """
    x = np.asarray(signal)
    h = np.asarray(rir)
    if x.ndim != 1 or x.size == 0:
        raise StreamError(f"signal must be a non-empty 1-D array, got shape {x.shape}")
    if h.ndim != 2 or h.shape[0] != 2 or h.shape[1] < 1:
        raise StreamError(f"rir must have shape (2, L) with L >= 1, got {h.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(h))):
        raise StreamError("signal or rir contains NaN or infinite values")
    y = fftconvolve(x[None, :].astype(np.float64), h.astype(np.float64), axes=-1)
    return y[:, : x.shape[0]].astype(np.float32)


# ---------------------------------------------------------------- partitioned convolution
# A split RIR's tail is long (up to max_rir_s, ~24,000 samples) and a chunk short (2,400): convolving
# each chunk with the whole tail takes one full-length inverse FFT per step (and one forward FFT per
# new tail). Uniformly partitioned convolution (overlap-add of tail partitions of one chunk each,
# accumulated in the frequency domain) needs one inverse FFT of twice the chunk per step instead,
# and its partition spectra cost less to compute than one full-length transform. Each chunk is still
# convolved with its own step's tail (the emission-time model), exactly, up to float rounding.


def partition_fft_size(block: int) -> int:
    """FFT size of the partitioned convolution of ``block``-sample chunks: a linear convolution of a
    chunk and a partition (``2 block - 1`` samples) fits without wrapping."""
    return sfft.next_fast_len(2 * int(block) - 1, real=True)


def partition_spectra(tail: np.ndarray, block: int, nfft: int) -> np.ndarray:
    """(P, 2, nfft // 2 + 1) complex64 read-only spectra of the ``P = ceil(L / block)`` consecutive
    ``block``-sample partitions of ``tail`` (2, L) (the last one zero-padded)."""
    L = tail.shape[1]
    P = max(1, -(-L // block))
    padded = np.zeros((2, P * block), np.float32)
    padded[:, :L] = tail
    out = sfft.rfft(padded.reshape(2, P, block).transpose(1, 0, 2), nfft, axis=-1)
    out.flags.writeable = False
    return out


class PartitionedAccumulator:
    """Frequency-domain overlap-add of chunk x partition products for one source.

    Slot ``(head + j) % R`` of the ring holds the summed spectra of everything that starts
    ``j`` blocks from now; :meth:`add` puts a chunk's products with partitions 0..P-1 into slots
    head..head + P - 1, :meth:`pop` turns the head slot into time samples (one inverse FFT),
    returns this block (plus the overhang of the previous slot) and advances the ring.
    """

    def __init__(self, block: int, max_samples: int) -> None:
        self.block = int(block)
        self.nfft = partition_fft_size(block)
        self.slots = max(1, -(-int(max_samples) // self.block)) + 1
        self.acc = np.zeros((self.slots, 2, self.nfft // 2 + 1), np.complex64)
        self.live = np.zeros(self.slots, bool)  # slots holding anything (others skip the inverse FFT)
        self.over = np.zeros((2, self.block - 1), np.float32)  # samples [block, 2 block - 1) of the last slot
        self.head = 0
        self._tmp = None

    def reset(self) -> None:
        self.acc[:] = 0
        self.live[:] = False
        self.over[:] = 0.0
        self.head = 0

    def copy(self) -> PartitionedAccumulator:
        """An independent accumulator in the same state (a simulator snapshot's)."""
        new = copy.copy(self)
        new.acc, new.live, new.over, new._tmp = self.acc.copy(), self.live.copy(), self.over.copy(), None
        return new

    def add(self, x_spec: np.ndarray, parts: np.ndarray) -> None:
        """Add ``x_spec`` (F,) times each partition spectrum of ``parts`` (P, 2, F), partition j ``j`` blocks on."""
        P = len(parts)
        if P >= self.slots:
            raise ValueError(f"{P} partitions do not fit a ring of {self.slots} slots")
        if self._tmp is None or self._tmp.shape[0] < P:
            self._tmp = np.empty((self.slots, 2, self.acc.shape[2]), np.complex64)
        tmp = np.multiply(x_spec, parts, out=self._tmp[:P])
        first = min(P, self.slots - self.head)
        self.acc[self.head : self.head + first] += tmp[:first]
        self.live[self.head : self.head + first] = True
        if P > first:
            self.acc[: P - first] += tmp[first:]
            self.live[: P - first] = True

    def pop(self) -> np.ndarray | None:
        """(2, block) float32 samples of this block (None when silent), advancing one block."""
        b, h = self.block, self.head
        self.head = (h + 1) % self.slots
        if not self.live[h]:
            if not self.over.any():
                return None
            out = np.zeros((2, b), np.float32)
            out[:, : b - 1] = self.over
            self.over[:] = 0.0
            return out
        y = sfft.irfft(self.acc[h], self.nfft, axis=-1)  # (2, nfft) float32; beyond 2 b - 1: zero up to rounding
        self.acc[h] = 0
        self.live[h] = False
        out = y[:, :b].copy()
        out[:, : b - 1] += self.over
        self.over[:] = y[:, b : 2 * b - 1]
        return out


# ---------------------------------------------------------------------- input checks
def checked_inputs(config: StreamConfig, num_sources: int, dry_chunks, rirs, previous) -> tuple[list, list]:
    """One step's dry chunks and RIRs, checked and as float32 (:class:`StreamError` naming the
    source and the fix otherwise). ``previous``: each source's RIR of the last step (a split
    RIR's tail already in use is not checked again)."""
    S, n = num_sources, config.chunk_samples
    if len(dry_chunks) != S:
        raise StreamError(f"expected {S} dry chunk(s), one per source, got {len(dry_chunks)}")
    if len(rirs) != S:
        raise StreamError(f"expected {S} RIR(s), one per source, got {len(rirs)}")
    dry, out_rirs = [], []
    for s in range(S):
        x = _as_float32(dry_chunks[s], f"dry chunk of source {s}")
        if x.shape != (n,):
            raise StreamError(
                f"dry chunk of source {s} has shape {x.shape}, expected ({n},) = chunk_s * sample_rate_hz "
                f"({config.chunk_s} s at {config.sample_rate_hz} Hz)"
            )
        h = rirs[s]
        if isinstance(h, SplitRIR):
            h = checked_split_rir(s, h, previous[s])
            length, whole = h.length, h.tail
        else:
            h = whole = _as_float32(h, f"RIR of source {s}")
            if h.ndim != 2 or h.shape[0] != 2 or h.shape[1] < 1:
                raise StreamError(
                    f"RIR of source {s} has shape {h.shape}, expected (2, L) binaural with L >= 1 "
                    f"(channel 0 = left ear)"
                )
            length = h.shape[1]
        if length > config.max_rir_samples:
            raise StreamError(
                f"RIR of source {s} is {whole.shape[1] / config.sample_rate_hz:.3f} s ({whole.shape[1]} samples), "
                f"longer than max_rir_s = {config.max_rir_s} s; truncate it or raise StreamConfig.max_rir_s"
            )
        dry.append(x)
        out_rirs.append(h)
    return dry, out_rirs


def checked_split_rir(s: int, h: SplitRIR, previous) -> SplitRIR:
    """Checked (float32, finite, consistent) parts of source ``s``'s split RIR; a tail already in
    use (``previous.tail``) is not re-checked, a writeable one is replaced by a read-only copy."""
    early = _as_float32(h.early, f"early part of the RIR of source {s}")
    tail = h.tail
    if not (isinstance(previous, SplitRIR) and previous.tail is tail):
        tail = _as_float32(tail, f"tail of the RIR of source {s}")
        if tail.flags.writeable:
            tail = tail.copy()
            tail.flags.writeable = False
    ok = (tail.ndim == 2 and tail.shape[0] == 2 and tail.shape[1] >= 1 and early.ndim == 2
          and early.shape[0] == 2 and 0 <= int(h.start) and int(h.start) + early.shape[1] <= tail.shape[1])
    if not ok:
        raise StreamError(f"split RIR of source {s}: tail {tail.shape} must be (2, L >= 1) and early "
                          f"{early.shape} (2, E) must fit in it from start = {h.start}")
    if early is h.early and tail is h.tail:
        return h
    return SplitRIR(early, int(h.start), tail, h.tail_spectrum if tail is h.tail else None)
