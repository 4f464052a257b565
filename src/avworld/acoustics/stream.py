"""Streaming binaural rendering: what the ears hear during each step of an episode.

The simulator advances in steps of ``chunk_s`` seconds. For every step and every
source it hands :class:`BinauralStream` the source's dry samples of that step
(``(n,)``, see :class:`~avworld.acoustics.signals.SourceSignal`) and the binaural RIR
``(2, L)`` for the step's source position and listener pose. The stream returns the
``(2, n)`` audio heard during the step.

Model (emission time): sound emitted during step ``k`` propagates with the RIR of
step ``k``. The output of step ``k`` is

* this step's dry chunk convolved with its RIR (first ``n`` samples of the linear
  convolution), plus
* the carried-over tails, i.e. the parts of the convolutions of *all* earlier steps
  that fall beyond the end of their own step (reverberation is never cut off).

With an unchanged RIR this is exactly the linear convolution of the concatenated dry
signal (overlap-add), so a static scene renders like one long offline convolution
(:func:`render_static`), and an impulse at stream sample ``t`` arrives at ``t + delay``
in whichever chunk contains that sample.

Crossfade. When a source's RIR changes between steps (the agent moved or turned),
switching abruptly would click: with a different delay, the old path stops and the
new one starts mid-waveform. The stream therefore crossfades the RIR over the
*emission* time of the changing step: the dry chunk is split into ``x * (1 - w)``
convolved with the previous RIR and ``x * w`` convolved with the new one, ``w`` rising
from 0 to 1 — linearly over the whole chunk (``crossfade_s=None``, the default) or as
a raised cosine over the first ``crossfade_s`` seconds (``crossfade_s=0`` switches
instantly). Both parts (and their tails) are smooth signals, so the output stays
continuous whatever the two RIRs' delays are; fading the *outputs* instead would
still jump where the old path's carried tail ends. The carried tails of earlier
steps keep their own RIRs.

Microphone noise (``noise_snr_db``): independent white Gaussian noise per ear with
power ``P / 10 ** (snr_db / 10)``, where ``P`` is the mean square of the chunk's clean
binaural mix over both ears and all samples, so the chunk's SNR is ``snr_db`` in
expectation. A silent chunk (``P == 0``) gets no noise: silence stays exactly silent.
Noise comes from a generator seeded by ``seed``; one ``(2, n)`` draw is made per chunk
whatever the content, so the same seed gives bit-identical noise.

Cost: one real FFT of the dry chunk (two while crossfading), one complex multiply per
ear and one inverse FFT per ear and source (FFT size ``n + L - 1`` with ``L`` rounded up
to a multiple of 1,024 samples, then up to a fast length, so that RIRs of similar length
share a size); the RIR's spectrum is computed once and reused for as long as the RIR is
unchanged (an equality check against a private copy, so callers may reuse or mutate their
arrays freely). Callers that cache RIR spectra (the simulator keeps them beside its
binaural RIRs) pass them in (``spectra``), and callers that know when a dry chunk repeats
(a looping source) name it (``dry_keys``) so its spectra are reused; neither changes a
single output sample. The reverberation carried into later chunks lives in a ring buffer.
Silent dry chunks skip the FFTs. All arithmetic is float32. An RIR may also come as a
:class:`SplitRIR` (early part + read-only tail): the tail is then convolved by uniformly
partitioned overlap-add (partitions of one chunk, FFT size ~2 chunks, products accumulated in
the frequency domain: one short inverse FFT per step; see ``stream_config``) and the early parts
at a short size, and while the same tail comes back (the head only turned) its partition spectra
are reused and it needs no crossfade (``x (1 - w) * t + x w * t = x * t``).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import scipy.fft as sfft

from avworld.acoustics.stream_config import (
    PartitionedAccumulator,
    SplitRIR,
    StreamConfig,
    StreamError,
    _fade_in,
    _ring_slices,
    checked_inputs,
    partition_spectra,
    render_static,
)

__all__ = ["BinauralStream", "SplitRIR", "StreamConfig", "StreamError", "render_static"]


class BinauralStream:
    """Renders per-step binaural audio for ``num_sources`` sources, carrying reverberation between steps.

    Call :meth:`step` (mix only) or :meth:`step_per_source` (mix and each source's clean
    contribution, ground truth for separation) once per simulation step; :meth:`reset`
    at the start of an episode. See the module docstring for the exact semantics.
    """

    def __init__(self, config: StreamConfig, num_sources: int = 1, seed: int | np.random.Generator = 0,
                 dry_caches: list | None = None):
        if not isinstance(config, StreamConfig):
            raise StreamError(f"config must be a StreamConfig, got {type(config).__name__}")
        if isinstance(num_sources, bool) or not isinstance(num_sources, int | np.integer) or num_sources < 1:
            raise StreamError(f"num_sources must be a positive integer, got {num_sources!r}")
        self.config = config
        self.num_sources = int(num_sources)
        self._fade = _fade_in(config)
        self._hard_switch = config.crossfade_s is not None and config.crossfade_samples == 0
        self._carry = np.zeros((self.num_sources, 2, config.max_rir_samples), np.float32)
        # split RIRs' tails: partitioned convolution (see stream_config), one accumulator per source
        self._acc = [PartitionedAccumulator(config.chunk_samples, config.max_rir_samples)
                     for _ in range(self.num_sources)]
        if dry_caches is not None and len(dry_caches) < self.num_sources:
            raise StreamError(f"expected {self.num_sources} dry caches (one per source), got {len(dry_caches)}")
        self._shared_dry = dry_caches
        self.reset(seed)

    @property
    def chunk_samples(self) -> int:
        return self.config.chunk_samples

    @property
    def samples_rendered(self) -> int:
        """Stream samples produced since the last reset."""
        return self._samples_rendered

    def reset(self, seed: int | np.random.Generator | None = None) -> None:
        """Forget all carried reverberation and previous RIRs.

        ``seed`` re-seeds the noise generator; None keeps its stream running (so a new
        episode gets fresh noise, while the whole run stays determined by the constructor's seed).
        """
        self._carry[:] = 0.0
        for acc in self._acc:
            acc.reset()
        self._head = [0] * self.num_sources  # ring-buffer start of each source's carry
        self._rir: list[np.ndarray | None] = [None] * self.num_sources  # private copies
        self._provider: list = [None] * self.num_sources  # spectrum providers of those RIRs
        # dry_keys -> chunk spectra; caches given to the constructor outlive resets and streams (entries
        # are checked against the chunk's samples, so they never depend on which episode made them)
        self._dry_cache = (self._shared_dry if self._shared_dry is not None
                           else [OrderedDict() for _ in range(self.num_sources)])
        self._spec: list[np.ndarray | None] = [None] * self.num_sources  # (2, nfft // 2 + 1) complex64
        self._nfft: list[int] = [0] * self.num_sources
        self._tail_specs = [{} for _ in range(self.num_sources)]  # SplitRIR tails without a provider
        self._samples_rendered = 0
        if seed is not None:
            self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def copy(self) -> BinauralStream:
        """An independent stream in the same state: stepping the copy gives exactly the samples the
        original would give, and leaves the original as it was (a simulator snapshot's audio).

        Carried reverberation, accumulators, previous RIRs and the noise generator are copied; read-only
        data (RIR arrays and tails, which the stream replaces rather than writes) and the dry-spectrum
        caches (content-checked, so never changing an output sample) are shared.
        """
        new = copy.copy(self)
        new._carry = self._carry.copy()
        new._acc = [a.copy() for a in self._acc]
        new._head = list(self._head)
        new._rir, new._provider = list(self._rir), list(self._provider)
        new._spec, new._nfft = list(self._spec), list(self._nfft)
        new._tail_specs = [dict(d) for d in self._tail_specs]
        if self._shared_dry is None:
            new._dry_cache = [OrderedDict(c) for c in self._dry_cache]
        new._rng = copy.deepcopy(self._rng)
        return new

    # ------------------------------------------------------------------ rendering

    def step(self, dry_chunks: Sequence[np.ndarray], rirs: Sequence[np.ndarray], spectra=None,
             dry_keys=None) -> np.ndarray:
        """``(2, n)`` float32 audio heard during this chunk (all sources mixed, plus noise if configured)."""
        return self.step_per_source(dry_chunks, rirs, spectra, dry_keys)[0]

    def step_per_source(
        self, dry_chunks: Sequence[np.ndarray], rirs: Sequence[np.ndarray], spectra=None, dry_keys=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Render one chunk.

        Args:
            dry_chunks: per source, ``(n,)`` dry samples of this chunk (``n = chunk_samples``).
            rirs: per source, ``(2, L)`` binaural RIR of this chunk (channel 0 = left ear), ``L <= max_rir_s``,
                or a :class:`SplitRIR` (early part + read-only tail; ``spectra`` is then ignored for it).
            spectra: optional, per source, None or a callable ``nfft -> (2, nfft // 2 + 1)`` complex64
                returning ``scipy.fft.rfft(rir, nfft)`` of that source's RIR, e.g. from a cache kept
                beside the RIRs (the stream then transforms no RIR itself). FFT sizes come from
                :meth:`fft_size`, so spectra cached per (RIR, size) are reused across steps.
            dry_keys: optional, per source, None or a hashable naming the chunk's samples (e.g. its
                position within a looping clip). The stream then keeps the chunk's spectra under
                that key (up to :attr:`DRY_CACHE_ITEMS` per source) and reuses them when the key
                returns with the same samples (checked), so a looping source costs no forward FFT
                after its first loop.

        Returns:
            ``mix`` ``(2, n)`` float32 = ``per_source.sum(0)`` (+ microphone noise), and
            ``per_source`` ``(S, 2, n)`` float32, each source's clean binaural contribution.
        """
        dry, rir_list = checked_inputs(self.config, self.num_sources, dry_chunks, rirs, self._rir)
        if spectra is not None and len(spectra) != self.num_sources:
            raise StreamError(f"expected {self.num_sources} spectra (or None), one per source, got {len(spectra)}")
        if dry_keys is not None and len(dry_keys) != self.num_sources:
            raise StreamError(f"expected {self.num_sources} dry keys (or None), one per source, got {len(dry_keys)}")
        n = self.chunk_samples
        per_source = np.empty((self.num_sources, 2, n), np.float32)
        for s in range(self.num_sources):
            per_source[s] = self._render_source(s, dry[s], rir_list[s], None if spectra is None else spectra[s],
                                                None if dry_keys is None else dry_keys[s])
        mix = per_source.sum(axis=0, dtype=np.float32)
        if self.config.noise_snr_db is not None:
            noise = self._rng.standard_normal((2, n), dtype=np.float32)  # drawn even when unused: determinism
            power = float(np.mean(np.square(mix, dtype=np.float64)))
            if power > 0.0:
                mix += noise * np.float32(np.sqrt(power / 10.0 ** (self.config.noise_snr_db / 10.0)))
        self._samples_rendered += n
        return mix, per_source

    #: RIR lengths are rounded up to a multiple of this before choosing an FFT size, so that
    #: the RIRs of nearby poses (similar lengths) share one size and its cached spectra
    LENGTH_QUANTUM = 1024

    def fft_size(self, rir_length: int) -> int:
        """FFT size used to convolve a chunk with an RIR of ``rir_length`` samples."""
        q = self.LENGTH_QUANTUM
        return sfft.next_fast_len(self.chunk_samples + -(-int(rir_length) // q) * q - 1, real=True)

    #: chunk spectra kept per source for ``dry_keys`` (a 6 s looping ring is 24 chunks of 0.25 s, each
    #: kept at the full FFT size and at the short sizes of split RIRs' early parts)
    DRY_CACHE_ITEMS = 128

    def _rir_spectrum(self, h: np.ndarray, provider, nfft: int) -> np.ndarray:
        if provider is not None:
            return provider(nfft)
        return sfft.rfft(h, nfft, axis=-1)

    def _dry_spectrum(self, s: int, x: np.ndarray, key, nfft: int, faded: bool) -> np.ndarray:
        """``rfft(x, nfft)`` (``faded``: of ``x * fade``), cached under ``(key, nfft)`` when ``key`` is given."""
        if key is None:
            return sfft.rfft(x * self._fade if faded else x, nfft)
        cache = self._dry_cache[s]
        entry = cache.get((key, nfft))
        if entry is None or not np.array_equal(entry[0], x):
            entry = cache[(key, nfft)] = [x.copy(), None, None]
            if len(cache) > self.DRY_CACHE_ITEMS:
                cache.popitem(last=False)
        else:
            cache.move_to_end((key, nfft))
        i = 2 if faded else 1
        if entry[i] is None:
            entry[i] = sfft.rfft(x * self._fade if faded else x, nfft)
            entry[i].flags.writeable = False
        return entry[i]

    def _convolve(self, s: int, x: np.ndarray, h: np.ndarray, provider, key):
        """(y, tail): this chunk's linear convolution (2, >= n + tail) with a whole-array RIR (or None)."""
        n = self.chunk_samples
        prev = self._rir[s]
        prev_provider = self._provider[s]
        changed = prev is not None and not (prev.shape == h.shape and np.array_equal(prev, h))
        if prev is None or changed:
            self._rir[s] = h.copy()
            self._provider[s] = provider

        y = None  # (2, >= n + tail) linear convolution of this chunk
        tail = 0
        if x.any():
            if changed and not self._hard_switch:
                tail = max(prev.shape[1], h.shape[1]) - 1
                nfft = max(self.fft_size(prev.shape[1]), self.fft_size(h.shape[1]))
                old_spec = (self._spec[s] if self._spec[s] is not None and self._nfft[s] == nfft
                            else self._rir_spectrum(prev, prev_provider, nfft))
                new_spec = self._rir_spectrum(self._rir[s], provider, nfft)
                x_new = self._dry_spectrum(s, x, key, nfft, faded=True)  # x * w
                spec = (self._dry_spectrum(s, x, key, nfft, faded=False) - x_new) * old_spec  # x * (1 - w)
                spec += x_new * new_spec
                self._spec[s], self._nfft[s] = new_spec, nfft
            else:
                tail = h.shape[1] - 1
                if changed or self._spec[s] is None or self._nfft[s] < n + tail:
                    nfft = self.fft_size(h.shape[1])
                    self._spec[s], self._nfft[s] = self._rir_spectrum(self._rir[s], self._provider[s], nfft), nfft
                spec = self._dry_spectrum(s, x, key, self._nfft[s], faded=False) * self._spec[s]
            y = sfft.irfft(spec, self._nfft[s], axis=-1)
        elif changed:
            self._spec[s], self._nfft[s] = None, 0  # computed lazily when the source sounds again
        return y, tail

    def _tail_parts(self, s: int, h: SplitRIR) -> np.ndarray:
        """(P, 2, F) partition spectra of ``h``'s tail for this stream's accumulator (cached per tail)."""
        acc = self._acc[s]
        if h.tail_spectrum is not None:
            return h.tail_spectrum(acc.block, acc.nfft)
        cache = self._tail_specs[s]
        hit = cache.get(acc.nfft)
        if hit is None or hit[0] is not h.tail:
            hit = cache[acc.nfft] = (h.tail, partition_spectra(h.tail, acc.block, acc.nfft))
        return hit[1]

    def _convolve_split(self, s: int, x: np.ndarray, h: SplitRIR, key):
        """(y, lo) for a :class:`SplitRIR`: the tail goes into the source's partitioned accumulator
        (crossfaded only when the tail itself changed, else ``x (1 - w) * t + x w * t = x * t``
        with the tail's reused partition spectra); ``y`` (2, m) is the early parts' convolution, at a
        short FFT size, starting at sample ``lo`` of this chunk (None when there is none)."""
        n = self.chunk_samples
        prev = self._rir[s]
        # identity first (cheap), then content: whether a cache handed back the same array or an equal
        # one never changes an output sample
        tail_changed = prev is not None and prev.tail is not h.tail and not (
            prev.tail.shape == h.tail.shape and np.array_equal(prev.tail, h.tail))
        changed = tail_changed or (prev is not None and not (
            prev.start == h.start and prev.early.shape == h.early.shape and np.array_equal(prev.early, h.early)))
        if prev is None or changed:
            self._rir[s] = cur = SplitRIR(h.early.copy(), h.start, h.tail, h.tail_spectrum)
        else:
            cur = prev
        if not x.any():
            return None, 0
        fade = changed and not self._hard_switch
        acc = self._acc[s]
        if fade and tail_changed:
            x_new = self._dry_spectrum(s, x, key, acc.nfft, faded=True)
            acc.add(self._dry_spectrum(s, x, key, acc.nfft, faded=False) - x_new, self._tail_parts(s, prev))
            acc.add(x_new, self._tail_parts(s, cur))
        else:
            acc.add(self._dry_spectrum(s, x, key, acc.nfft, faded=False), self._tail_parts(s, cur))
        parts = [(prev, True), (cur, False)] if fade else [(cur, None)]
        lo = min(p.start for p, _ in parts)
        hi = max(p.start + p.early.shape[1] for p, _ in parts)
        if hi <= lo:
            return None, 0
        ne = self.fft_size(hi - lo)
        x_new = self._dry_spectrum(s, x, key, ne, faded=True) if fade else None
        x_all = self._dry_spectrum(s, x, key, ne, faded=False)
        if fade:  # both parts placed at their starts within the window [lo, hi), one transform
            both = np.zeros((2, 2, hi - lo), np.float32)
            for i, p in enumerate((prev, cur)):
                both[i, :, p.start - lo : p.start - lo + p.early.shape[1]] = p.early
            e = sfft.rfft(both, ne, axis=-1)
            spec = e[0] * (x_all - x_new)
            spec += e[1] * x_new
        else:
            spec = sfft.rfft(cur.early, ne, axis=-1) * x_all
        return sfft.irfft(spec, ne, axis=-1)[:, : hi - lo + n - 1], lo

    def _render_source(self, s: int, x: np.ndarray, h, provider=None, key=None) -> np.ndarray:
        n = self.chunk_samples
        prev = self._rir[s]
        if isinstance(h, SplitRIR) != isinstance(prev, SplitRIR) and prev is not None:
            # switching representation: continue with whole arrays (same result, no reuse)
            if isinstance(prev, SplitRIR):
                self._rir[s], self._provider[s], self._spec[s], self._nfft[s] = prev.full(), None, None, 0
            h, provider = h.full(), None
        if isinstance(h, SplitRIR):
            y, start = self._convolve_split(s, x, h, key)
        else:
            y, tail = self._convolve(s, x, h, provider, key)
            y, start = (None, 0) if y is None else (y[:, : n + tail], 0)
        # this chunk's part of the convolution (y from sample `start` on) plus the partitioned tails
        out = self._acc[s].pop()
        if out is None:
            out = np.zeros((2, n), np.float32)
        if y is not None and start < n:
            out[:, start : min(n, start + y.shape[1])] += y[:, : n - start]
        # the carry is a ring buffer: logical sample j of the pending reverberation sits at
        # physical index (head + j) % C (no memmove of the whole buffer every chunk)
        carry = self._carry[s]  # (2, C) view
        c = carry.shape[1]
        head = self._head[s]
        m = min(n, c)
        for lo, hi, off in _ring_slices(head, m, c):
            out[:, off : off + hi - lo] += carry[:, lo:hi]
            carry[:, lo:hi] = 0.0  # consumed
        head = (head + n) % c
        self._head[s] = head
        if y is not None and start + y.shape[1] > n:
            skip = max(0, n - start)  # samples of y already in this chunk
            for lo, hi, off in _ring_slices((head + start + skip - n) % c, y.shape[1] - skip, c):
                carry[:, lo:hi] += y[:, skip + off : skip + off + hi - lo]
        return out
