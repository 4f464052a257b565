"""Dry source signals read sample-exactly in simulation time.

A :class:`SourceSignal` is the anechoic ("dry") sound a source emits. The simulator
asks it for the samples of each step with :meth:`SourceSignal.read`, indexed in
*simulation* samples (sample 0 = simulation time 0), and feeds them to the
:class:`~avworld.acoustics.stream.BinauralStream` together with the step's RIRs.

* The source starts playing at ``start_offset_s`` of simulation time; before that it
  is silent. A negative offset means it started before time 0 (reading at 0 returns
  the audio from ``-start_offset_s`` on), which is how to give a looping sound a
  random phase.
* ``loop=True``: the audio repeats forever, wrapping seamlessly, so reading in chunks
  gives exactly the samples of one long read.
* ``loop=False``: the audio plays once; samples after its end are zeros.
"""

from __future__ import annotations

import numpy as np


class SignalError(ValueError):
    """Bad source audio or a bad read request."""


class SourceSignal:
    """A dry, mono source signal.

    Args:
        audio: ``(n,)`` samples (converted to a float32 copy). Must be 1-D, non-empty and finite.
        sample_rate_hz: its sample rate; must be a positive integer and match the stream that renders it.
        loop: repeat forever (True) or play once and fall silent (False).
        start_offset_s: simulation time at which the source starts playing (rounded to the nearest sample).
    """

    def __init__(self, audio: np.ndarray, sample_rate_hz: int, loop: bool = True, start_offset_s: float = 0.0):
        if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, int | np.integer) or sample_rate_hz <= 0:
            raise SignalError(f"sample_rate_hz must be a positive integer, got {sample_rate_hz!r}")
        arr = np.asarray(audio)
        if arr.ndim != 1:
            raise SignalError(
                f"source audio must be 1-D (mono samples), got shape {arr.shape}; mix down or pick one channel first"
            )
        if arr.size == 0:
            raise SignalError("source audio is empty; give at least one sample")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise SignalError(f"source audio must be real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float32)  # always a copy: later edits of the caller's array do not leak in
        if not np.all(np.isfinite(arr)):
            raise SignalError("source audio contains NaN or infinite samples")
        offset = float(start_offset_s)
        if not np.isfinite(offset):
            raise SignalError(f"start_offset_s must be finite, got {start_offset_s!r}")
        arr.flags.writeable = False
        self.audio = arr
        self.sample_rate_hz = int(sample_rate_hz)
        self.loop = bool(loop)
        self.start_offset_s = offset
        #: simulation sample at which the first audio sample plays
        self.start_offset_samples = int(round(offset * self.sample_rate_hz))

    @property
    def num_samples(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of one pass of the audio in seconds."""
        return self.num_samples / self.sample_rate_hz

    def read(self, start_sample: int, n: int) -> np.ndarray:
        """``(n,)`` float32 samples heard at simulation samples ``start_sample .. start_sample + n - 1``."""
        if isinstance(start_sample, bool) or not isinstance(start_sample, int | np.integer):
            raise SignalError(f"start_sample must be an integer sample index, got {start_sample!r}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise SignalError(f"n must be a non-negative integer, got {n!r}")
        out = np.zeros(int(n), np.float32)
        length = self.num_samples
        # local index into the audio of each requested sample
        first = int(start_sample) - self.start_offset_samples
        begin = max(0, -first)  # output samples before the source starts stay silent
        if begin >= n:
            return out
        if not self.loop:
            end = min(int(n), length - first)
            if end > begin:
                out[begin:end] = self.audio[first + begin : first + end]
            return out
        a = (first + begin) % length
        if a + (int(n) - begin) <= length:  # the common case: no wrap inside this read
            out[begin:] = self.audio[a : a + int(n) - begin]
            return out
        # looping: wrap every index into the audio (exact, and O(n) even for very short audio)
        idx = (first + begin + np.arange(int(n) - begin, dtype=np.int64)) % length
        out[begin:] = self.audio[idx]
        return out

    def __repr__(self) -> str:
        return (
            f"SourceSignal({self.num_samples} samples @ {self.sample_rate_hz} Hz, loop={self.loop}, "
            f"start_offset_s={self.start_offset_s})"
        )
