"""Episodes sampled on the fly, from a per-scene pool that fills on first use.

An env without an episode file draws a scene, then one of ``episodes_per_scene`` episodes
of that scene: episode ``k`` of scene ``i`` (the env's ``scenes[i]``) is sampled with the
generator seeded by ``(seed, i, k)``, exactly as :func:`~avworld.tasks.episodes.make_episodes`
samples it, the first time it is drawn. Repeated episodes reuse what they computed the
first time (the goal's distance field, the source's ray trace, the start pose's RIRs, the
oracle's action count), which makes a warm reset several times cheaper than sampling a new
episode (see docs/benchmarks.md).

Pools belong to the shared world of a scene, so every env of a process that uses the world
shares them (episodes depend only on the scene, the sampling rules and the seed).
"""

from __future__ import annotations

import weakref

import numpy as np

from avworld.sim.world import SharedWorld
from avworld.tasks.episodes import AudioGoalEpisode, EpisodeConfig, sample_episode

#: world -> {(episode config, seed, scene index, k): episode}; freed with the world
_POOLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def pooled_episode(world: SharedWorld, spec: str, scene_index: int, k: int, config: EpisodeConfig,
                   seed: int) -> AudioGoalEpisode:
    """Episode ``k`` of the pool of scene ``spec`` (index ``scene_index`` of the env's scenes)."""
    pool = _POOLS.get(world)
    if pool is None:
        pool = _POOLS[world] = {}
    key = (config, int(seed), int(scene_index), int(k))
    ep = pool.get(key)
    if ep is None:
        ep = pool[key] = sample_episode(
            world.nav, spec, world.scene.content_hash, np.random.default_rng([int(seed), int(scene_index), int(k)]),
            config, f"{int(scene_index):04d}-{int(k):04d}",
            check_source=lambda p: world.engine.check_position(p, "source"),
        )
    return ep


def fresh_episode(world: SharedWorld, spec: str, rng: np.random.Generator, config: EpisodeConfig) -> AudioGoalEpisode:
    """A new episode drawn with ``rng`` (``episodes_per_scene=0``: every reset samples one)."""
    return sample_episode(world.nav, spec, world.scene.content_hash, rng, config,
                          f"sampled-{int(rng.integers(10**9)):09d}",
                          check_source=lambda p: world.engine.check_position(p, "source"))
