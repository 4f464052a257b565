"""avworld: embodied audio-visual AI worlds that agents see and hear.

Importing the package registers the gymnasium ids ``avworld/AudioGoal-v0`` (discrete
actions) and ``avworld/AudioGoalContinuous-v0`` (velocity actions), so
``gymnasium.make("avworld/AudioGoal-v0")`` works after a plain ``import avworld``. The
registration names the entry point as a string: the simulator (Embree, scipy.signal) and
torch are imported only when an env is made.
"""

__version__ = "0.1.0"

#: the gymnasium ids of the AudioGoal environments (discrete, continuous)
ENV_IDS = ("avworld/AudioGoal-v0", "avworld/AudioGoalContinuous-v0")


def _register_envs() -> None:
    from gymnasium.envs.registration import register, registry

    entry = "avworld.tasks.audiogoal:AudioGoalEnv"
    if ENV_IDS[0] not in registry:
        register(id=ENV_IDS[0], entry_point=entry, disable_env_checker=False)
    if ENV_IDS[1] not in registry:
        register(id=ENV_IDS[1], entry_point=entry, kwargs={"continuous": True})


_register_envs()
