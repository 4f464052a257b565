"""Active-separation episodes: k dynamic sources of distinct types, the agent at the target.

An episode places ``num_sources`` sources (2 by default, 1-4 allowed; 1 is only for checks)
on navigable points of a scene, every pair at least ``min_separation_m`` (8 m) apart,
measured **Euclidean in the horizontal plane** (all sources hang at ``source_height_m``);
source 0 is the target, and the agent starts on the navigable point under it, facing a
random direction. Each source plays a clip of its own sound type (types are distinct:
:class:`SameTypeError` otherwise) from a random point of the clip, looping.

Sound clips: under ``sounds="unheard"`` an episode of split ``s`` draws clips from split
``s`` of :func:`~avworld.sounds.split_clips` (each type's 25 clips cut 18:3:4 into
train / val / test); under ``sounds="heard"`` every split draws from the *train* clips, so
test episodes replay clips the agent trained on in unseen houses (the paper's "heard").

File format (``.jsonl``): a header ``{"format": "avworld-separation-episodes", "version": 1,
"config": {...}, "split": ...}`` and one episode per line (:class:`SeparationEpisode`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

SEPARATION_FORMAT = "avworld-separation-episodes"
SEPARATION_VERSION = 1
SOUND_PROTOCOLS = ("heard", "unheard")
SPLITS = ("train", "val", "test")
KINDS = ("speech", "music", "background")


class SeparationError(ValueError):
    """An active-separation episode or option cannot be used."""


class SameTypeError(SeparationError):
    """Two sources of one episode play the same sound type (every source needs its own type)."""


class SceneTooSmallError(SeparationError):
    """A scene cannot hold the sources ``min_separation_m`` apart."""


class SeparationFileError(SeparationError):
    """An episode file is malformed or of another format / version."""


@dataclass(frozen=True)
class SeparationEpisodeConfig:
    """How active-separation episodes are drawn (see module docstring).

    ``target_kinds`` / ``distractor_kinds``: the sound kinds a target / distractor may play
    (speech, music, background); a source's kind is drawn uniformly from its list, then its
    type uniformly among that kind's unused types. ``sounds``: ``unheard`` or ``heard`` clips.
    ``max_tries``: target positions tried before :class:`SceneTooSmallError`.
    """

    num_sources: int = 2
    min_separation_m: float = 8.0
    source_height_m: float = 1.2
    sounds: str = "unheard"
    target_kinds: tuple[str, ...] = ("speech", "music")
    distractor_kinds: tuple[str, ...] = ("speech", "music", "background")
    clip_seed: int = 0
    max_tries: int = 100

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise SeparationError(f"SeparationEpisodeConfig.{name}: {msg}")

        k = self.num_sources
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= 4:
            bad("num_sources", f"must be an integer in 1..4 (2 is the task's default), got {k!r}")
        if not self.min_separation_m >= 0:
            bad("min_separation_m", f"must be >= 0, got {self.min_separation_m}")
        if not self.source_height_m > 0:
            bad("source_height_m", f"must be > 0, got {self.source_height_m}")
        if self.sounds not in SOUND_PROTOCOLS:
            bad("sounds", f"must be one of {SOUND_PROTOCOLS}, got {self.sounds!r}")
        object.__setattr__(self, "target_kinds", tuple(self.target_kinds))
        object.__setattr__(self, "distractor_kinds", tuple(self.distractor_kinds))
        for name in ("target_kinds", "distractor_kinds"):
            v = getattr(self, name)
            if not v or any(x not in KINDS for x in v):
                bad(name, f"must be a non-empty subset of {KINDS}, got {v!r}")
        if self.max_tries < 1:
            bad("max_tries", f"must be >= 1, got {self.max_tries}")


@dataclass(frozen=True)
class EpisodeSource:
    """One source of an episode: where it is and what it plays (clip, from ``offset_s`` into it)."""

    position: tuple[float, float, float]
    sound: str
    clip_index: int
    offset_s: float

    def to_dict(self) -> dict:
        return {"position": [float(v) for v in self.position], "sound": self.sound,
                "clip_index": int(self.clip_index), "offset_s": float(self.offset_s)}


@dataclass(frozen=True)
class SeparationEpisode:
    """One episode: sources (``sources[0]`` is the target) and the agent's start pose at the target."""

    episode_id: str
    scene: str
    scene_hash: str
    start_pose: tuple[float, float, float]
    sources: tuple[EpisodeSource, ...]
    sounds: str = "unheard"
    split: str = "train"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        srcs = tuple(s if isinstance(s, EpisodeSource) else EpisodeSource(**s) for s in self.sources)
        object.__setattr__(self, "sources", srcs)
        object.__setattr__(self, "start_pose", tuple(float(v) for v in self.start_pose))
        if not srcs:
            raise SeparationError(f"episode {self.episode_id}: needs at least one source (the target)")
        check_distinct_types([s.sound for s in srcs], f"episode {self.episode_id}")

    @property
    def target(self) -> EpisodeSource:
        return self.sources[0]

    @property
    def source_types(self) -> tuple[str, ...]:
        return tuple(s.sound for s in self.sources)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["start_pose"] = [float(v) for v in self.start_pose]
        d["sources"] = [s.to_dict() for s in self.sources]
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "episode") -> SeparationEpisode:
        names = {f.name for f in fields(cls)}
        missing = sorted({"episode_id", "scene", "scene_hash", "start_pose", "sources"} - set(d))
        unknown = sorted(set(d) - names)
        if missing or unknown:
            raise SeparationFileError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        try:
            ep = cls(**{**d, "sources": tuple(EpisodeSource(**{**s, "position": tuple(map(float, s["position"]))})
                                               for s in d["sources"])})
        except SameTypeError:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            raise SeparationFileError(f"{where}: bad field value ({exc})") from None
        if len(ep.start_pose) != 3 or not all(math.isfinite(v) for v in ep.start_pose):
            raise SeparationFileError(f"{where}: start_pose needs finite (x, y, yaw)")
        return ep


