"""The built-in sound bank: every sound synthesized deterministically from a seed.

>>> bank = SoundBank(sample_rate_hz=16000, seed=0)
>>> len(bank.names("dynamic"))          # 100 speakers + 12 music + 10 backgrounds
122
>>> x = bank.clip("speaker_017", index=3)  # 20 s of float32 at 16 kHz, active RMS -23 dBFS

Clip ``index`` of a type is synthesized from ``(seed, type name, index)`` alone, so it is
bit-identical in every process and independent of which other types the bank has; the
type's voice / style comes from ``(seed, type name)`` (speakers also from their position
in a Halton sequence over the voice space, which keeps any number of them well apart).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from avworld.sounds import synth_espeak
from avworld.sounds._dsp import limit_crest
from avworld.sounds.registry import (
    SoundError,
    SoundSource,
    SoundType,
    active_rms,
    check_sample_rate,
    freeze_params,
    normalize_power,
    seeded_rng,
)
from avworld.sounds.synth_background import BACKGROUNDS, background_params, render_background
from avworld.sounds.synth_music import INSTRUMENTS, music_params, render_music
from avworld.sounds.synth_speech import render_speech, speaker_params, speaker_points
from avworld.sounds.synth_static import STATIC_TYPES, render_static

MIN_SAMPLE_RATE_HZ = 8000
#: peak / active RMS of built-in clips is kept below this (so -23 dBFS fits under a 0.99 peak)
MAX_CREST = 12.0


@dataclass(frozen=True)
class SoundBankConfig:
    """What the built-in bank contains.

    Attributes:
        sample_rate_hz: rate of every clip (>= 8000).
        seed: the bank's seed; another seed gives other voices, styles and clips.
        num_speakers: synthetic speakers ``speaker_000`` ... (dynamic, kind ``speech``).
        num_music: music types ``music_<instrument>_<variant>``; instruments cycle through
            the 12 timbres, so the default 12 is one type per instrument.
        num_background: background textures ``bg_*`` (at most 10).
        include_static: add the 11 static types (telephone, alarm, ...).
        espeak_voices: extra ``espeak_000`` ... speakers voiced by espeak-ng (needs the
            ``espeak-ng`` program; 0 = none, so the bank never depends on it by default).
        clips_per_type: clips per type (25 makes the 18:3:4 split exact per type).
        clip_duration_s: natural length of dynamic clips (static clips are one cycle).
        cache_size: finished clips kept in memory (LRU).
    """

    sample_rate_hz: int = 16000
    seed: int = 0
    num_speakers: int = 100
    num_music: int = 12
    num_background: int = len(BACKGROUNDS)
    include_static: bool = True
    espeak_voices: int = 0
    clips_per_type: int = 25
    clip_duration_s: float = 20.0
    cache_size: int = 32

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate_hz, MIN_SAMPLE_RATE_HZ)
        for field in ("seed", "num_speakers", "num_music", "num_background", "espeak_voices", "cache_size"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise SoundError(f"SoundBankConfig.{field} must be a non-negative integer, got {v!r}")
        if self.num_background > len(BACKGROUNDS):
            raise SoundError(f"num_background must be at most {len(BACKGROUNDS)} ({', '.join(BACKGROUNDS)})")
        if isinstance(self.clips_per_type, bool) or not isinstance(self.clips_per_type, int) or self.clips_per_type < 1:
            raise SoundError(f"clips_per_type must be a positive integer, got {self.clips_per_type!r}")
        if not (isinstance(self.clip_duration_s, int | float) and 0 < self.clip_duration_s < 3600):
            raise SoundError(f"clip_duration_s must be a positive number of seconds, got {self.clip_duration_s!r}")
        if self.espeak_voices and synth_espeak.espeak_executable() is None:
            raise SoundError(
                "espeak_voices > 0 needs the espeak-ng program (e.g. `apt install espeak-ng`); "
                "set espeak_voices=0 to use only the built-in synthetic speakers"
            )


class SoundBank(SoundSource):
    """Built-in synthesized sounds (see module docstring); ``SoundBank(config)`` or ``SoundBank(**fields)``."""

    def __init__(self, config: SoundBankConfig | None = None, **overrides) -> None:
        config = SoundBankConfig() if config is None else config
        if overrides:
            unknown = set(overrides) - set(asdict(config))
            if unknown:
                raise SoundError(f"unknown SoundBank option(s) {sorted(unknown)}; options: {sorted(asdict(config))}")
            config = replace(config, **overrides)
        super().__init__(cache_size=config.cache_size)
        self.config = config
        self.sample_rate_hz = int(config.sample_rate_hz)
        self.types = tuple(self._build_types())
        self._index_types()

    def _build_types(self):
        cfg = self.config

        def type_rng(name: str) -> np.random.Generator:
            return seeded_rng(cfg.seed, name, "type")

        if cfg.include_static:
            for name, (kind, cycle_s, description) in STATIC_TYPES.items():
                params = {"cycle_s": cycle_s, "description": description}
                yield SoundType(name, "static", kind, freeze_params(params))
        points = speaker_points(cfg.seed, cfg.num_speakers) if cfg.num_speakers else []
        for k, u in enumerate(points):
            name = f"speaker_{k:03d}"
            yield SoundType(name, "dynamic", "speech", freeze_params(speaker_params(u, type_rng(name))))
        for k in range(cfg.num_music):
            inst = INSTRUMENTS[k % len(INSTRUMENTS)]
            name = f"music_{inst}_{k // len(INSTRUMENTS):02d}"
            yield SoundType(name, "dynamic", "music", freeze_params(music_params(inst, type_rng(name))))
        for name in BACKGROUNDS[: cfg.num_background]:
            yield SoundType(name, "dynamic", "background", freeze_params(background_params(name, type_rng(name))))
        for k in range(cfg.espeak_voices):
            name = f"espeak_{k:03d}"
            yield SoundType(name, "dynamic", "speech", freeze_params(synth_espeak.espeak_params(k, type_rng(name))))

    def num_clips(self, name: str) -> int:
        self.get(name)
        return self.config.clips_per_type

    def natural_duration_s(self, name: str) -> float:
        """Length of ``clip(name)`` with no ``duration_s``: one cycle (static) or ``clip_duration_s``."""
        t = self.get(name)
        return float(t.param_dict["cycle_s"]) if t.category == "static" else float(self.config.clip_duration_s)

    def _make_clip(self, sound_type: SoundType, index: int, duration_s: float | None) -> np.ndarray:
        fs = self.sample_rate_hz
        rng = seeded_rng(self.config.seed, sound_type.name, "clip", index)
        p = sound_type.param_dict
        if sound_type.category == "static":
            cycle = render_static(sound_type.name, rng, fs, variation=index > 0)
            reps = 1 if duration_s is None else max(1, int(np.ceil(duration_s / p["cycle_s"] - 1e-9)))
            return np.tile(normalize_power(cycle, fs), reps)
        duration = self.config.clip_duration_s if duration_s is None else float(duration_s)
        render = {
            "speech": render_speech,
            "music": render_music,
            "background": render_background,
        }[sound_type.kind]
        if sound_type.name.startswith("espeak_"):
            render = synth_espeak.render_espeak
        x = render(p, rng, duration, fs)
        # rare peaks (a harmonic on a formant peak, a loud crackle) must not force the gain down
        return normalize_power(limit_crest(x, fs, MAX_CREST * active_rms(x, fs)), fs)

    def __repr__(self) -> str:
        counts = {c: len(self.names(c)) for c in ("static", "dynamic")}
        return f"SoundBank({self.sample_rate_hz} Hz, seed={self.config.seed}, {counts['static']} static + " \
               f"{counts['dynamic']} dynamic types, {self.config.clips_per_type} clips each)"
