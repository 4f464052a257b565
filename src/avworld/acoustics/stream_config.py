"""Configuration, inputs and offline reference of the streaming binaural renderer
(:mod:`avworld.acoustics.stream`, which re-exports the public names)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    array, or an equal one; only the head turned) it reuses the tail's spectrum and convolves
    the chunk with it once, crossfading only the short early part. A read-only ``tail`` is
    kept by reference (a writeable one is copied); ``tail_spectrum`` is an optional callable
    ``nfft -> scipy.fft.rfft(tail, nfft)`` (cached).
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
