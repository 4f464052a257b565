"""Dataset configuration, presets, the scene split and the shard plan."""

from __future__ import annotations

import pytest

from avworld.data.config import PRESETS, DatasetConfig, TrajectoryConfig, preset
from avworld.data.errors import DatasetConfigError
from avworld.data.plan import reset_seed, scene_specs, scene_splits, shard_specs, split_counts


@pytest.mark.parametrize("kwargs", [{"image_size": 8}, {"patterns": ("sideways",)}, {"max_frames": 501},
                                    {"reward": "money"}, {"audio_format": "int8"}, {"min_path_m": 5, "max_path_m": 4},
                                    {"compression_level": 10}, {"motion_preset": "teleport"}])
def test_trajectory_config_rejects_bad_values(kwargs):
    with pytest.raises(DatasetConfigError, match="TrajectoryConfig"):
        TrajectoryConfig(**kwargs)


def test_dataset_config_needs_three_scenes_and_valid_ratio():
    with pytest.raises(DatasetConfigError, match="at least 3 scenes"):
        DatasetConfig(num_scenes=2)
    with pytest.raises(DatasetConfigError, match="split_ratio"):
        DatasetConfig(split_ratio=(6, 0, 2))


def test_presets_and_overrides():
    assert set(PRESETS) == {"avw-tiny", "avw-small", "avw-4k"}
    big = PRESETS["avw-4k"]
    assert big.num_scenes == 76 and 4400 <= big.num_scenes * big.trajectories_per_scene <= 4600
    assert big.trajectory.image_size == 128 and big.trajectory.max_frames == 500
    cfg = preset("avw-tiny", seed=3, trajectory={"image_size": 32})
    assert cfg.seed == 3 and cfg.trajectory.image_size == 32 and cfg.trajectory.max_frames == 40
    with pytest.raises(DatasetConfigError, match="unknown dataset preset"):
        preset("avw-1m")


def test_config_round_trip_and_hash():
    cfg = preset("avw-small")
    again = DatasetConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    from dataclasses import replace

    assert replace(cfg, name="other").config_hash() == cfg.config_hash()  # the name changes no byte
    assert replace(cfg, seed=1).config_hash() != cfg.config_hash()
    with pytest.raises(DatasetConfigError, match="unknown DatasetConfig field"):
        DatasetConfig.from_dict({**cfg.to_dict(), "colour": 1})


def test_scene_split_is_6_1_2_disjoint_and_seeded():
    assert split_counts(76, (6, 1, 2)) == (51, 8, 17)
    assert split_counts(3, (6, 1, 2)) == (1, 1, 1)
    cfg = PRESETS["avw-4k"]
    splits = scene_splits(cfg)
    all_idx = splits["train"] + splits["val"] + splits["test"]
    assert sorted(all_idx) == list(range(76))  # every scene in exactly one split
    assert splits == scene_splits(cfg)
    from dataclasses import replace

    assert scene_splits(replace(cfg, seed=1)) != splits


def test_shard_plan_groups_trajectories_by_scene():
    cfg = DatasetConfig(num_scenes=4, trajectories_per_scene=5, trajectories_per_shard=2)
    shards = shard_specs(cfg)
    assert len(shards) == 4 * 3
    specs = scene_specs(cfg)
    for s in shards:
        assert s.scene == specs[s.scene_index] and s.shard_id.startswith(s.split)
        assert s.path == f"shards/{s.shard_id}.h5"
    per_scene = {}
    for s in shards:
        per_scene.setdefault(s.scene_index, []).extend(s.traj_indices)
    assert all(v == list(range(5)) for v in per_scene.values())
    assert reset_seed(0, 1, 2) == reset_seed(0, 1, 2) != reset_seed(0, 2, 1)


def test_explicit_scene_list():
    cfg = DatasetConfig(scenes=("house:7:2", "house:8:3", "house:9:2"))
    assert scene_specs(cfg) == ["house:7:2", "house:8:3", "house:9:2"]
