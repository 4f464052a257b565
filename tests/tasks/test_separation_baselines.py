"""Motion baselines of active separation: what each one does with the agent, and the binaural DoA."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avworld.geometry.io import save_scene
from avworld.tasks.separation import MOVE_FORWARD, STAY, TURN_LEFT, TURN_RIGHT, ActiveSeparationEnv
from avworld.tasks.separation_baselines import (
    BASELINES,
    DoAPolicy,
    ProximityPrior,
    RandomMotion,
    RotateInPlace,
    StandInPlace,
    binaural_doa,
    rollout,
)
from avworld.tasks.separation_episodes import EpisodeSource, SeparationEpisode, SeparationError

from ..acoustics.rooms import shoebox


@pytest.fixture(scope="module")
def free_field_spec(tmp_path_factory):
    return str(save_scene(shoebox((30.0, 30.0, 12.0), absorption=0.99), tmp_path_factory.mktemp("ff")))


@pytest.fixture(scope="module")
def env():
    return ActiveSeparationEnv(num_scenes=1, rgb=False, allow_stay=True, seed=2)


def _one_source(spec, pose, src=(15.0, 15.0, 1.5)):
    return SeparationEpisode("e", spec, "", pose, (EpisodeSource(src, "speaker_010", 1, 4.0),))


def test_stand_keeps_the_pose_and_needs_stay(env):
    r = rollout(env, StandInPlace(env), seed=0)
    assert r["audio"].shape == (20, 2, 16000) and r["target_mono"].shape == (20, 16000)
    assert (r["actions"] == STAY).all() and np.ptp(r["poses"], axis=0).max() == 0.0
    with pytest.raises(SeparationError, match="allow_stay"):
        StandInPlace(ActiveSeparationEnv(num_scenes=1, rgb=False))


def test_rotate_turns_clockwise_on_the_spot(env):
    r = rollout(env, RotateInPlace(), seed=1)
    assert (r["actions"] == TURN_RIGHT).all()
    assert np.ptp(r["poses"][:, :2], axis=0).max() == 0.0
    dyaw = (np.diff(r["poses"][:, 2]) + math.pi) % (2 * math.pi) - math.pi
    np.testing.assert_allclose(dyaw, -math.pi / 2, atol=1e-9)


def test_random_is_seeded_and_uses_the_three_moves(env):
    a = rollout(env, RandomMotion(seed=5), seed=3)["actions"]
    b = rollout(env, RandomMotion(seed=5), seed=3)["actions"]
    np.testing.assert_array_equal(a, b)
    assert set(a.tolist()) <= {MOVE_FORWARD, TURN_LEFT, TURN_RIGHT}


def test_proximity_never_steps_out_and_walks_back():
    p = ProximityPrior(radius_m=2.0)
    behind = {"target_distance_m": 1.5, "target_direction_rad": math.pi}  # forward would reach 2.5 m
    assert all(p.act({}, behind) != MOVE_FORWARD for _ in range(200))
    ahead = {"target_distance_m": 1.5, "target_direction_rad": 0.0}  # forward reaches 0.5 m: allowed
    assert any(p.act({}, ahead) == MOVE_FORWARD for _ in range(200))
    assert p.act({}, {"target_distance_m": 3.0, "target_direction_rad": 0.1}) == MOVE_FORWARD
    assert p.act({}, {"target_distance_m": 3.0, "target_direction_rad": 2.0}) == TURN_LEFT
    assert p.act({}, {"target_distance_m": 3.0, "target_direction_rad": -2.0}) == TURN_RIGHT


def test_proximity_stays_near_the_target_in_a_house(env):
    far_random, far_prox = [], []
    for k in range(3):
        far_random.append(rollout(env, RandomMotion(seed=k), seed=10 + k)["target_distance_m"].max())
        d = rollout(env, ProximityPrior(seed=k), seed=10 + k)["target_distance_m"]
        far_prox.append(d.max())
        assert np.mean(d <= 2.0 + 1e-6) >= 0.9
    assert max(far_prox) <= 3.0
    assert max(far_random) > 2.5  # without the prior the agent wanders off


def test_doa_steps_away_then_faces_the_target_and_holds(free_field_spec):
    env = ActiveSeparationEnv(scenes=(free_field_spec,), rgb=False, num_sources=1, min_separation_m=0.0,
                              allow_stay=True, num_steps=8)
    r = rollout(env, DoAPolicy(env=env), options={"episode": _one_source(free_field_spec, (15.0, 15.0, 0.3))})
    assert r["actions"][0] == MOVE_FORWARD
    assert r["target_distance_m"][-1] == pytest.approx(1.0, abs=0.1)
    assert (r["actions"][-3:] == STAY).all()
    x, y, yaw = r["poses"][-1]
    bearing = math.atan2(15.0 - y, 15.0 - x) - yaw
    assert abs((bearing + math.pi) % (2 * math.pi) - math.pi) <= math.pi / 4 + 1e-9


def test_binaural_doa_tells_left_from_right(free_field_spec):
    env = ActiveSeparationEnv(scenes=(free_field_spec,), rgb=False, num_sources=1, min_separation_m=0.0, num_steps=2)
    # the agent 3 m from the source, facing +x: the source ahead, to the left (+y) or to the right (-y)
    got = {}
    for name, pose in (("ahead", (12.0, 15.0, 0.0)), ("left", (15.0, 12.0, 0.0)), ("right", (15.0, 18.0, 0.0))):
        _, info = env.reset(options={"episode": _one_source(free_field_spec, pose)})
        got[name] = binaural_doa(info["target_binaural"])
    assert abs(got["ahead"]) < 0.2
    assert got["left"] > math.pi / 4 and got["right"] < -math.pi / 4
    assert binaural_doa(np.zeros((2, 100))) == 0.0
    with pytest.raises(SeparationError):
        binaural_doa(np.zeros(100))


def test_baseline_table():
    assert set(BASELINES) == {"stand", "rotate", "random", "proximity", "doa"}
