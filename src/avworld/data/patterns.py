"""The three AVW motion patterns: where the source stands and where a trajectory goes.

Per scene one stationary source stands ``source_height_m`` above a navigable point
(:func:`place_source`). A trajectory (:func:`plan_trajectory`) follows one pattern:

* ``from_source``: start at the source's navigable point, walk to a random goal;
* ``to_source``: start at a random point, walk to the source (ends within one step of it);
* ``random``: walk between two random points, independent of the source.

The agent follows the geodesic shortest path with
:class:`~avworld.geometry.follower.ShortestPathFollower` (always navigable) and ends
with STOP; start-goal distances and the distance of every path point to the source obey
the :class:`~avworld.data.config.TrajectoryConfig` rules. Planning needs only the
navigation grid, so it is cheap; recording happens in :mod:`avworld.data.rollout`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.data.config import PATTERNS, TrajectoryConfig
from avworld.data.errors import TrajectorySamplingError
from avworld.geometry.actions import Action
from avworld.geometry.follower import ShortestPathFollower

#: Candidate points drawn at once when looking for a start or goal.
_CANDIDATES = 64


@dataclass(frozen=True)
class TrajectoryPlan:
    """A planned trajectory: ``poses`` (T, 3) are the poses the frames are recorded at and
    ``actions`` (T,) the action taken after each frame (the last one is STOP)."""

    pattern: str
    start_pose: tuple[float, float, float]
    goal_xy: tuple[float, float]
    actions: np.ndarray
    poses: np.ndarray
    start_offset_s: float
    attempts: int

    @property
    def num_frames(self) -> int:
        return len(self.actions)


def place_source(world, config: TrajectoryConfig, rng: np.random.Generator, tries: int = 200) -> np.ndarray:
    """(3,) source position over a navigable point that the acoustic engine accepts."""
    nav = world.nav
    for _ in range(tries):
        xy = nav.sample_navigable(rng, 1)[0]
        pos = np.array([xy[0], xy[1], nav.floor_z + config.source_height_m])
        try:
            world.engine.check_position(pos, "source")
        except ValueError:
            continue
        return pos
    raise TrajectorySamplingError(
        f"no valid source position after {tries} tries (every candidate was inside geometry); "
        "check the scene or lower TrajectoryConfig.source_height_m"
    )


def pattern_of(config: TrajectoryConfig, k: int) -> str:
    """Patterns are used in turn: ``patterns[k % len(patterns)]``. Trajectory ``j`` of scene
    ``i`` uses ``k = i + j``, so every scene, shard and split gets a balanced mix."""
    return config.patterns[k % len(config.patterns)]


def _pick(rng: np.random.Generator, nav, ok) -> np.ndarray | None:
    """A random navigable point satisfying ``ok(points) -> bool mask``, or None."""
    pts = nav.sample_navigable(rng, _CANDIDATES)
    good = np.flatnonzero(ok(pts))
    return None if len(good) == 0 else pts[good[0]]


def _within(field, lo: float, hi: float, src_field, reach: float):
    """Mask function: geodesic distance to ``field``'s goal in [lo, hi] and to the source <= reach."""
    def ok(p):
        d = np.asarray(field.distance_at(p), float)
        return (d >= lo) & (d <= hi) & (np.asarray(src_field.distance_at(p), float) <= reach)
    return ok


def plan_trajectory(
    world, source_xy, config: TrajectoryConfig, rng: np.random.Generator, pattern: str, sound_period_s: float = 1.0,
) -> TrajectoryPlan:
    """Draw start, goal and heading for ``pattern`` and plan the follower's actions.

    Raises :class:`TrajectorySamplingError` after ``config.max_tries`` draws.
    """
    if pattern not in PATTERNS:
        raise TrajectorySamplingError(f"unknown motion pattern {pattern!r}; choose one of {PATTERNS}")
    nav = world.nav
    sim_cfg = world.config
    source_xy = np.asarray(source_xy, float)[:2]
    src_field = nav.geodesic_field(source_xy)
    lo, hi = config.min_path_m, config.max_path_m
    reach = config.max_source_distance_m
    follower = ShortestPathFollower(nav, sim_cfg.forward_step_m, sim_cfg.turn_deg)

    def d_src(p):
        return np.asarray(src_field.distance_at(p), float)

    for attempt in range(1, config.max_tries + 1):
        if pattern == "from_source":
            start = source_xy
            goal = _pick(rng, nav, lambda p: (d_src(p) >= lo) & (d_src(p) <= min(hi, reach)))
        elif pattern == "to_source":
            start = _pick(rng, nav, lambda p: (d_src(p) >= lo) & (d_src(p) <= min(hi, reach)))
            goal = source_xy
        else:
            start = _pick(rng, nav, lambda p: d_src(p) <= reach)
            goal = None
            if start is not None:
                goal = _pick(rng, nav, _within(nav.geodesic_field(start), lo, hi, src_field, reach))
        yaw = float(rng.uniform(-np.pi, np.pi))
        # the ring's phase at the start, on the step grid: every phase of the loop is still drawn
        # (uniformly, 0.15 s apart), and the chunks of all trajectories of a scene are then the same
        # few dry chunks, whose spectra the simulator's stream computes once (see BinauralStream)
        offset = -float(rng.integers(0, max(1, int(round(sound_period_s / sim_cfg.step_s))))) * sim_cfg.step_s
        if start is None or goal is None:
            continue
        steps = follower.follow(start, yaw, goal, max_steps=config.max_frames)
        if not steps or steps[-1][3] != Action.STOP or len(steps) < 2:
            continue  # too long for max_frames (or no path)
        poses = np.array([s[:3] for s in steps], dtype=float)
        if np.any(~np.isfinite(d_src(poses[:, :2]))) or np.max(d_src(poses[:, :2])) > reach:
            continue  # the path strays too far from the source
        actions = np.array([int(s[3]) for s in steps], dtype=np.uint8)
        return TrajectoryPlan(
            pattern=pattern, start_pose=(float(start[0]), float(start[1]), float(poses[0, 2])),
            goal_xy=(float(goal[0]), float(goal[1])), actions=actions, poses=poses, start_offset_s=offset,
            attempts=attempt,
        )
    raise TrajectorySamplingError(
        f"no {pattern!r} trajectory within {config.max_frames} frames, path length [{lo}, {hi}] m and "
        f"{reach} m of the source after {config.max_tries} tries; use a larger scene, lower "
        "TrajectoryConfig.min_path_m or raise max_frames / max_source_distance_m"
    )
