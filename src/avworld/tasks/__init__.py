"""Tasks: gymnasium environments, episode datasets, baseline agents.

The gymnasium ids ``avworld/AudioGoal-v0`` (discrete actions) and
``avworld/AudioGoalContinuous-v0`` (velocity actions) are registered by ``import avworld``
itself (see :mod:`avworld`); ``ENV_IDS`` is re-exported here.
"""

from avworld import ENV_IDS
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

__all__ = [
    "ENV_IDS", "AudioGoalConfig", "AudioGoalEnv", "AudioGoalEpisode", "EpisodeConfig", "EpisodeError",
    "EpisodeFileError", "load_episodes", "make_episodes", "make_vector_env", "save_episodes", "split_scenes",
]
