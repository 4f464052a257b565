"""A tiny AVW dataset built once per test session (3 scenes, 3 trajectories each, 2 shards per scene)."""

from __future__ import annotations

import pytest

from avworld.data.config import DatasetConfig, TrajectoryConfig
from avworld.data.generate import build_dataset


def tiny_config(**traj) -> DatasetConfig:
    """3 two-room houses, 3 trajectories per scene (one per pattern), 48x48 frames, <= 40 frames each."""
    t = {"image_size": 48, "max_frames": 40, "min_path_m": 1.0, "max_path_m": 3.0, "depth": True, **traj}
    return DatasetConfig(name="test-tiny", num_scenes=3, rooms=(2, 2), trajectories_per_scene=3,
                         trajectories_per_shard=2, seed=5, trajectory=TrajectoryConfig(**t))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """(root, manifest) of the session's tiny dataset (do not modify its files)."""
    root = tmp_path_factory.mktemp("avw") / "tiny"
    manifest = build_dataset(root, tiny_config(), workers=1)
    return root, manifest
