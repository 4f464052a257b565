"""AudioGoal episodes: scene splits, sampling, and JSON-lines episode files.

An episode holds everything needed to replay it exactly: the scene (spec string and
content hash), the agent's start pose, the sounding object's position, sound type,
clip and phase, the goal (the navigable point under the source), the optimal geodesic
distance and the optimal number of actions of the shortest-path follower.

File format (``.jsonl``): the first line is a header
``{"format": "avworld-audiogoal-episodes", "version": 1, "config": {...}, "split": ...}``;
every following line is one episode (the fields of :class:`AudioGoalEpisode`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from avworld.geometry.actions import Action
from avworld.geometry.follower import ShortestPathFollower
from avworld.geometry.navigation import NavGrid

EPISODE_FORMAT = "avworld-audiogoal-episodes"
EPISODE_VERSION = 1


class EpisodeError(ValueError):
    """An episode cannot be used (non-navigable start, unreachable goal, wrong scene)."""


class EpisodeFileError(ValueError):
    """An episode file is malformed or of another format/version."""


@dataclass(frozen=True)
class EpisodeConfig:
    """How episodes are sampled (and the motion they were planned for).

    ``min_geodesic_m`` / ``max_geodesic_m`` bound the start-goal geodesic distance. Like
    habitat-lab's PointNav generator, a pair whose geodesic / euclidean ratio is below
    ``min_path_ratio`` (a nearly straight path) is kept only with probability
    ``straight_keep_prob``. ``forward_step_m`` / ``turn_deg`` are the motion the optimal
    action count is computed for (they must match the environment's simulator preset).
    """

    min_geodesic_m: float = 2.0
    max_geodesic_m: float = 30.0
    min_path_ratio: float = 1.1
    straight_keep_prob: float = 0.05
    source_height_m: float = 1.2
    sound: str = "telephone_ringing"
    forward_step_m: float = 0.25
    turn_deg: float = 10.0
    max_optimal_actions: int = 400
    max_tries: int = 200

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise EpisodeError(f"EpisodeConfig.{name}: {msg}")

        if not 0 <= self.min_geodesic_m < self.max_geodesic_m:
            bad("min_geodesic_m", f"need 0 <= min_geodesic_m < max_geodesic_m, got {self.min_geodesic_m}, "
                                  f"{self.max_geodesic_m}")
        if not self.min_path_ratio >= 1.0:
            bad("min_path_ratio", f"must be >= 1, got {self.min_path_ratio}")
        if not 0 <= self.straight_keep_prob <= 1:
            bad("straight_keep_prob", f"must lie in [0, 1], got {self.straight_keep_prob}")
        if not self.source_height_m > 0:
            bad("source_height_m", f"must be > 0, got {self.source_height_m}")
        if self.max_tries < 1 or self.max_optimal_actions < 1:
            bad("max_tries", "max_tries and max_optimal_actions must be >= 1")


@dataclass(frozen=True)
class AudioGoalEpisode:
    """One AudioGoal episode (see module docstring)."""

    episode_id: str
    scene: str
    scene_hash: str
    start_pose: tuple[float, float, float]
    source_position: tuple[float, float, float]
    goal_xy: tuple[float, float]
    geodesic_distance_m: float
    euclidean_distance_m: float
    optimal_actions: int
    sound: str = "telephone_ringing"
    clip_index: int = 0
    start_offset_s: float = 0.0
    info: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict, where: str = "episode") -> AudioGoalEpisode:
        names = {f.name for f in fields(cls)}
        required = names - {"sound", "clip_index", "start_offset_s", "info"}
        missing = sorted(required - set(d))
        unknown = sorted(set(d) - names)
        if missing or unknown:
            raise EpisodeFileError(f"{where}: missing fields {missing}, unknown fields {unknown}")
        try:
            ep = cls(**{**d, "start_pose": tuple(map(float, d["start_pose"])),
                        "source_position": tuple(map(float, d["source_position"])),
                        "goal_xy": tuple(map(float, d["goal_xy"]))})
        except (TypeError, ValueError) as exc:
            raise EpisodeFileError(f"{where}: bad field value ({exc})") from None
        if len(ep.start_pose) != 3 or len(ep.source_position) != 3 or len(ep.goal_xy) != 2:
            raise EpisodeFileError(f"{where}: start_pose needs (x, y, yaw), source_position (x, y, z), goal_xy (x, y)")
        if not all(math.isfinite(v) for v in (*ep.start_pose, *ep.source_position, *ep.goal_xy)):
            raise EpisodeFileError(f"{where}: positions must be finite numbers")
        return ep

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("start_pose", "source_position", "goal_xy"):
            d[k] = [float(v) for v in d[k]]
        return d


# ---------------------------------------------------------------------------- splits
#: Seed offsets of the procedural scene splits; far apart, so splits never share a house.
SPLIT_SEED_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}


def split_scenes(split: str, num_scenes: int, rooms: tuple[int, int] = (2, 4), base_seed: int = 0) -> list[str]:
    """Procedural scene specs of a split: ``house:SEED:ROOMS`` with disjoint seed ranges.

    House ``i`` of split ``s`` has seed ``base_seed + SPLIT_SEED_OFFSETS[s] + i`` and a room
    count drawn from ``rooms`` (inclusive) by that seed, so the lists are reproducible.
    """
    from avworld.geometry.spec import house_spec

    if split not in SPLIT_SEED_OFFSETS:
        raise EpisodeError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SEED_OFFSETS)}")
    lo, hi = int(rooms[0]), int(rooms[1])
    if not 1 <= lo <= hi <= 12:
        raise EpisodeError(f"rooms must be (lo, hi) with 1 <= lo <= hi <= 12, got {rooms}")
    if not 0 < num_scenes < 1_000_000:
        raise EpisodeError(f"num_scenes must lie in 1..999999, got {num_scenes}")
    specs = []
    for i in range(num_scenes):
        seed = base_seed + SPLIT_SEED_OFFSETS[split] + i
        n_rooms = lo + int(np.random.default_rng(seed).integers(hi - lo + 1))
        specs.append(house_spec(seed, n_rooms))
    return specs


# ---------------------------------------------------------------------------- sampling
def optimal_actions(nav: NavGrid, start_pose, goal_xy, config: EpisodeConfig) -> int:
    """Number of actions (STOP included) the shortest-path follower needs, or -1 if it fails."""
    follower = ShortestPathFollower(nav, config.forward_step_m, config.turn_deg)
    traj = follower.follow(start_pose[:2], start_pose[2], goal_xy, max_steps=config.max_optimal_actions)
    if not traj or traj[-1][3] != Action.STOP:
        return -1
    return len(traj)


def sample_episode(
    nav: NavGrid, scene: str, scene_hash: str, rng: np.random.Generator, config: EpisodeConfig, episode_id: str,
    floor_z: float | None = None, sound_period_s: float = 1.0, check_source: Callable | None = None,
) -> AudioGoalEpisode:
    """Draw one episode in a scene (goal first, then a start that satisfies the distance rules).

    ``check_source(position)`` may raise for a source position the acoustic engine rejects;
    such goals are redrawn. Raises :class:`EpisodeError` after ``config.max_tries`` goals.
    """
    z0 = nav.floor_z if floor_z is None else floor_z
    for _ in range(config.max_tries):
        goal = nav.sample_navigable(rng, 1)[0]
        source = (float(goal[0]), float(goal[1]), float(z0 + config.source_height_m))
        if check_source is not None:
            try:
                check_source(np.array(source))
            except ValueError:
                continue
        field_ = nav.geodesic_field(goal)
        starts = nav.sample_navigable(rng, 64)
        geo = np.asarray(field_.distance_at(starts), dtype=float)
        euc = np.linalg.norm(starts - goal, axis=1)
        keep_straight = rng.random(len(starts)) < config.straight_keep_prob
        ratio = geo / np.maximum(euc, 1e-9)
        ok = (np.isfinite(geo) & (geo >= config.min_geodesic_m) & (geo <= config.max_geodesic_m)
              & ((ratio >= config.min_path_ratio) | keep_straight))
        for k in np.flatnonzero(ok)[:4]:
            yaw = float(rng.uniform(-np.pi, np.pi))
            start = (float(starts[k, 0]), float(starts[k, 1]), yaw)
            n_opt = optimal_actions(nav, start, goal, config)
            if n_opt > 0:
                return AudioGoalEpisode(
                    episode_id=episode_id, scene=scene, scene_hash=scene_hash, start_pose=start,
                    source_position=source, goal_xy=(float(goal[0]), float(goal[1])),
                    geodesic_distance_m=float(geo[k]), euclidean_distance_m=float(euc[k]), optimal_actions=n_opt,
                    sound=config.sound, clip_index=0, start_offset_s=-float(rng.uniform(0, sound_period_s)),
                )
    raise EpisodeError(
        f"scene {scene}: no episode with geodesic distance in [{config.min_geodesic_m}, {config.max_geodesic_m}] m "
        f"after {config.max_tries} goals; lower EpisodeConfig.min_geodesic_m or use a larger scene"
    )


def make_episodes(
    scenes: Sequence[str], per_scene: int, config: EpisodeConfig = EpisodeConfig(),  # noqa: B008
    seed: int = 0, progress: Callable[[str], None] | None = None, sim_config=None,
) -> list[AudioGoalEpisode]:
    """``per_scene`` episodes in each scene; episode ``k`` of scene ``i`` uses seed (seed, i, k)."""
    episodes = []
    for _, spec, eps in iter_scene_episodes(scenes, per_scene, config, seed, sim_config):
        episodes.extend(eps)
        if progress is not None:
            progress(spec)
    return episodes


def iter_scene_episodes(
    scenes: Sequence[str], per_scene: int, config: EpisodeConfig = EpisodeConfig(),  # noqa: B008
    seed: int = 0, sim_config=None, start: int = 0,
) -> Iterator[tuple[int, str, list[AudioGoalEpisode]]]:
    """``(i, scene, episodes)`` for the scenes from index ``start`` on, exactly as :func:`make_episodes`
    samples them (so a run can stop after any scene and continue later with ``start``).

    The goal's sound type is checked first (:class:`~avworld.sounds.registry.UnknownSoundError`
    with close matches), before any world is built.
    """
    from avworld.geometry.spec import load_scene_spec
    from avworld.sim.config import SimConfig
    from avworld.sim.world import SharedWorld
    from avworld.sounds import SoundBank

    if isinstance(per_scene, bool) or not isinstance(per_scene, int | np.integer) or per_scene < 1:
        raise EpisodeError(f"per_scene must be an integer >= 1, got {per_scene!r}")
    SoundBank(sample_rate_hz=(sim_config or SimConfig()).sample_rate_hz).get(config.sound)
    sim_config = sim_config or SimConfig(forward_step_m=config.forward_step_m, turn_deg=config.turn_deg)
    for i in range(int(start), len(scenes)):
        spec = scenes[i]
        scene = load_scene_spec(spec)
        world = SharedWorld(scene, sim_config)
        eps = []
        for k in range(per_scene):
            rng = np.random.default_rng([seed, i, k])
            eps.append(sample_episode(
                world.nav, spec, scene.content_hash, rng, config, f"{i:04d}-{k:04d}",
                check_source=lambda p, w=world: w.engine.check_position(p, "source"),
            ))
        yield i, spec, eps


# ---------------------------------------------------------------------------- files
def save_episodes(path: str | Path, episodes: Sequence[AudioGoalEpisode], config: EpisodeConfig,
                  split: str | None = None, extra: dict | None = None) -> Path:
    """Write episodes as JSON lines (header first); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format": EPISODE_FORMAT, "version": EPISODE_VERSION, "config": asdict(config), "split": split,
              "num_episodes": len(episodes), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(header) + "\n")
        for ep in episodes:
            f.write(json.dumps(ep.to_dict()) + "\n")
    tmp.replace(path)
    return path


def load_episodes(path: str | Path) -> tuple[dict, list[AudioGoalEpisode]]:
    """(header, episodes) of an episode file; clear errors for other formats and versions."""
    from avworld.tasks.episode_files import read_episode_file

    return read_episode_file(path, EPISODE_FORMAT, EPISODE_VERSION, "avworld AudioGoal", "avworld episodes make",
                             lambda d, where: AudioGoalEpisode.from_dict(d, where=where), EpisodeFileError)


def episode_config_of(header: dict) -> EpisodeConfig:
    """The :class:`EpisodeConfig` recorded in a file header."""
    try:
        return EpisodeConfig(**header.get("config", {}))
    except TypeError as exc:
        raise EpisodeFileError(f"episode file header has a bad config ({exc})") from None
