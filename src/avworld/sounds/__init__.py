"""Sound bank: built-in synthesized sounds and user audio folders, with heard/unheard splits.

* :class:`SoundBank` - built-in types, synthesized deterministically from a seed:
  static (periodic) rings, alarms, beepers, a clock, a door bell; dynamic speakers,
  music and background textures (122 dynamic types by default).
* :class:`UserSoundFolder` - wav/flac/ogg folders (flat, LibriSpeech, ESC-50, MUSIC
  layouts), resampled to the engine's rate; :class:`CombinedSource` joins several.
* :func:`split_clips` / :func:`split_types` - deterministic disjoint splits.

numpy / scipy / soundfile only (no torch); nothing here imports the simulator or tasks.
See ``docs/sounds.md``.
"""

from avworld.sounds.bank import SoundBank, SoundBankConfig
from avworld.sounds.loaders import AUDIO_EXTENSIONS, UserSoundFolder, load_audio
from avworld.sounds.registry import (
    REFERENCE_RMS_DBFS,
    AudioFileError,
    CombinedSource,
    SampleRateError,
    SoundError,
    SoundSource,
    SoundType,
    UnknownSoundError,
    active_rms,
    normalize_power,
)
from avworld.sounds.splits import PAPER_RATIOS, split_clips, split_types

__all__ = [
    "AUDIO_EXTENSIONS",
    "PAPER_RATIOS",
    "REFERENCE_RMS_DBFS",
    "AudioFileError",
    "CombinedSource",
    "SampleRateError",
    "SoundBank",
    "SoundBankConfig",
    "SoundError",
    "SoundSource",
    "SoundType",
    "UnknownSoundError",
    "UserSoundFolder",
    "active_rms",
    "load_audio",
    "normalize_power",
    "split_clips",
    "split_types",
]
