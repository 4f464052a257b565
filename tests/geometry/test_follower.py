"""The shortest-path follower (oracle agent) on discrete actions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avworld.geometry.actions import Action
from avworld.geometry.builder import SceneBuilder
from avworld.geometry.follower import ShortestPathFollower
from avworld.geometry.navigation import NavGrid, NavigationError

T, H = 0.1, 2.5


def two_rooms():
    """8 x 6 m, divided at x in [4, 4.1] with a 1 m doorway (y in [2.5, 3.5]) and a table."""
    b = SceneBuilder()
    b.add_box((-T, -T, -T), (8 + T, 6 + T, 0.0), "wood_floor", "floor")
    b.add_box((-T, -T, H), (8 + T, 6 + T, H + T), "ceiling_plaster", "ceiling")
    for lo, hi in [
        ((-T, -T, 0), (0, 6 + T, H)),
        ((8, -T, 0), (8 + T, 6 + T, H)),
        ((0, -T, 0), (8, 0, H)),
        ((0, 6, 0), (8, 6 + T, H)),
        ((4, 0, 0), (4 + T, 2.5, H)),
        ((4, 3.5, 0), (4 + T, 6, H)),
        ((4, 2.5, 2.1), (4 + T, 3.5, H)),
    ]:
        b.add_box(lo, hi, "plaster", "wall")
    b.add_box((1.5, 2.0, 0.0), (2.5, 3.0, 0.75), "wood_furniture", "table", skip=("bottom",))
    return b.build()


@pytest.fixture(scope="module")
def grid():
    return NavGrid.build(two_rooms())


def final_distance(grid, traj, goal):
    x, y, _, _ = traj[-1]
    return grid.geodesic_distance((x, y), goal)


def test_action_ids():
    assert [a.value for a in Action] == [0, 1, 2, 3]
    assert [a.name for a in Action] == ["STOP", "MOVE_FORWARD", "TURN_LEFT", "TURN_RIGHT"]


def test_reaches_sampled_goals(grid):
    follower = ShortestPathFollower(grid)
    assert follower.goal_radius_m == 0.25
    rng = np.random.default_rng(0)
    for _ in range(12):
        start, goal = grid.sample_navigable(rng, 2)
        yaw = rng.uniform(-math.pi, math.pi)
        traj = follower.follow(start, yaw, goal)
        assert traj[-1][3] == Action.STOP
        assert all(a != Action.STOP for *_, a in traj[:-1])
        assert final_distance(grid, traj, goal) <= 0.25
        geo = grid.geodesic_distance(start, goal)
        n_forward = sum(a == Action.MOVE_FORWARD for *_, a in traj)
        n_turn = sum(a in (Action.TURN_LEFT, Action.TURN_RIGHT) for *_, a in traj)
        assert n_forward <= 1.3 * geo / 0.25 + 3, (n_forward, geo)
        assert n_turn <= 18 + 4 * (1 + geo), (n_turn, geo)  # initial turn-around plus the bends
        # Every recorded pose is navigable and every step stays in free space.
        xy = np.array([(x, y) for x, y, *_ in traj])
        assert grid.is_navigable(xy).all()
        assert all(grid.segment_free(p, q) for p, q in zip(xy[:-1], xy[1:]))


def test_no_left_right_oscillation(grid):
    follower = ShortestPathFollower(grid)
    rng = np.random.default_rng(1)
    for _ in range(8):
        start, goal = grid.sample_navigable(rng, 2)
        traj = follower.follow(start, rng.uniform(-math.pi, math.pi), goal)
        acts = [a for *_, a in traj]
        for a, b in zip(acts[:-1], acts[1:]):
            assert {a, b} != {Action.TURN_LEFT, Action.TURN_RIGHT}


def test_turns_the_shorter_way(grid):
    follower = ShortestPathFollower(grid)
    start, goal = np.array([1.0, 1.0]), np.array([3.0, 1.0])
    assert follower.next_action(start, math.radians(60), goal) == Action.TURN_RIGHT
    assert follower.next_action(start, math.radians(-60), goal) == Action.TURN_LEFT
    assert follower.next_action(start, math.radians(3), goal) == Action.MOVE_FORWARD


def test_stops_at_goal(grid):
    follower = ShortestPathFollower(grid)
    goal = np.array([6.0, 4.0])
    assert follower.next_action(goal + [0.1, 0.1], 0.0, goal) == Action.STOP
    traj = follower.follow(goal, 1.0, goal)
    assert len(traj) == 1 and traj[0][3] == Action.STOP


def test_small_goal_radius(grid):
    follower = ShortestPathFollower(grid, goal_radius_m=0.05)
    rng = np.random.default_rng(2)
    for _ in range(5):
        start, goal = grid.sample_navigable(rng, 2)
        traj = follower.follow(start, 0.0, goal, max_steps=400)
        assert traj[-1][3] == Action.STOP
        assert final_distance(grid, traj, goal) <= 0.05


def test_other_step_and_turn(grid):
    follower = ShortestPathFollower(grid, forward_step_m=0.5, turn_deg=30.0)
    start, goal = np.array([1.0, 5.0]), np.array([7.0, 0.8])
    traj = follower.follow(start, math.pi, goal)
    assert traj[-1][3] == Action.STOP and final_distance(grid, traj, goal) <= 0.5
    assert len(traj) < 60


def test_errors_and_unreachable(grid):
    follower = ShortestPathFollower(grid)
    with pytest.raises(NavigationError, match="start"):
        follower.follow([4.05, 1.0], 0.0, [1.0, 1.0])  # inside the wall
    with pytest.raises(NavigationError, match="goal"):
        follower.follow([1.0, 1.0], 0.0, [2.0, 2.5])  # on the table
    assert follower.next_action([1.0, 1.0], 0.0, [2.0, 2.5]) == Action.STOP
    with pytest.raises(NavigationError, match="forward_step_m"):
        ShortestPathFollower(grid, forward_step_m=0.0)
    with pytest.raises(NavigationError, match="turn_deg"):
        ShortestPathFollower(grid, turn_deg=-5.0)
    with pytest.raises(NavigationError, match="goal_radius_m"):
        ShortestPathFollower(grid, goal_radius_m=0.0)
