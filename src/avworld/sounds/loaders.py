"""User audio: single files and folders (flat, LibriSpeech, ESC-50, MUSIC layouts).

:func:`load_audio` reads wav / flac / ogg (anything libsndfile reads) through
``soundfile``, mixes down to mono and resamples with a polyphase filter.
:class:`UserSoundFolder` discovers the clips and their sound types under a folder and
serves them through the same interface as the built-in bank (``types``, ``names()``,
``clip(name, index)``), so the simulator takes either.

Layouts (``layout="auto"`` picks one from what it finds):

* ``librispeech``: ``root/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` (root may
  also be the folder holding ``train-clean-100`` etc.); one type per speaker,
  ``libri_<speaker>``, kind ``speech``.
* ``esc50``: ``root/audio/<fold>-<source>-<take>-<target>.wav`` with optional
  ``root/meta/esc50.csv``; one type per class, ``esc50_<category>`` (or
  ``esc50_class_<target>`` without the csv), kind ``background``.
* ``music``: ``root/<instrument>/*`` or ``root/solo/<instrument>/*`` (audio extracted
  from the MUSIC dataset's videos); one type per instrument, ``music_<instrument>``.
* ``flat``: files in sub-folders get the first sub-folder's name as type; files directly
  in ``root`` get their stem with a trailing ``_<n>`` / ``-<n>`` removed
  (``rain_01.wav``, ``rain_02.wav`` -> type ``rain`` with two clips); kind ``user``.

With ``min_clip_s`` (the paper used 20 s) short files are made into long clips: the
files of a type are concatenated in order until a clip is long enough (``join="concat"``,
default except ESC-50), or each file is repeated end to end (``join="loop"``, default
for ESC-50, as the paper did with its 5 s clips).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

from avworld.sounds._dsp import resample
from avworld.sounds.registry import (
    AudioFileError,
    SampleRateError,
    SoundError,
    SoundSource,
    SoundType,
    check_sample_rate,
    freeze_params,
    normalize_power,
)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
LAYOUTS = ("auto", "flat", "librispeech", "esc50", "music")
_ESC_NAME = re.compile(r"^(\d+)-([^-]+)-([A-Za-z]+)-(\d+)$")
_LIBRI_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_LIBRI_SUBSET = re.compile(r"^(train|dev|test)-(clean|other)(-\d+)?$")
_CONVERT_HINT = "convert it to wav/flac/ogg, e.g. `ffmpeg -i input.mp4 -vn -ac 1 -ar 16000 output.wav`"


def load_audio(path, sample_rate_hz: int, resample_to_rate: bool = True) -> np.ndarray:
    """Audio file ``path`` as float32 mono at ``sample_rate_hz``.

    Channels are averaged. A file at another rate is resampled (``resample_to_rate=True``)
    or rejected with :class:`SampleRateError`. Missing, unreadable, empty or non-finite
    files raise :class:`AudioFileError` naming the file.
    """
    fs = check_sample_rate(sample_rate_hz)
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"audio file {str(p)!r} does not exist")
    if not p.is_file():
        raise AudioFileError(f"{str(p)!r} is not a file")
    try:
        data, fs_in = sf.read(str(p), dtype="float64", always_2d=True)
    except (RuntimeError, TypeError, ValueError, OSError) as e:  # sf.LibsndfileError is a RuntimeError
        raise AudioFileError(f"cannot read audio file {str(p)!r} ({e}); {_CONVERT_HINT}") from None
    if data.size == 0:
        raise AudioFileError(f"audio file {str(p)!r} has no samples")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(f"audio file {str(p)!r} contains NaN or infinite samples")
    x = data.mean(axis=1)
    if fs_in != fs:
        if not resample_to_rate:
            raise SampleRateError(
                f"audio file {str(p)!r} is at {fs_in} Hz but {fs} Hz is required; "
                f"resample it (load_audio(..., resample_to_rate=True)) or convert the file"
            )
        x = resample(x, fs_in, fs)
    return x.astype(np.float32)


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


def _is_esc50(root: Path) -> bool:
    audio = root / "audio"
    return audio.is_dir() and any(_ESC_NAME.match(p.stem) for p in _audio_files(audio)[:50])


def _libri_roots(root: Path) -> list[Path]:
    subsets = sorted(d for d in root.iterdir() if d.is_dir() and _LIBRI_SUBSET.match(d.name))
    return subsets or [root]


def _is_librispeech(root: Path) -> bool:
    for r in _libri_roots(root):
        for spk in (d for d in r.iterdir() if d.is_dir() and d.name.isdigit()):
            for chap in (d for d in spk.iterdir() if d.is_dir() and d.name.isdigit()):
                if any(_LIBRI_NAME.match(p.stem) for p in _audio_files(chap)):
                    return True
    return False


class UserSoundFolder(SoundSource):
    """Sound types and clips found under ``root`` (see module docstring for layouts).

    Args:
        root: the folder.
        sample_rate_hz: rate clips are resampled to (the engine's rate).
        layout: ``"auto"``, ``"flat"``, ``"librispeech"``, ``"esc50"`` or ``"music"``.
        prefix: prepended to type names (default per layout: ``libri_``, ``esc50_``, ``music_``, none).
        min_clip_s: make clips at least this long by joining files (None: one file per clip).
        join: ``"concat"`` or ``"loop"`` (default: loop for ESC-50, concat otherwise).
        normalize: scale each clip to the reference active RMS, like the built-in bank.
        static_types: type names (without prefix) to mark ``static`` (periodic) instead of ``dynamic``.
    """

    def __init__(self, root, sample_rate_hz: int = 16000, layout: str = "auto", prefix: str | None = None,
                 min_clip_s: float | None = None, join: str | None = None, normalize: bool = True,
                 static_types=(), cache_size: int = 32) -> None:
        super().__init__(cache_size=cache_size)
        self.sample_rate_hz = check_sample_rate(sample_rate_hz)
        self.root = Path(root)
        if not self.root.is_dir():
            raise SoundError(f"sound folder {str(self.root)!r} does not exist or is not a folder")
        if layout not in LAYOUTS:
            raise SoundError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if layout == "auto":
            layout = "esc50" if _is_esc50(self.root) else "librispeech" if _is_librispeech(self.root) else "flat"
        self.layout = layout
        if min_clip_s is not None and not (np.isfinite(min_clip_s) and min_clip_s > 0):
            raise SoundError(f"min_clip_s must be a positive number of seconds or None, got {min_clip_s!r}")
        join = join or ("loop" if layout == "esc50" else "concat")
        if join not in ("concat", "loop"):
            raise SoundError(f"join must be 'concat' or 'loop', got {join!r}")
        self.min_clip_s, self.join, self.normalize = min_clip_s, join, bool(normalize)
        prefix = {"librispeech": "libri_", "esc50": "esc50_", "music": "music_"}.get(layout, "") if prefix is None \
            else prefix
        kind = {"librispeech": "speech", "esc50": "background", "music": "music"}.get(layout, "user")
        groups = getattr(self, f"_discover_{layout}")()
        if not groups:
            raise SoundError(
                f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found under {str(self.root)!r} for layout "
                f"{layout!r}; {self._layout_hint()}"
            )
        static = set(static_types)
        self._clips: dict[str, list[list[Path]]] = {}
        types = []
        for label in sorted(groups):
            name = f"{prefix}{label}"
            self._clips[name] = self._make_clips(groups[label])
            params = freeze_params({"layout": layout, "num_files": len(groups[label]), "label": label})
            types.append(SoundType(name, "static" if label in static else "dynamic", kind, params))
        self.types = tuple(types)
        self._index_types()

    # ------------------------------------------------------------------ discovery: label -> files
    def _layout_hint(self) -> str:
        mp4 = next(iter(self.root.rglob("*.mp4")), None)
        if mp4 is not None:
            return f"found videos such as {str(mp4)!r}: extract their audio first; {_CONVERT_HINT}"
        return "see the expected folder layouts in docs/sounds.md"

    def _discover_flat(self) -> dict[str, list[Path]]:
        groups: dict[str, list[Path]] = defaultdict(list)
        for p in _audio_files(self.root):
            rel = p.relative_to(self.root)
            label = rel.parts[0] if len(rel.parts) > 1 else re.sub(r"[_-]\d+$", "", p.stem) or p.stem
            groups[label].append(p)
        return dict(groups)

    def _discover_librispeech(self) -> dict[str, list[Path]]:
        groups: dict[str, list[Path]] = defaultdict(list)
        for r in _libri_roots(self.root):
            for p in _audio_files(r):
                m = _LIBRI_NAME.match(p.stem)
                if m and p.parent.name == m.group(2) and p.parent.parent.name == m.group(1):
                    groups[m.group(1)].append(p)
        return {k: sorted(v, key=lambda q: tuple(int(g) for g in _LIBRI_NAME.match(q.stem).groups()))
                for k, v in groups.items()}

    def _discover_esc50(self) -> dict[str, list[Path]]:
        names: dict[str, str] = {}
        meta = self.root / "meta" / "esc50.csv"
        if meta.is_file():
            with open(meta, newline="") as f:
                for row in csv.DictReader(f):
                    if "target" in row and "category" in row:
                        names[str(int(row["target"]))] = row["category"]
        groups: dict[str, list[Path]] = defaultdict(list)
        audio = self.root / "audio"
        for p in _audio_files(audio) if audio.is_dir() else []:
            m = _ESC_NAME.match(p.stem)
            if m:
                target = str(int(m.group(4)))
                groups[names.get(target, f"class_{int(target):02d}")].append(p)
        return dict(groups)

    def _discover_music(self) -> dict[str, list[Path]]:
        base = self.root / "solo" if (self.root / "solo").is_dir() else self.root
        groups = {d.name: _audio_files(d) for d in sorted(base.iterdir()) if d.is_dir() and d.name != "duet"}
        return {k: v for k, v in groups.items() if v}

    # ------------------------------------------------------------------ clips
    def _make_clips(self, files: list[Path]) -> list[list[Path]]:
        """Each clip as the list of files it is made of (repeated for ``join="loop"``)."""
        if self.min_clip_s is None:
            return [[f] for f in files]
        dur = [self._duration_s(f) for f in files]
        if self.join == "loop":
            return [[f] * max(1, int(np.ceil(self.min_clip_s / d - 1e-9))) for f, d in zip(files, dur)]
        clips, cur, acc = [], [], 0.0
        for f, d in zip(files, dur):
            cur.append(f)
            acc += d
            if acc >= self.min_clip_s:
                clips.append(cur)
                cur, acc = [], 0.0
        if cur and clips:
            clips[-1] += cur  # a short remainder joins the last clip
        elif cur:  # the whole type is shorter than min_clip_s: loop it
            clips.append(cur * int(np.ceil(self.min_clip_s / acc - 1e-9)))
        return clips

    @staticmethod
    def _duration_s(path: Path) -> float:
        try:
            info = sf.info(str(path))
        except (RuntimeError, TypeError, ValueError, OSError) as e:
            raise AudioFileError(f"cannot read audio file {str(path)!r} ({e}); {_CONVERT_HINT}") from None
        if info.frames <= 0:
            raise AudioFileError(f"audio file {str(path)!r} has no samples")
        return info.frames / info.samplerate

    def num_clips(self, name: str) -> int:
        self.get(name)
        return len(self._clips[name])

    def files(self, name: str, index: int = 0) -> list[Path]:
        """The files clip ``index`` of ``name`` is made of, in playing order."""
        self.get(name)
        return list(self._clips[name][index])

    def _make_clip(self, sound_type: SoundType, index: int, duration_s: float | None) -> np.ndarray:
        fs = self.sample_rate_hz
        cache: dict[Path, np.ndarray] = {}
        parts = []
        for f in self._clips[sound_type.name][index]:
            if f not in cache:
                cache[f] = load_audio(f, fs)
            parts.append(cache[f])
        x = np.concatenate(parts)
        if duration_s is not None:
            n = max(1, int(round(duration_s * fs)))
            x = np.tile(x, -(-n // x.size))[:n]
        if not self.normalize:
            return x
        if not np.any(x):
            files = [str(f) for f in self._clips[sound_type.name][index]]
            raise AudioFileError(f"clip {index} of {sound_type.name!r} is silent (files {files})")
        return normalize_power(x, fs)
