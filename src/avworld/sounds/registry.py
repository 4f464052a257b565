"""Sound types, the common interface of every sound source, errors, seeding and power normalization.

A *sound type* is what a source in the world plays: one telephone ring, one speaker, one
piece of music, one background texture. Each type has several *clips* (index 0, 1, ...):
different utterances of the same speaker, different melodies of the same instrument and
style. Both the built-in synthesized :class:`~avworld.sounds.bank.SoundBank` and
:class:`~avworld.sounds.loaders.UserSoundFolder` implement :class:`SoundSource`, so the
simulator and the tasks take either.
"""

from __future__ import annotations

import difflib
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: every clip's RMS over its active (non-silent) part, in dB relative to full scale (1.0)
REFERENCE_RMS_DBFS = -23.0
#: frames quieter than the loudest frame by more than this are "silent" for normalization
ACTIVE_THRESHOLD_DB = -40.0
#: frame length (s) used to find the active part
ACTIVE_FRAME_S = 0.02
#: peaks are kept below this after normalization (the gain is reduced if needed)
MAX_PEAK = 0.99

CATEGORIES = ("static", "dynamic")


class SoundError(ValueError):
    """Bad input to the sound bank or a user sound folder."""


class UnknownSoundError(SoundError, KeyError):
    """A sound type name that the source does not have (lists close matches)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class SampleRateError(SoundError):
    """A sample rate that is not a positive integer, too low, or not the one required."""


class AudioFileError(SoundError):
    """An audio file that is missing, unreadable, empty or broken."""


@dataclass(frozen=True)
class SoundType:
    """One kind of sound a source can play.

    Attributes:
        name: unique name, e.g. ``"telephone"``, ``"speaker_017"``, ``"music_piano_00"``, ``"bg_rain"``.
        category: ``"static"`` (periodic: a ring, an alarm; any one period is enough to know
            it) or ``"dynamic"`` (time-varying: speech, music, background textures).
        kind: what family it belongs to: ``"ring"``, ``"alarm"``, ``"speech"``, ``"music"``,
            ``"background"``, ...
        params: the synthesis parameters as ``(key, value)`` pairs (values are numbers,
            strings or tuples); empty for user audio. :attr:`param_dict` gives a dict.
    """

    name: str
    category: str
    kind: str
    params: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SoundError(f"sound type name must be a non-empty string, got {self.name!r}")
        if self.category not in CATEGORIES:
            raise SoundError(f"sound type {self.name!r}: category must be one of {CATEGORIES}, got {self.category!r}")

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def is_dynamic(self) -> bool:
        return self.category == "dynamic"


def freeze_params(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A dict of parameters as sorted, hashable ``(key, value)`` pairs (arrays become tuples)."""

    def freeze(v):
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, list | tuple):
            return tuple(freeze(u) for u in v)
        if isinstance(v, np.generic):
            return v.item()
        return v

    return tuple((k, freeze(params[k])) for k in sorted(params))


def name_key(name: str) -> int:
    """A stable 32-bit integer for a name (unlike ``hash``, the same in every process)."""
    return zlib.crc32(name.encode("utf-8"))


def seeded_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator determined by ``seed`` and any mix of integer / string keys."""
    entropy = [int(seed) % 2**63] + [name_key(k) if isinstance(k, str) else int(k) % 2**63 for k in keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def check_sample_rate(sample_rate_hz, minimum_hz: int = 1) -> int:
    """``sample_rate_hz`` as an int, or :class:`SampleRateError` if it is not an integer >= ``minimum_hz``."""
    if isinstance(sample_rate_hz, bool) or not isinstance(sample_rate_hz, int | np.integer):
        raise SampleRateError(f"sample_rate_hz must be a positive integer (e.g. 16000), got {sample_rate_hz!r}")
    if sample_rate_hz < max(1, minimum_hz):
        raise SampleRateError(f"sample_rate_hz must be at least {max(1, minimum_hz)} Hz, got {sample_rate_hz}")
    return int(sample_rate_hz)


def active_rms(x: np.ndarray, sample_rate_hz: int) -> float:
    """RMS over the active frames of ``x`` (frames within :data:`ACTIVE_THRESHOLD_DB` of the loudest)."""
    x = np.asarray(x, dtype=np.float64)
    n = max(1, int(round(ACTIVE_FRAME_S * sample_rate_hz)))
    m = -(-x.size // n)
    frames = np.zeros(m * n)
    frames[: x.size] = x
    power = np.mean(frames.reshape(m, n) ** 2, axis=1)
    if power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10.0 ** (ACTIVE_THRESHOLD_DB / 10.0)
    return float(np.sqrt(np.mean(power[active])))


def normalize_power(x: np.ndarray, sample_rate_hz: int, rms_dbfs: float = REFERENCE_RMS_DBFS) -> np.ndarray:
    """``x`` scaled so its active-part RMS is ``rms_dbfs`` (float32), peak kept below :data:`MAX_PEAK`.

    A signal that is all zeros (or not finite) raises :class:`SoundError`.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise SoundError("cannot normalize audio with NaN or infinite samples")
    rms = active_rms(x, sample_rate_hz)
    if rms <= 0:
        raise SoundError("cannot normalize silent audio (all samples are zero)")
    gain = 10.0 ** (rms_dbfs / 20.0) / rms
    peak = float(np.max(np.abs(x))) * gain
    if peak > MAX_PEAK:
        gain *= MAX_PEAK / peak
    return (x * gain).astype(np.float32)


