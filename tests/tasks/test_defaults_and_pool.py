"""Defaults a client gets from ``gymnasium.make`` with no options (issue 22, items 12 and 13)."""

import gymnasium as gym
import numpy as np
import pytest

import avworld  # noqa: F401  (registers the ids)
from avworld.tasks import AudioGoalConfig, AudioGoalEnv
from avworld.tasks.episodes import EpisodeError, make_episodes

TINY = {"width": 16, "height": 16, "observations": "vision", "rooms": (1, 2)}


def test_default_world_cache_holds_every_sampled_scene(small_episodes):
    env = gym.make("avworld/AudioGoal-v0")
    assert env.unwrapped.worlds.size == len(env.unwrapped.scenes) == AudioGoalConfig().num_scenes
    assert AudioGoalEnv(num_scenes=12).worlds.size == 12
    assert AudioGoalEnv(num_scenes=12, world_cache=3).worlds.size == 3
    assert AudioGoalEnv(episodes=small_episodes).worlds.size == len({e.scene for e in small_episodes})


def test_resets_over_more_scenes_than_the_old_cache_build_each_world_once():
    env = AudioGoalEnv(num_scenes=5, episodes_per_scene=2, **TINY)  # the old default cache held 4 worlds
    env.reset(seed=3)
    for _ in range(30):
        env.reset()
    assert env.worlds.builds == len(env.worlds) == 5


def test_pooled_episodes_are_make_episodes_of_the_env_scenes():
    env = AudioGoalEnv(num_scenes=2, episodes_per_scene=3, seed=5, **TINY)
    env.reset(seed=0)
    seen = {env.episode.episode_id}
    for _ in range(25):
        env.reset()
        seen.add(env.episode.episode_id)
    assert seen <= {f"{i:04d}-{k:04d}" for i in range(2) for k in range(3)} and len(seen) > 1
    expected = make_episodes(env.scenes, 3, env.episode_config, seed=5)
    assert [env.pool_episode(i, k) for i in range(2) for k in range(3)] == expected
    with pytest.raises(EpisodeError, match="out of range"):
        env.pool_episode(0, 3)


def test_episodes_per_scene_zero_samples_a_new_episode_every_reset():
    env = AudioGoalEnv(num_scenes=1, episodes_per_scene=0, **TINY)
    env.reset(seed=1)
    ids = {env.episode.episode_id}
    for _ in range(4):
        env.reset()
        ids.add(env.episode.episode_id)
    assert len(ids) == 5 and all(i.startswith("sampled-") for i in ids)


@pytest.mark.parametrize(("field", "value"), [("world_cache", 0), ("step_limit", 0), ("episodes_per_scene", -1),
                                              ("num_scenes", 0), ("world_cache", 2.5),
                                              ("render_cache_items", -1), ("render_cache_items", True)])
def test_bad_counts_name_their_own_field(field, value):
    with pytest.raises(EpisodeError, match=rf"AudioGoalConfig\.{field}: must be an integer >= "):
        AudioGoalConfig(**{field: value})


def test_discrete_env_refuses_non_integer_actions(episode_file):
    env = AudioGoalEnv(episodes=episode_file, observations="vision", width=16, height=16)
    env.reset(seed=0, options={"episode_index": 0})
    for bad in (1.5, 1.0, np.float32(1.0), "1", True, np.array([1.5]), np.array([1, 2]), None, -1, 4):
        with pytest.raises(EpisodeError, match="action must be one of .* as an integer"):
            env.step(bad)
    for good in (1, np.int64(2), np.array(3), np.array([1], dtype=np.int32)):
        env.step(good)
    assert env._steps == 4  # noqa: SLF001  (the refused actions did not count)


def test_render_cache_items_reaches_the_worlds_config():
    assert AudioGoalConfig().sim_config().render_cache_items == 64
    assert AudioGoalConfig(render_cache_items=0).sim_config().render_cache_items == 0
