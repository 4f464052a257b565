"""The plan of a dataset: its scenes, the scene split, the shards and every seed.

Everything here is a pure function of the :class:`~avworld.data.config.DatasetConfig`,
so the manifest (which records the plan) is enough to regenerate any trajectory:

* scene ``i`` is ``config.scenes[i]`` or ``house:scene_seed_base + i:ROOMS`` (rooms drawn
  from the house seed, as :func:`avworld.tasks.episodes.split_scenes` does);
* scenes are split train:val:test by ``split_ratio`` after a seeded permutation;
* scene ``i``'s source position is drawn with ``rng_for(seed, SOURCE, i)``, trajectory
  ``j`` of scene ``i`` with ``rng_for(seed, TRAJECTORY, i, j)``, and its simulator reset
  seed is :func:`reset_seed` ``(seed, i, j)``;
* shard ``{split}-s{i:04d}-p{k:02d}`` holds trajectories ``k * per_shard ...`` of scene ``i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from avworld.data.config import DatasetConfig

SPLITS = ("train", "val", "test")
#: Stream tags of :func:`rng_for` (so the streams of different purposes never coincide).
SOURCE, TRAJECTORY, RESET, SPLIT = 1, 2, 3, 4


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for ``(seed, *keys)`` (a NumPy SeedSequence entropy list)."""
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def reset_seed(seed: int, scene_index: int, traj_index: int) -> int:
    """The simulator ``reset(seed=...)`` of trajectory ``traj_index`` of scene ``scene_index``."""
    return int(np.random.SeedSequence([int(seed), RESET, int(scene_index), int(traj_index)]).generate_state(1)[0])


@dataclass(frozen=True)
class ShardSpec:
    """One unit of work: trajectories ``traj_indices`` of scene ``scene_index``."""

    shard_id: str
    path: str
    split: str
    scene_index: int
    scene: str
    traj_indices: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"id": self.shard_id, "path": self.path, "split": self.split, "scene_index": self.scene_index,
                "scene": self.scene, "trajectories": list(self.traj_indices)}


def scene_specs(config: DatasetConfig) -> list[str]:
    """The scene spec of every scene index."""
    if config.scenes:
        return list(config.scenes)
    from avworld.geometry.spec import house_spec

    lo, hi = config.rooms
    specs = []
    for i in range(config.num_scenes):
        house_seed = config.scene_seed_base + i
        rooms = lo + int(np.random.default_rng(house_seed).integers(hi - lo + 1))
        specs.append(house_spec(house_seed, rooms))
    return specs


def split_counts(n: int, ratio: tuple[int, int, int]) -> tuple[int, int, int]:
    """Scenes per split for ``n`` scenes: val and test get round(n * share), at least one each."""
    total = sum(ratio)
    n_val = max(1, round(n * ratio[1] / total))
    n_test = max(1, round(n * ratio[2] / total))
    return n - n_val - n_test, n_val, n_test


def scene_splits(config: DatasetConfig) -> dict[str, list[int]]:
    """Scene indices of each split (disjoint, sorted)."""
    n = config.num_scene_total
    n_train, n_val, _ = split_counts(n, config.split_ratio)
    perm = rng_for(config.seed, SPLIT).permutation(n)
    parts = (perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:])
    return {name: sorted(int(i) for i in part) for name, part in zip(SPLITS, parts)}


def shard_specs(config: DatasetConfig) -> list[ShardSpec]:
    """Every shard of the dataset, ordered by scene index then part."""
    specs = scene_specs(config)
    split_of = {i: name for name, idx in scene_splits(config).items() for i in idx}
    per = config.trajectories_per_shard
    shards = []
    for i, spec in enumerate(specs):
        for k in range(math.ceil(config.trajectories_per_scene / per)):
            trajs = tuple(range(k * per, min((k + 1) * per, config.trajectories_per_scene)))
            sid = f"{split_of[i]}-s{i:04d}-p{k:02d}"
            shards.append(ShardSpec(sid, f"shards/{sid}.h5", split_of[i], i, spec, trajs))
    return shards