def check_distinct_types(types: Sequence[str], where: str) -> None:
    """Raise :class:`SameTypeError` if a sound type appears twice."""
    seen = [t for i, t in enumerate(types) if t in types[:i]]
    if seen:
        raise SameTypeError(f"{where}: sources must play distinct sound types, {sorted(set(seen))} appear more than "
                            f"once in {list(types)}; pick another type for each repeated one")


# ---------------------------------------------------------------------------- sounds
def sound_bank(seed: int = 0, sample_rate_hz: int = 16000):
    """The built-in bank (one per process, seed and rate: building one takes ~1-2 s)."""
    return _bank(int(seed), int(sample_rate_hz))


@functools.lru_cache(maxsize=2)
def _bank(seed: int, sample_rate_hz: int):
    from avworld.sounds import SoundBank

    return SoundBank(sample_rate_hz=sample_rate_hz, seed=seed)


def separation_types(bank=None) -> tuple[str, ...]:
    """The dynamic sound types, in the bank's order: ``target_type`` observations index this list."""
    return tuple((bank or sound_bank()).names("dynamic"))


@functools.lru_cache(maxsize=8)
def _clip_pool(bank_seed: int, clip_seed: int, sounds: str, split: str) -> dict[str, tuple[int, ...]]:
    from avworld.sounds import split_clips

    if split not in SPLITS:
        raise SeparationError(f"unknown split {split!r}; choose one of {SPLITS}")
    bank = sound_bank(bank_seed)
    pool: dict[str, list[int]] = {}
    for name, idx in split_clips(bank, seed=clip_seed, types=bank.names("dynamic"))[
            "train" if sounds == "heard" else split]:
        pool.setdefault(name, []).append(idx)
    return {k: tuple(v) for k, v in pool.items()}


def draw_types(rng: np.random.Generator, config: SeparationEpisodeConfig, bank) -> list[str]:
    """Distinct sound types: the target's first (see :class:`SeparationEpisodeConfig`)."""
    used: list[str] = []
    for k in range(config.num_sources):
        kinds = list(config.target_kinds if k == 0 else config.distractor_kinds)
        while kinds:
            kind = kinds[int(rng.integers(len(kinds)))]
            free = [n for n in bank.names("dynamic", kind=kind) if n not in used]
            if free:
                used.append(free[int(rng.integers(len(free)))])
                break
            kinds.remove(kind)
        else:
            raise SeparationError(f"not enough distinct sound types of kinds {config.distractor_kinds} for "
                                  f"{config.num_sources} sources")
    return used


