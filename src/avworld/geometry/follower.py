"""An oracle agent: discrete actions that follow the geodesic shortest path to a goal."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avworld.geometry.actions import Action
from avworld.geometry.geodesic import PulledPath
from avworld.geometry.navigation import NavGrid, NavigationError, wrap_angle


@dataclass(frozen=True)
class FollowerConfig:
    """Motion parameters of :class:`ShortestPathFollower` (``goal_radius_m=None`` = one step)."""

    forward_step_m: float = 0.25
    turn_deg: float = 10.0
    goal_radius_m: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.forward_step_m) and self.forward_step_m > 0):
            raise NavigationError(f"forward_step_m={self.forward_step_m!r} must be a positive number of metres")
        if not (math.isfinite(self.turn_deg) and 0 < self.turn_deg <= 180):
            raise NavigationError(f"turn_deg={self.turn_deg!r} must lie in (0, 180] degrees")
        if self.goal_radius_m is not None and not (math.isfinite(self.goal_radius_m) and self.goal_radius_m > 0):
            raise NavigationError(f"goal_radius_m={self.goal_radius_m!r} must be positive (or None = one step)")


class ShortestPathFollower:
    """Greedy follower of the string-pulled shortest path.

    Each call of :meth:`next_action` plans from the current pose: STOP once the
    geodesic distance to the goal is at most ``goal_radius_m``; otherwise aim at the
    next path vertex at least about one step away and commit to one manoeuvre: the
    turns (the shorter way) that bring the heading error within half a turn, then one
    step forward. Turning in place keeps the position and therefore the plan, and every
    manoeuvre ends with a forward step, so the agent never swings left/right. If that
    step would collide (the path hugs obstacle corners and the heading is only accurate
    to half a turn), it takes instead the turn count whose step gets geodesically
    closest to the goal. Near the goal (in straight view, within a step plus the goal
    radius) it picks the turn count whose step lands within the goal radius.
    """

    def __init__(
        self,
        navgrid: NavGrid,
        forward_step_m: float = 0.25,
        turn_deg: float = 10.0,
        goal_radius_m: float | None = None,
    ) -> None:
        self.config = FollowerConfig(forward_step_m, turn_deg, goal_radius_m)
        self.navgrid = navgrid
        self.forward_step_m = float(forward_step_m)
        self.turn_deg = float(turn_deg)
        self.goal_radius_m = float(self.forward_step_m if goal_radius_m is None else goal_radius_m)
        self._turn_rad = math.radians(self.turn_deg)
        # Committed manoeuvre: [xy, goal_xy, yaw expected at the next call, remaining actions].
        self._plan: list | None = None

    def reset(self) -> None:
        """Forget any committed manoeuvre (call between episodes)."""
        self._plan = None

    # ------------------------------------------------------------------ policy
    def next_action(self, xy, yaw_rad: float, goal_xy) -> Action:
        """The action to take at pose (``xy``, ``yaw_rad``) to reach ``goal_xy``.

        Returns STOP when within the goal radius, and also when there is no path (the
        pose or the goal is not navigable).
        """
        nav = self.navgrid
        xy = np.asarray(xy, dtype=float).reshape(2)
        goal = np.asarray(goal_xy, dtype=float).reshape(2)
        if self._plan is not None:
            pxy, pgoal, pyaw, actions = self._plan
            same_pose = np.array_equal(pxy, xy) and abs(wrap_angle(yaw_rad - pyaw)) < 1e-6
            if actions and same_pose and np.array_equal(pgoal, goal):
                action = actions.pop(0)
                self._plan[2] = self._turned(pyaw, action)
                return action
            self._plan = None
        # pulled lazily: a step needs the path's first vertices and its length only near the goal
        path = nav.pulled_path(xy, goal)
        if path.empty or not path.longer_than(self.goal_radius_m):
            return Action.STOP
        near = self.forward_step_m + self.goal_radius_m
        # the first segment alone rules most steps out, without pulling a second vertex
        if (math.hypot(*(path.vertex(1) - xy)) < near + 1e-9 and not path.has(2)
                and path.length() < near):
            action = self._final_approach(xy, yaw_rad, goal)
            if action is not None:
                return action
        target = self._lookahead(xy, path)
        err = wrap_angle(math.atan2(target[1] - xy[1], target[0] - xy[0]) - yaw_rad)
        # Turns needed to bring the heading error within half a turn (0 if it already is).
        k = int(round(err / self._turn_rad))
        land, collided = nav.move_forward(xy, yaw_rad + k * self._turn_rad, self.forward_step_m)
        field = nav.geodesic_field(goal)
        # Every step must lower the geodesic distance: that rules out cycles (e.g. stepping
        # past a path vertex that is closer than a step, then back toward it).
        if not collided and field.distance_at(land) < field.distance_at(xy) - 1e-6:
            return self._commit(xy, yaw_rad, goal, k)
        return self._recover(xy, yaw_rad, goal, err)

    def _lookahead(self, xy: np.ndarray, path: PulledPath) -> np.ndarray:
        # Aim at the first vertex at least ~one step away; skip a closer vertex only if
        # the one after it is in straight view (else we would cut the corner).
        # (the last vertex is the answer too: check the distance first, to pull no further)
        j = 1
        while True:
            v = path.vertex(j)
            if np.hypot(*(v - xy)) >= 0.99 * self.forward_step_m or not path.has(j + 1):
                return v
            if not self.navgrid.segment_free(xy, path.vertex(j + 1)):
                return v
            j += 1

    def _turn_counts(self) -> list[int]:
        """Turn counts -n..n (a half circle each way), fewest turns first."""
        n_half = max(1, int(math.ceil(math.pi / self._turn_rad)))
        return [0] + [k for m in range(1, n_half + 1) for k in (m, -m)]

    def _turned(self, yaw_rad: float, action: Action) -> float:
        if action == Action.TURN_LEFT:
            return float(wrap_angle(yaw_rad + self._turn_rad))
        if action == Action.TURN_RIGHT:
            return float(wrap_angle(yaw_rad - self._turn_rad))
        return yaw_rad

    def _commit(self, xy: np.ndarray, yaw_rad: float, goal: np.ndarray, k: int) -> Action:
        """Start the manoeuvre "k turns (left if k > 0), then one step forward"."""
        turn = Action.TURN_LEFT if k > 0 else Action.TURN_RIGHT
        actions = [turn] * abs(k) + [Action.MOVE_FORWARD]
        first = actions.pop(0)
        self._plan = [xy.copy(), goal.copy(), self._turned(yaw_rad, first), actions] if actions else None
        return first

    def _final_approach(self, xy: np.ndarray, yaw_rad: float, goal: np.ndarray) -> Action | None:
        """The goal is in straight view and less than a step plus the goal radius away.

        Steps land on a circle of radius ``forward_step_m`` around the agent (one point
        per turn count). Take the fewest turns whose step lands within the goal radius;
        if none does (goal radius smaller than the step), step to where the goal is
        about one step away, from where a later step can land on it. ``None``: no
        collision-free step helps; steer normally.
        """
        nav = self.navgrid
        best = None
        for k in self._turn_counts():
            land, collided = nav.move_forward(xy, yaw_rad + k * self._turn_rad, self.forward_step_m)
            if collided or not nav.segment_free(land, goal):
                continue
            d = float(np.hypot(*(land - goal)))
            if d <= self.goal_radius_m:
                return self._commit(xy, yaw_rad, goal, k)
            miss = abs(d - self.forward_step_m)
            if best is None or miss < best[0] - 1e-9:
                best = (miss, k)
        if best is None or best[0] > self.goal_radius_m:
            return None
        return self._commit(xy, yaw_rad, goal, best[1])

    def _recover(self, xy: np.ndarray, yaw_rad: float, goal: np.ndarray, err: float) -> Action:
        """Forward is blocked: choose the heading (reachable by k turns) whose free step
        gets geodesically closest to the goal, and commit to turning there then moving."""
        nav = self.navgrid
        field = nav.geodesic_field(goal)
        here = field.distance_at(xy)
        best = None
        for k in self._turn_counts():
            new_xy, collided = nav.move_forward(xy, yaw_rad + k * self._turn_rad, self.forward_step_m)
            d = field.distance_at(new_xy)
            # Rank: a clean step beats a partial one; then geodesic progress; then fewer turns.
            key = (collided, d + 1e-3 * abs(k))
            if d < here - 1e-6 and (best is None or key < best[0]):
                best = (key, k)
        if best is None:
            # Nothing makes progress (should not happen on a connected grid): turn toward the target.
            return Action.TURN_LEFT if err >= 0 else Action.TURN_RIGHT
        return self._commit(xy, yaw_rad, goal, best[1])

    # ------------------------------------------------------------------ rollout
    def follow(self, start_xy, start_yaw_rad: float, goal_xy, max_steps: int = 500) -> list[tuple]:
        """Run the follower from a start pose; returns ``[(x, y, yaw_rad, action), ...]``
        (the pose each action was taken from), ending with STOP unless ``max_steps`` ran out.

        Raises :class:`NavigationError` if the start or goal is not navigable.
        """
        nav = self.navgrid
        start = np.asarray(start_xy, dtype=float).reshape(2)
        goal = np.asarray(goal_xy, dtype=float).reshape(2)
        for name, p in (("start", start), ("goal", goal)):
            if not nav.is_navigable(p):
                raise NavigationError(f"{name} {p.tolist()} is not navigable; use NavGrid.snap() first")
        self.reset()
        x, y, yaw = float(start[0]), float(start[1]), float(wrap_angle(start_yaw_rad))
        trajectory: list[tuple] = []
        for _ in range(max_steps):
            action = self.next_action((x, y), yaw, goal)
            trajectory.append((x, y, yaw, action))
            if action == Action.STOP:
                break
            x, y, yaw, _ = nav.apply_action(x, y, yaw, action, self.forward_step_m, self.turn_deg)
        self.reset()
        return trajectory
