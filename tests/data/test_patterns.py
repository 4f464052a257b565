"""The three motion patterns start and end where they should, on navigable ground."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.data.config import PATTERNS, TrajectoryConfig
from avworld.data.errors import TrajectorySamplingError
from avworld.data.patterns import pattern_of, place_source, plan_trajectory
from avworld.data.rollout import compute_rewards
from avworld.geometry.actions import Action
from avworld.geometry.navigation import wrap_angle
from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.sim.world import SharedWorld

CFG = TrajectoryConfig(image_size=32, max_frames=120, min_path_m=1.5, max_path_m=6.0, max_source_distance_m=8.0)


@pytest.fixture(scope="module")
def world():
    return SharedWorld(generate_house(HouseConfig(num_rooms=3), seed=11), CFG.sim_config())


@pytest.fixture(scope="module")
def source(world):
    return place_source(world, CFG, np.random.default_rng(0))


def _check_common(world, plan, source):
    nav = world.nav
    poses, actions = plan.poses, plan.actions
    assert 2 <= len(actions) <= CFG.max_frames and actions[-1] == Action.STOP
    assert np.all(actions[:-1] != Action.STOP)
    assert np.all(nav.is_navigable(poses[:, :2]))
    d_src = np.asarray(nav.geodesic_field(source[:2]).distance_at(poses[:, :2]))
    assert d_src.max() <= CFG.max_source_distance_m
    # the poses follow from the actions (forward 0.15 m, turns of 10 degrees)
    for t in range(len(actions) - 1):
        step = poses[t + 1] - poses[t]
        if actions[t] == Action.MOVE_FORWARD:
            assert np.hypot(*step[:2]) <= 0.15 + 1e-9 and abs(wrap_angle(step[2])) < 1e-9
        else:
            turn = np.radians(10.0) * (1 if actions[t] == Action.TURN_LEFT else -1)
            assert np.allclose(step[:2], 0) and abs(wrap_angle(step[2] - turn)) < 1e-9
    assert np.allclose(plan.start_pose, poses[0])
    # the goal is reached: the follower stops within one step of it
    assert nav.geodesic_distance(poses[-1, :2], plan.goal_xy) <= 0.15 + 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_from_source_starts_at_the_source(world, source, seed):
    plan = plan_trajectory(world, source[:2], CFG, np.random.default_rng(seed), "from_source")
    _check_common(world, plan, source)
    assert np.allclose(plan.poses[0, :2], source[:2])
    assert world.nav.geodesic_distance(source[:2], plan.goal_xy) >= CFG.min_path_m


@pytest.mark.parametrize("seed", [0, 1])
def test_to_source_ends_at_the_source(world, source, seed):
    plan = plan_trajectory(world, source[:2], CFG, np.random.default_rng(seed), "to_source")
    _check_common(world, plan, source)
    assert np.allclose(plan.goal_xy, source[:2])
    assert np.hypot(*(plan.poses[-1, :2] - source[:2])) <= 0.15 + 1e-6
    assert world.nav.geodesic_distance(plan.poses[0, :2], source[:2]) >= CFG.min_path_m


@pytest.mark.parametrize("seed", [0, 1])
def test_random_connects_two_random_points(world, source, seed):
    plan = plan_trajectory(world, source[:2], CFG, np.random.default_rng(seed), "random")
    _check_common(world, plan, source)
    d = world.nav.geodesic_distance(plan.poses[0, :2], plan.goal_xy)
    assert CFG.min_path_m <= d <= CFG.max_path_m


def test_planning_is_seeded(world, source):
    a = plan_trajectory(world, source[:2], CFG, np.random.default_rng(3), "random")
    b = plan_trajectory(world, source[:2], CFG, np.random.default_rng(3), "random")
    assert np.array_equal(a.poses, b.poses) and a.start_offset_s == b.start_offset_s


def test_impossible_rules_raise_a_clear_error(world, source):
    cfg = TrajectoryConfig(max_frames=10, min_path_m=5.0, max_path_m=6.0, max_tries=3)
    with pytest.raises(TrajectorySamplingError, match="max_frames"):
        plan_trajectory(world, source[:2], cfg, np.random.default_rng(0), "to_source")


def test_patterns_are_used_in_turn():
    assert [pattern_of(CFG, i) for i in range(4)] == [*PATTERNS, PATTERNS[0]]


def test_reward_variants():
    g = np.array([3.0, 2.85, 2.9, 0.5, 0.5])
    actions = np.array([1, 1, 1, 1, 0])
    r = compute_rewards(g, actions, TrajectoryConfig(reward="distance"))
    assert np.allclose(r, [0.15, -0.05, 2.4, 0.0, 0.0])
    nav_cfg = TrajectoryConfig(reward="navigation", success_reward=10.0, slack_reward=-0.01, success_distance_m=1.0)
    r = compute_rewards(g, actions, nav_cfg)
    assert np.allclose(r, [0.14, -0.06, 2.39, -0.01, 9.99])