# ---------------------------------------------------------------------------- placement
def navigable_diameter_m(nav) -> float:
    """Largest horizontal distance between two navigable cell centres of a grid."""
    from scipy.spatial import ConvexHull, QhullError

    iy, ix = np.divmod(nav._free_flat, nav.shape[1])
    pts = nav.cell_to_world(np.stack([iy, ix], axis=1))
    try:
        pts = pts[ConvexHull(pts).vertices]
    except (QhullError, ValueError):
        pass  # degenerate (a line of cells): use them all
    if len(pts) > 4000:
        pts = pts[:: len(pts) // 4000 + 1]
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    return float(d.max()) if d.size else 0.0


def place_sources(nav, scene: str, rng: np.random.Generator, config: SeparationEpisodeConfig,
                  check_source: Callable | None = None) -> tuple[np.ndarray, int]:
    """(k, 3) source positions, every pair >= ``min_separation_m`` apart (Euclidean, horizontal), and
    the number of candidate distractor points that were redrawn for being too close.

    The target comes first; each distractor is drawn uniformly over the navigable cells and redrawn
    while it lies too close to a placed source (or ``check_source`` rejects it). A scene whose
    navigable floor is narrower than ``min_separation_m`` (or that yields no placement in
    ``max_tries`` target draws) raises :class:`SceneTooSmallError` naming the scene.
    """
    k, sep = config.num_sources, config.min_separation_m
    z = nav.floor_z + config.source_height_m
    if k > 1 and navigable_diameter_m(nav) < sep:
        raise SceneTooSmallError(
            f"scene {scene}: its navigable floor spans {navigable_diameter_m(nav):.1f} m at most, less than the "
            f"{sep} m between sources; use a larger scene (more rooms) or lower min_separation_m")
    redrawn = 0
    for _ in range(config.max_tries):
        placed: list[np.ndarray] = []
        for _j in range(k):
            for cand in nav.sample_navigable(rng, 64):
                p = np.array([cand[0], cand[1], z])
                if any(np.linalg.norm(p[:2] - q[:2]) < sep for q in placed):
                    redrawn += 1
                    continue
                if check_source is not None:
                    try:
                        check_source(p)
                    except ValueError:
                        continue
                placed.append(p)
                break
            else:
                break  # no room for this source around these: redraw the target too
        if len(placed) == k:
            return np.stack(placed), redrawn
    raise SceneTooSmallError(f"scene {scene}: found no placement of {k} sources >= {sep} m apart in "
                             f"{config.max_tries} tries; use a larger scene (more rooms), fewer sources or a "
                             "lower min_separation_m")


def sample_separation_episode(world, scene: str, rng: np.random.Generator, config: SeparationEpisodeConfig,
                              episode_id: str, split: str = "train", bank_seed: int = 0) -> SeparationEpisode:
    """Draw one episode in a built :class:`~avworld.sim.world.SharedWorld` (see module docstring)."""
    bank = sound_bank(bank_seed)
    pool = _clip_pool(bank_seed, config.clip_seed, config.sounds, split)
    positions, redrawn = place_sources(world.nav, scene, rng, config,
                                       check_source=lambda p: world.engine.check_position(p, "source"))
    types = draw_types(rng, config, bank)
    sources = []
    for p, name in zip(positions, types):
        clips = pool[name]
        offset = round(float(rng.uniform(0.0, bank.natural_duration_s(name))), 3)
        sources.append(EpisodeSource(tuple(float(v) for v in p), name, int(clips[int(rng.integers(len(clips)))]),
                                     offset))
    yaw = float(rng.uniform(-np.pi, np.pi))
    d = [float(np.linalg.norm(positions[i, :2] - positions[j, :2]))
         for i in range(len(positions)) for j in range(i + 1, len(positions))]
    return SeparationEpisode(
        episode_id=episode_id, scene=scene, scene_hash=world.scene.content_hash,
        start_pose=(float(positions[0, 0]), float(positions[0, 1]), yaw), sources=tuple(sources),
        sounds=config.sounds, split=split,
        info={"min_source_distance_m": round(min(d), 4) if d else None, "redrawn": redrawn},
    )


def iter_separation_episodes(scenes: Sequence[str], per_scene: int, config: SeparationEpisodeConfig, split: str,
                             seed: int = 0, sim_config=None, start: int = 0,
                             ) -> Iterator[tuple[int, str, list[SeparationEpisode]]]:
    """``(i, scene, episodes)`` per scene from index ``start``; episode ``k`` of scene ``i`` is drawn
    with the generator seeded by ``(seed, i, k)`` (what the env's on-the-fly episodes use)."""
    from avworld.geometry.spec import load_scene_spec
    from avworld.sim.config import SimConfig
    from avworld.sim.world import SharedWorld

    if isinstance(per_scene, bool) or not isinstance(per_scene, int | np.integer) or per_scene < 1:
        raise SeparationError(f"per_scene must be an integer >= 1, got {per_scene!r}")
    sim_config = sim_config or SimConfig.preset("grid", outputs=(), spectrogram=False)
    for i in range(int(start), len(scenes)):
        spec = scenes[i]
        world = SharedWorld(load_scene_spec(spec), sim_config)
        eps = [sample_separation_episode(world, spec, np.random.default_rng([seed, i, k]), config,
                                         f"{split}-{i:04d}-{k:04d}", split) for k in range(per_scene)]
        yield i, spec, eps


# ---------------------------------------------------------------------------- files
def save_separation_episodes(path: str | Path, episodes: Sequence[SeparationEpisode],
                             config: SeparationEpisodeConfig, split: str | None = None,
                             extra: dict | None = None) -> Path:
    """Write episodes as JSON lines (header first; atomic); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": SEPARATION_FORMAT, "version": SEPARATION_VERSION, "config": asdict(config),
              "split": split, "num_episodes": len(episodes), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(header) + "\n")
        f.writelines(json.dumps(ep.to_dict()) + "\n" for ep in episodes)
    tmp.replace(path)
    return path


def load_separation_episodes(path: str | Path) -> tuple[dict, list[SeparationEpisode]]:
    """(header, episodes) of an episode file; :class:`SeparationFileError` for other formats."""
    from avworld.tasks.episode_files import read_episode_file

    return read_episode_file(path, SEPARATION_FORMAT, SEPARATION_VERSION, "active-separation",
                             "avworld separation episodes make",
                             lambda d, where: SeparationEpisode.from_dict(d, where=where), SeparationFileError)
