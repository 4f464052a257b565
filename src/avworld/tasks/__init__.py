"""Tasks: gymnasium environments, episode datasets, baseline agents.

Importing this package registers the gymnasium ids ``avworld/AudioGoal-v0`` (discrete
actions) and ``avworld/AudioGoalContinuous-v0`` (velocity actions).
"""

from gymnasium.envs.registration import register, registry

from avworld.tasks.audiogoal import AudioGoalConfig, AudioGoalEnv
from avworld.tasks.episodes import (
    AudioGoalEpisode,
    EpisodeConfig,
    EpisodeError,
    EpisodeFileError,
    load_episodes,
    make_episodes,
    save_episodes,
    split_scenes,
)
from avworld.tasks.vector import make_vector_env

ENV_IDS = ("avworld/AudioGoal-v0", "avworld/AudioGoalContinuous-v0")

if ENV_IDS[0] not in registry:
    register(id=ENV_IDS[0], entry_point="avworld.tasks.audiogoal:AudioGoalEnv", disable_env_checker=False)
if ENV_IDS[1] not in registry:
    register(id=ENV_IDS[1], entry_point="avworld.tasks.audiogoal:AudioGoalEnv", kwargs={"continuous": True})

__all__ = [
    "ENV_IDS", "AudioGoalConfig", "AudioGoalEnv", "AudioGoalEpisode", "EpisodeConfig", "EpisodeError",
    "EpisodeFileError", "load_episodes", "make_episodes", "make_vector_env", "save_episodes", "split_scenes",
]
