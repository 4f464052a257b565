"""Static separation dataset: contents match the ground truth, determinism, resume, reader, torch wrapper."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avworld.data.separation import (
    SeparationDataConfig,
    SeparationDataError,
    build_separation_dataset,
    plan_shards,
)
from avworld.data.separation_reader import SeparationData
from avworld.tasks.separation_episodes import sound_bank

TINY = SeparationDataConfig(scenes=(1, 1, 0), per_scene=(6, 3, 1), shard_size=4, poses_per_placement=2)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("sep")
    events = []
    m = build_separation_dataset(root, TINY, lambda e, d, t: events.append((d, t)))
    return root, m, events


def test_layout_manifest_and_progress(built):
    root, m, events = built
    assert m["complete"] and m["num_examples"] == {"train": 6, "val": 3, "test": 0}
    assert [s["num_examples"] for s in m["shards"]] == [4, 2, 3]
    assert json.loads((root / "manifest.json").read_text()) == m
    assert events[-1] == (9, 9) and [d for d, _ in events] == sorted(d for d, _ in events)
    assert len(m["source_types"]) == 122
    train, val = SeparationData(root, "train"), SeparationData(root, "val")
    assert len(train) == 6 and len(val) == 3
    with pytest.raises(IndexError):
        train[6]


def test_examples_are_consistent_ground_truth(built):
    root, _, _ = built
    data = SeparationData(root, "train")
    bank = sound_bank()
    for i in range(len(data)):
        ex = data[i]
        assert ex["mixture"].shape == (2, 16000) and ex["mixture"].dtype == np.float32
        assert ex["target_mono"].shape == (16000,)
        assert ex["num_sources"] == 2
        types = [data.source_types[t] for t in ex["source_types"] if t >= 0]
        assert len(set(types)) == 2 and data.source_types[ex["target_type"]] == types[0]
        # the target's mono is one second of one of its clips (some clip of the type, somewhere in it)
        name = types[0]
        seg = ex["target_mono"]
        found = False
        for c in range(25):
            clip = bank.clip(name, c)
            # the 1 ms offset grid: look for the first sample among the clip's samples
            cand = np.flatnonzero(clip == seg[0])
            if any(np.array_equal(clip[(k + np.arange(16000)) % len(clip)], seg) for k in cand):
                found = True
                break
        assert found, f"example {i}: target_mono is not a second of a {name} clip"
        # the target binaural is a part of the mixture: the rest (the distractor) is not the target
        rest = ex["mixture"] - ex["target_binaural"]
        assert np.abs(rest).max() > 0 and np.abs(ex["target_binaural"]).max() > 0
    b = data.batch([3, 0], ("mixture", "target_type"))
    np.testing.assert_array_equal(b["mixture"][1], data[0]["mixture"])


def test_same_config_same_bytes_and_resume(built, tmp_path):
    root, _, _ = built
    other = tmp_path / "again"
    build_separation_dataset(other, TINY)
    for job in plan_shards(TINY):
        a = SeparationData(root, job.split)[0]
        b = SeparationData(other, job.split)[0]
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    # a lost shard is rebuilt, the others are kept
    first, second = other / plan_shards(TINY)[0].relpath, other / plan_shards(TINY)[1].relpath
    mtime = second.stat().st_mtime_ns
    before = SeparationData(other, "train")[0]["mixture"]
    first.unlink()
    build_separation_dataset(other, TINY)
    assert second.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(SeparationData(other, "train")[0]["mixture"], before)
    with pytest.raises(SeparationDataError, match="another config"):
        build_separation_dataset(other, SeparationDataConfig(scenes=(1, 0, 0), per_scene=(2, 1, 1)))


def test_incomplete_and_foreign_datasets_are_refused(tmp_path):
    with pytest.raises(SeparationDataError, match="no manifest"):
        SeparationData(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "avworld-separation-static", "version": 1,
                                                         "complete": False, "shards": [], "source_types": []}))
    with pytest.raises(SeparationDataError, match="incomplete"):
        SeparationData(tmp_path)
    assert len(SeparationData(tmp_path, allow_incomplete=True)) == 0
    with pytest.raises(SeparationDataError, match="num_sources"):
        SeparationDataConfig(num_sources=(3, 2))


def test_torch_dataset(built):
    torch = pytest.importorskip("torch")
    from avworld.data.separation_torch import SeparationTorchDataset

    ds = SeparationTorchDataset(built[0], "val")
    ex = ds[1]
    assert ex["mixture"].dtype == torch.float32 and tuple(ex["mixture"].shape) == (2, 16000)
    assert ex["target_type"].dtype == torch.long and ex["target_type"].ndim == 0
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert tuple(batch["target_mono"].shape) == (3, 16000)


def test_batch_reads_across_shards_in_the_given_order(built):
    data = SeparationData(built[0], "train")
    order = [5, 0, 4, 0, 2]  # two shards (4 + 2), a repeat
    b = data.batch(order)
    for k, i in enumerate(order):
        for name, v in data[i].items():
            np.testing.assert_array_equal(b[name][k], v)
