"""ActiveSeparation-v0: spaces, episode length, ground truth (linear mixing, free field, dry clip), noise."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import avworld  # noqa: F401  (registers the ids)
from avworld.geometry.io import save_scene
from avworld.tasks.separation import ActiveSeparationEnv
from avworld.tasks.separation_episodes import (
    EpisodeSource,
    SeparationEpisode,
    SeparationError,
    sound_bank,
)

from ..acoustics.rooms import shoebox

FS = 16000
C = 343.0


@pytest.fixture(scope="module")
def free_field_spec(tmp_path_factory):
    """A 40 x 40 x 20 m box with 99 % absorbing walls: the direct sound dominates by far."""
    path = save_scene(shoebox((40.0, 40.0, 20.0), absorption=0.99), tmp_path_factory.mktemp("ff"))
    return str(path)


@pytest.fixture(scope="module")
def house_env():
    env = gym.make("avworld/ActiveSeparation-v0", num_scenes=1, width=32, height=32, seed=3)
    yield env
    env.close()


def _episode(spec, sources, pose, eid="e0"):
    srcs = tuple(EpisodeSource(tuple(p), name, clip, off) for p, name, clip, off in sources)
    return SeparationEpisode(eid, spec, "", tuple(pose), srcs)


def _run(env, episode, actions):
    obs, info = env.reset(seed=0, options={"episode": episode})
    out = [(obs, info)]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        out.append((obs, info))
    return out


def test_spaces_and_registration(house_env):
    env = house_env
    assert isinstance(env.unwrapped, ActiveSeparationEnv)
    assert env.action_space == gym.spaces.Discrete(3)
    obs, info = env.reset(seed=0)
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["audio"].shape == (2, FS) and obs["audio"].dtype == np.float32
    assert "depth" not in obs
    types = env.unwrapped.source_types
    assert len(types) == 122 and env.observation_space["target_type"] == gym.spaces.Discrete(122)
    assert types[obs["target_type"]] == info["source_types"][0]
    assert info["target_mono"].shape == (FS,) and info["target_binaural"].shape == (2, FS)
    assert info["source_binaurals"].shape == (2, 2, FS)
    assert len(set(info["source_types"])) == 2
    assert info["target_distance_m"] < 0.5  # the agent starts at the target
    assert obs["step"] == 0 and info["scene"] == env.unwrapped.scenes[0]


def test_episode_has_num_steps_observations_and_then_ends(house_env):
    env = house_env
    env.reset(seed=1)
    steps = [0]
    for _ in range(19):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        steps.append(obs["step"])
        assert reward == 0.0 and not term
    assert trunc and steps == list(range(20))
    with pytest.raises(SeparationError, match="reset"):
        env.step(0)
    with pytest.raises(SeparationError, match="allow_stay"):
        env.reset(seed=1)
        env.step(3)


def test_check_env_is_clean():
    env = gym.make("avworld/ActiveSeparation-v0", num_scenes=1, width=32, height=32, depth=True, num_steps=4,
                   render_mode="rgb_array").unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert not [w for w in caught if "gymnasium" in str(w.filename) or "env_checker" in str(w.message)], \
        [str(w.message) for w in caught]
    obs, _ = env.reset(seed=0)
    assert obs["depth"].shape == (32, 32, 1) and 0 <= obs["depth"].min() and obs["depth"].max() <= 1


def test_same_seed_same_episode_and_audio(house_env):
    a, ia = house_env.reset(seed=11)
    b, ib = house_env.reset(seed=11)
    assert ia["episode_id"] == ib["episode_id"]
    np.testing.assert_array_equal(a["audio"], b["audio"])


def test_mixing_is_linear_superposition(house_env):
    """The mixture is the sum of the per-source binaurals, and rendering two sources together equals
    adding the renders of each alone (same poses, same actions)."""
    env = house_env.unwrapped
    ep = env.scene_episode(0, 5)
    actions = [0, 1, 0, 2, 0]
    both = _run(env, ep, actions)
    alone = [_run(env, SeparationEpisode("x", ep.scene, ep.scene_hash, ep.start_pose, (s,)), actions)
             for s in ep.sources]
    for t, (obs, info) in enumerate(both):
        np.testing.assert_array_equal(obs["audio"], info["source_binaurals"].sum(0))
        summed = alone[0][t][0]["audio"] + alone[1][t][0]["audio"]
        np.testing.assert_allclose(obs["audio"], summed, atol=1e-6 * np.abs(summed).max() + 1e-9)
        np.testing.assert_allclose(info["target_binaural"], alone[0][t][1]["target_binaural"], atol=1e-7)


def test_free_field_single_source_mixture_is_target_and_delay_grows_as_r_over_c(free_field_spec):
    env = ActiveSeparationEnv(scenes=(free_field_spec,), rgb=False, num_sources=1, min_separation_m=0.0,
                              num_steps=3)
    src = (20.0, 20.0, 1.5)  # at ear height
    lags = {}
    for r in (2.0, 5.0):
        # the agent r m away along +x, facing the source; it turns on the spot afterwards
        ep = _episode(free_field_spec, [(src, "speaker_004", 2, 3.0)], (20.0 + r, 20.0, math.pi))
        steps = _run(env, ep, [2, 2])
        for obs, info in steps:
            np.testing.assert_array_equal(obs["audio"], info["target_binaural"])
        obs, info = steps[0]
        cc = np.correlate(obs["audio"].sum(0), info["target_mono"][: FS // 2], "valid")
        lags[r] = int(np.argmax(np.abs(cc[:2000])))  # lag of the dry signal in what the ears hear
        assert r / C * FS - 2 <= lags[r] <= r / C * FS + 24  # d/c plus the HRIR's onset-to-peak time
    # the HRIR's own delay cancels in the difference: 3 m more is 3 / c more
    assert abs((lags[5.0] - lags[2.0]) - 3.0 / C * FS) <= 2


def test_target_mono_is_the_dry_clip_of_the_step(house_env):
    env = house_env.unwrapped
    ep = env.scene_episode(0, 7)
    bank = sound_bank()
    steps = _run(env, ep, [0, 1, 0])
    tgt = ep.target
    clip = bank.clip(tgt.sound, tgt.clip_index)
    start = int(round(tgt.offset_s * FS))
    for t, (_, info) in enumerate(steps):
        idx = (start + t * FS + np.arange(FS)) % len(clip)
        np.testing.assert_array_equal(info["target_mono"], clip[idx])


def test_target_distance_and_direction(free_field_spec):
    env = ActiveSeparationEnv(scenes=(free_field_spec,), rgb=False, num_sources=1, min_separation_m=0.0,
                              num_steps=2)
    src = (20.0, 20.0, 1.2)
    for pose, bearing in [((17.0, 20.0, 0.0), 0.0), ((20.0, 17.0, 0.0), math.pi / 2),
                          ((20.0, 23.0, 0.0), -math.pi / 2), ((23.0, 20.0, math.pi / 2), math.pi / 2)]:
        _, info = env.reset(options={"episode": _episode(free_field_spec, [(src, "music_piano_00", 0, 0.0)], pose)})
        assert info["target_distance_m"] == pytest.approx(3.0, abs=0.1)
        assert info["target_direction_rad"] == pytest.approx(bearing, abs=1e-6)


def test_microphone_noise_at_the_configured_snr(free_field_spec):
    env = ActiveSeparationEnv(scenes=(free_field_spec,), rgb=False, num_sources=1, min_separation_m=0.0,
                              num_steps=4, noise_snr_db=10.0)
    ep = _episode(free_field_spec, [((20.0, 20.0, 1.2), "bg_rain", 1, 2.0)], (22.0, 20.0, 0.0))
    for obs, info in _run(env, ep, [1, 1, 1]):
        clean = info["source_binaurals"].sum(0)
        noise = obs["audio"] - clean
        snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
        assert snr == pytest.approx(10.0, abs=0.5)


def test_bad_options_are_refused():
    with pytest.raises(SeparationError, match="num_sources"):
        ActiveSeparationEnv(num_sources=5)
    with pytest.raises(SeparationError, match="unknown ActiveSeparationEnv options"):
        ActiveSeparationEnv(sources=2)
    with pytest.raises(SeparationError, match="sounds"):
        ActiveSeparationEnv(sounds="seen")


def test_state_replays_the_episode_exactly(house_env):
    env = house_env.unwrapped
    env.reset(seed=21)
    for a in (0, 1, 0):
        env.step(a)
    saved = env.state
    other = ActiveSeparationEnv(num_scenes=1, width=32, height=32, seed=3)
    other.reset(seed=99)
    other.state = saved
    for a in (0, 2, 0):
        o1, _, _, _, i1 = env.step(a)
        o2, _, _, _, i2 = other.step(a)
        np.testing.assert_array_equal(o1["audio"], o2["audio"])
        np.testing.assert_array_equal(o1["rgb"], o2["rgb"])
        assert i1["episode_id"] == i2["episode_id"]
    # the next episode is the same too (the generator continues alike)
    assert env.reset()[1]["episode_id"] == other.reset()[1]["episode_id"]
    ep = env.scene_episode(0, 3)
    env.reset(options={"episode": ep})
    other.state = env.state
    assert other.episode == ep


def test_default_houses_grow_with_the_number_of_sources():
    assert ActiveSeparationEnv(rgb=False).scenes[0].endswith((":5", ":6", ":7", ":8"))
    assert ActiveSeparationEnv(rgb=False, num_sources=3).config.house_rooms == (8, 12)
    env = ActiveSeparationEnv(rgb=False, num_sources=3, rooms=(6, 7))
    assert env.config.house_rooms == (6, 7) and all(s.endswith((":6", ":7")) for s in env.scenes)
