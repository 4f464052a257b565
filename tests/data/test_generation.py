"""Recorded trajectories: bit-exact replay, rewards, success flags, splits, the shard format."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from avworld.data.config import PATTERNS
from avworld.data.generate import build_dataset
from avworld.data.manifest import config_of
from avworld.data.reader import AVWDataset
from avworld.data.replay import replay_trajectory
from avworld.data.shards import SceneRecorder
from avworld.data.storage import quantize_audio
from avworld.geometry.spec import load_scene_spec
from avworld.sim.world import SharedWorld

from .conftest import tiny_config


def _worlds(data: AVWDataset) -> dict[str, SharedWorld]:
    cfg = data.config.trajectory.sim_config()
    return {s["scene"]: SharedWorld(load_scene_spec(s["scene"]), cfg) for s in data.shards}


def test_replaying_stored_actions_reproduces_frames_audio_and_poses_bit_for_bit(tiny_dataset):
    root, _ = tiny_dataset
    data = AVWDataset(root, verify="checksum")
    worlds = _worlds(data)  # fresh worlds: nothing cached from the build
    assert len(data) == 9
    for i in range(len(data)):
        stored = data.trajectory(i, fields=("rgb", "audio", "depth"))
        again = replay_trajectory(data, i, world=worlds[data.info(i)["scene"]])
        for name in ("rgb", "audio", "depth", "pose"):
            assert again[name].dtype == stored[name].dtype, name
            assert np.array_equal(again[name], stored[name]), f"trajectory {i}: {name} differs"
        assert stored["audio"].shape[1:] == (2, 2400)  # 0.15 s at 16 kHz, binaural
        assert np.abs(stored["audio"]).max() > 0  # never silent


def test_int16_audio_replays_bit_for_bit_after_quantization(tmp_path):
    cfg = tiny_config(audio_format="int16", audio_full_scale=0.5, depth=False, image_size=32, max_frames=20)
    from dataclasses import replace

    cfg = replace(cfg, trajectories_per_scene=1)
    build_dataset(tmp_path / "d", cfg)
    data = AVWDataset(tmp_path / "d", split="test")
    with h5py.File(tmp_path / "d" / data.shards[0]["path"]) as f:
        assert f["audio"].dtype == np.int16 and f["audio"].compression == "gzip"  # int16 audio compresses
        raw = f["audio"][:]
    stored = data.trajectory(0)
    assert np.array_equal(stored["audio"], raw.astype(np.float32) * np.float32(0.5 / 32767))
    again = replay_trajectory(data, 0)
    assert np.array_equal(again["audio"], stored["audio"]) and np.array_equal(again["rgb"], stored["rgb"])


def test_quantize_audio_documented_scaling():
    from avworld.data.config import TrajectoryConfig

    x = np.array([[0.25, -1.2, 1e-6]], np.float32)
    q16 = quantize_audio(x, TrajectoryConfig(audio_format="int16", audio_full_scale=1.0))
    assert np.allclose(q16, [[round(0.25 * 32767) / 32767, -1.0, 0.0]])
    qf = quantize_audio(x, TrajectoryConfig(audio_format="float16"))
    assert np.array_equal(qf, x.astype(np.float16).astype(np.float32))


def test_rewards_are_the_decrease_in_geodesic_distance_to_the_source(tiny_dataset):
    root, _ = tiny_dataset
    data = AVWDataset(root)
    worlds = _worlds(data)
    for i in range(len(data)):
        meta, arr = data.info(i), data.small(i)
        nav = worlds[meta["scene"]].nav
        field = nav.geodesic_field(nav.snap(np.asarray(meta["source_position"])[:2]))
        d = np.array([field.distance_at(p[:2]) for p in arr["pose"]])
        assert np.allclose(arr["geodesic_m"], d, atol=1e-9)
        assert np.array_equal(arr["reward"][:-1], (d[:-1] - d[1:]).astype(np.float32))
        assert arr["reward"][-1] == 0 and arr["action"][-1] == 0  # the final STOP
        assert np.array_equal(arr["success"], d <= data.config.trajectory.success_distance_m)
        if meta["pattern"] == "to_source":
            assert arr["success"][-1]


def test_trajectories_regenerate_from_the_manifest_seeds(tiny_dataset):
    root, manifest = tiny_dataset
    data = AVWDataset(root, split="val")
    ref = data.trajectories[1]
    recorder = SceneRecorder(config_of(manifest), ref.scene_index, data.info(1)["scene"])
    rec, meta = recorder.record(ref.index)
    stored = data.trajectory(1)
    assert np.array_equal(rec["rgb"], stored["rgb"]) and np.array_equal(rec["pose"], stored["pose"])
    assert np.array_equal(quantize_audio(rec["audio"], data.config.trajectory), stored["audio"])
    assert meta["reset_seed"] == data.info(1)["reset_seed"]


def test_splits_share_no_scene(tiny_dataset):
    root, manifest = tiny_dataset
    scenes = {s: {t.scene_index for t in AVWDataset(root, split=s).trajectories} for s in ("train", "val", "test")}
    assert scenes["train"] and scenes["val"] and scenes["test"]
    assert not (scenes["train"] & scenes["val"]) and not (scenes["train"] & scenes["test"])
    assert not (scenes["val"] & scenes["test"])
    for s in ("train", "val", "test"):
        assert scenes[s] == set(manifest["splits"][s])
    specs = {s: {manifest["scenes"][i]["spec"] for i in idx} for s, idx in manifest["splits"].items()}
    assert len(specs["train"] | specs["val"] | specs["test"]) == 3


def test_manifest_and_shard_format(tiny_dataset):
    root, m = tiny_dataset
    assert m["complete"] and len(m["shards"]) == 6 and all(s["status"] == "done" for s in m["shards"])
    assert m["software"]["isal"] and m["software"]["h5py"]  # what the chunks' bytes depend on
    tot = m["totals"]["all"]
    assert tot["trajectories"] == 9 and tot["patterns"] == {p: 3 for p in PATTERNS}
    assert tot["frames"] == sum(s["stats"]["frames"] for s in m["shards"])
    assert tot["hours"] == pytest.approx(tot["frames"] * 0.15 / 3600)
    rec = m["shards"][0]
    with h5py.File(root / rec["path"]) as f:
        assert f.attrs["format"] == "avworld-avw-shard" and f.attrs["complete"]
        assert f["rgb"].dtype == np.uint8 and f["rgb"].chunks == (1, 48, 48, 3)
        assert f["rgb"].compression == "gzip" and f["depth"].compression == "gzip"
        # float16 audio is stored uncompressed (gzip saves ~8 % of it for 0.2-0.3 ms per frame)
        assert f["audio"].compression is None and f["audio"].chunks == (1, 2, 2400)
        assert f["audio"].dtype == np.float16 and f["depth"].dtype == np.float16
        assert f["rgb"].shape[0] == f["action"].shape[0] == rec["stats"]["frames"]
        assert list(f["traj/length"][:]) == [t["length"] for t in rec["table"]]
        assert np.all(f["traj/level_dbfs"][:] >= -60.0)
    assert not list((root / "shards").glob("*.tmp-*"))
