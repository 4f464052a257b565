"""N AudioGoal environments as one gymnasium vector env."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym

from avworld.tasks.episodes import AudioGoalEpisode, EpisodeError, load_episodes


def make_vector_env(
    num_envs: int, episodes: str | Path | Sequence[AudioGoalEpisode] | None = None, asynchronous: bool = False,
    env_id: str = "avworld/AudioGoal-v0", **env_kwargs,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` over an episode split (or on-the-fly scenes).

    With an episode file or list, env ``i`` gets the episodes ``i, i + N, i + 2N, ...``
    (each scene's worlds then stay in few processes); ``asynchronous=True`` runs each env
    in its own process (``AsyncVectorEnv``). Seed with ``vec.reset(seed=s)``: env ``i``
    gets seed ``s + i``. Autoreset is gymnasium's default (NEXT_STEP).
    """
    if num_envs < 1:
        raise EpisodeError(f"num_envs must be >= 1, got {num_envs}")
    shards: list = [None] * num_envs
    if episodes is not None:
        eps = load_episodes(episodes)[1] if isinstance(episodes, (str, Path)) else list(episodes)
        if len(eps) < num_envs:
            raise EpisodeError(f"{len(eps)} episodes cannot feed {num_envs} envs; use fewer envs or more episodes")
        shards = [eps[i::num_envs] for i in range(num_envs)]

    def factory(shard):
        def make():
            import avworld  # noqa: F401  (registers the ids inside worker processes)

            if asynchronous:
                # a terminal's Ctrl-C, and the SIGTERM of torchrun, Slurm or `timeout`, reach the whole
                # process group: the workers leave them to the trainer, which finishes its update,
                # checkpoints and then closes them (they also exit when its end of the pipe closes)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return gym.make(env_id, episodes=shard, **env_kwargs)

        return make

    fns = [factory(s) for s in shards]
    return gym.vector.AsyncVectorEnv(fns, context="spawn") if asynchronous else gym.vector.SyncVectorEnv(fns)
