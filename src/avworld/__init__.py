"""avworld: embodied audio-visual AI worlds that agents see and hear.

Importing the package registers the gymnasium ids ``avworld/AudioGoal-v0`` (discrete
actions), ``avworld/AudioGoalContinuous-v0`` (velocity actions) and
``avworld/ActiveSeparation-v0`` (active audio-visual separation), so
``gymnasium.make("avworld/AudioGoal-v0")`` works after a plain ``import avworld``. The
registration names the entry point as a string: the simulator (Embree, scipy.signal) and
torch are imported only when an env is made.
"""

__version__ = "0.1.0"

#: the gymnasium ids of the AudioGoal environments (discrete, continuous)
ENV_IDS = ("avworld/AudioGoal-v0", "avworld/AudioGoalContinuous-v0")
#: the gymnasium id of the active audio-visual separation environment (docs/separation.md)
SEPARATION_ENV_ID = "avworld/ActiveSeparation-v0"


def _register_envs() -> None:
    from gymnasium.envs.registration import register, registry

    entry = "avworld.tasks.audiogoal:AudioGoalEnv"
    if ENV_IDS[0] not in registry:
        register(id=ENV_IDS[0], entry_point=entry, disable_env_checker=False)
    if ENV_IDS[1] not in registry:
        register(id=ENV_IDS[1], entry_point=entry, kwargs={"continuous": True})
    if SEPARATION_ENV_ID not in registry:
        register(id=SEPARATION_ENV_ID, entry_point="avworld.tasks.separation:ActiveSeparationEnv")


_register_envs()