def close_matches(name: str, names: Iterable[str], n: int = 5) -> list[str]:
    names = list(names)
    return difflib.get_close_matches(name, names, n=n, cutoff=0.5)


class SoundSource(ABC):
    """What the simulator needs from a bank of sounds: named types, each with indexed clips.

    Subclasses set ``sample_rate_hz`` and ``types`` (a tuple of :class:`SoundType`) and
    implement :meth:`num_clips` and :meth:`_make_clip`; this base class adds name lookup
    with helpful errors, index checking and a small LRU cache of finished clips. Clips are
    float32, mono, read-only arrays at ``sample_rate_hz``.
    """

    sample_rate_hz: int
    types: tuple[SoundType, ...]

    def __init__(self, cache_size: int = 32) -> None:
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_size = int(cache_size)
        self._by_name: dict[str, SoundType] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()  # pickles (e.g. to worker processes) stay small
        return state

    def _index_types(self) -> None:
        by_name: dict[str, SoundType] = {}
        for t in self.types:
            if t.name in by_name:
                raise SoundError(f"duplicate sound type name {t.name!r}")
            by_name[t.name] = t
        self._by_name = by_name

    # ------------------------------------------------------------------ lookup
    def names(self, category: str | None = None, kind: str | None = None) -> list[str]:
        """Type names in order, optionally only one category (``"static"``/``"dynamic"``) or kind."""
        if category is not None and category not in CATEGORIES:
            raise SoundError(f"category must be one of {CATEGORIES}, got {category!r}")
        return [
            t.name
            for t in self.types
            if (category is None or t.category == category) and (kind is None or t.kind == kind)
        ]

    def get(self, name: str) -> SoundType:
        """The type called ``name``; :class:`UnknownSoundError` (with close matches) if there is none."""
        t = self._by_name.get(name) if isinstance(name, str) else None
        if t is None:
            hint = close_matches(str(name), self._by_name)
            msg = f"unknown sound type {name!r}"
            msg += f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""
            kinds = sorted({t.kind for t in self.types})
            msg += f" ({len(self.types)} types of kinds {kinds}; see .names())"
            raise UnknownSoundError(msg)
        return t

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def __len__(self) -> int:
        return len(self.types)

    def clip_ids(self, names: Sequence[str] | None = None) -> list[tuple[str, int]]:
        """Every ``(type name, clip index)`` of the given types (default: all types)."""
        names = self.names() if names is None else list(names)
        return [(n, i) for n in names for i in range(self.num_clips(n))]

    # ------------------------------------------------------------------ clips
    @abstractmethod
    def num_clips(self, name: str) -> int:
        """How many distinct clips type ``name`` has (indices ``0 .. num_clips - 1``)."""

    @abstractmethod
    def _make_clip(self, sound_type: SoundType, index: int, duration_s: float | None) -> np.ndarray:
        """The finished (normalized) clip; called on a cache miss."""

    def clip(self, name: str, index: int = 0, duration_s: float | None = None) -> np.ndarray:
        """Clip ``index`` of type ``name`` (float32 mono at ``sample_rate_hz``, read-only).

        ``duration_s`` (if the source supports it) asks for another length; None gives the
        type's natural length.
        """
        t = self.get(name)
        n = self.num_clips(name)
        if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n:
            raise SoundError(f"clip index for {name!r} must be an integer in [0, {n - 1}], got {index!r}")
        if duration_s is not None and not (np.isfinite(duration_s) and duration_s > 0):
            raise SoundError(f"duration_s must be a positive number of seconds or None, got {duration_s!r}")
        key = (name, int(index), None if duration_s is None else float(duration_s))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        x = np.ascontiguousarray(self._make_clip(t, int(index), duration_s), dtype=np.float32)
        x.flags.writeable = False
        if self._cache_size > 0:
            self._cache[key] = x
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return x


class CombinedSource(SoundSource):
    """Several sources as one (e.g. LibriSpeech speakers + MUSIC instruments + ESC-50 classes).

    Type names must not collide; give the folders different ``prefix`` values if they do.
    All sources must share one sample rate.
    """

    def __init__(self, sources: Sequence[SoundSource]) -> None:
        super().__init__(cache_size=0)  # each part caches its own clips
        sources = list(sources)
        if not sources:
            raise SoundError("CombinedSource needs at least one source")
        rates = {s.sample_rate_hz for s in sources}
        if len(rates) != 1:
            raise SampleRateError(f"combined sources must share one sample rate, got {sorted(rates)}")
        self.sample_rate_hz = rates.pop()
        self.sources = tuple(sources)
        self._owner: dict[str, SoundSource] = {}
        for s in sources:
            for n in s.names():
                if n in self._owner:
                    raise SoundError(f"sound type {n!r} appears in two sources; give them different prefixes")
                self._owner[n] = s
        self.types = tuple(t for s in sources for t in s.types)
        self._index_types()

    def num_clips(self, name: str) -> int:
        self.get(name)
        return self._owner[name].num_clips(name)

    def _make_clip(self, sound_type: SoundType, index: int, duration_s: float | None) -> np.ndarray:
        return self._owner[sound_type.name].clip(sound_type.name, index, duration_s)
