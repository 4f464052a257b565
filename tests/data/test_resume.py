"""Interrupted and corrupted builds: resumed builds are byte-identical; damage is detected."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from dataclasses import replace

import pytest

from avworld.data.errors import CorruptShardError, IncompleteDatasetError, ManifestError
from avworld.data.generate import build_dataset
from avworld.data.inspection import dataset_info
from avworld.data.manifest import load_manifest
from avworld.data.reader import AVWDataset
from avworld.data.storage import file_sha256

from .conftest import tiny_config


def _checksums(root) -> dict[str, str]:
    """Manifest checksums, after checking that every file matches them."""
    m = load_manifest(root)
    out = {}
    for rec in m["shards"]:
        assert rec["status"] == "done"
        assert file_sha256(root / rec["path"]) == rec["sha256"]
        out[rec["id"]] = rec["sha256"]
    return out


class Stop(Exception):
    pass


def test_interrupted_build_resumes_to_an_identical_dataset(tiny_dataset, tmp_path):
    ref_root, _ = tiny_dataset
    root = tmp_path / "d"
    seen = []

    def stop_mid_shard(ev):
        seen.append(ev)
        if sum(e.kind == "trajectory" for e in seen) == 4:  # the first trajectory of the third shard
            raise Stop

    with pytest.raises(Stop):
        build_dataset(root, tiny_config(), progress=stop_mid_shard)
    m = load_manifest(root)
    assert [s["status"] for s in m["shards"]].count("done") == 2 and not m["complete"]
    assert not (root / m["shards"][2]["path"]).exists()  # the interrupted shard never got its final name
    with pytest.raises(IncompleteDatasetError, match="rerun `avworld data make`"):
        AVWDataset(root)
    assert len(AVWDataset(root, allow_incomplete=True).shards) == 2

    events = []
    build_dataset(root, tiny_config(), progress=events.append)
    assert [e.kind for e in events].count("skipped") == 2
    assert next(e for e in events if e.kind == "plan").shards == 4
    assert _checksums(root) == _checksums(ref_root)


_KILLED_BUILD = """
import json, sys, time
from avworld.data.config import DatasetConfig
from avworld.data.generate import build_dataset
n = [0]
def on_event(ev):
    if ev.kind == "trajectory":
        n[0] += 1
        if n[0] == 4:  # mid-way through the third shard: its temporary file is open
            print("KILL ME", flush=True)
            time.sleep(60)
build_dataset(sys.argv[1], DatasetConfig.from_dict(json.loads(sys.argv[2])), progress=on_event)
"""


def test_killed_build_leaves_only_a_temporary_file_and_resumes_identically(tiny_dataset, tmp_path):
    ref_root, _ = tiny_dataset
    root = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(root), json.dumps(tiny_config().to_dict())],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "KILL ME"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    temps = list((root / "shards").glob("*.tmp-*"))
    assert len(temps) == 1  # the half-written shard
    build_dataset(root, tiny_config())
    assert not list((root / "shards").glob("*.tmp-*"))
    assert _checksums(root) == _checksums(ref_root)


def test_process_pool_build_equals_in_process_build(tmp_path):
    cfg = replace(tiny_config(image_size=32, max_frames=20, depth=False), trajectories_per_scene=1)
    one = build_dataset(tmp_path / "one", cfg, workers=1)
    events = []
    two = build_dataset(tmp_path / "two", cfg, workers=2, progress=events.append)
    assert [s["sha256"] for s in two["shards"]] == [s["sha256"] for s in one["shards"]]
    assert [e.kind for e in events].count("trajectory") == 3  # per-trajectory progress from the workers


def _copy(tiny_dataset, tmp_path):
    src, m = tiny_dataset
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    return dst, m


def test_corrupt_shard_is_detected_by_checksum_and_rebuilt(tiny_dataset, tmp_path):
    root, m = _copy(tiny_dataset, tmp_path)
    rec = m["shards"][3]
    path = root / rec["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit-pattern in the middle of the file
    path.write_bytes(bytes(data))
    AVWDataset(root)  # the cheap size check cannot see it ...
    with pytest.raises(CorruptShardError, match=rf"{rec['id']}\.h5 fails its checksum.*avworld data make"):
        AVWDataset(root, verify="checksum")  # ... the checksum can
    assert dataset_info(root)["bad_shards"] == []  # sizes only
    assert [(b["id"], b["problem"][:19]) for b in dataset_info(root, verify=True)["bad_shards"]] == [
        (rec["id"], "fails its checksum ")]
    events = []
    build_dataset(root, tiny_config(), progress=events.append)
    assert [e.shard_id for e in events if e.kind == "rebuild"] == [rec["id"]]
    assert file_sha256(path) == rec["sha256"]


def test_truncated_or_garbage_shard_gives_a_clear_error(tiny_dataset, tmp_path):
    root, m = _copy(tiny_dataset, tmp_path)
    path = root / m["shards"][0]["path"]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptShardError, match=r"has 1000 bytes.*truncated.*rerun `avworld data make`"):
        AVWDataset(root)
    path.write_bytes(b"\0" * m["shards"][0]["bytes"])
    data = AVWDataset(root, verify="none")
    i = next(k for k, t in enumerate(data.trajectories) if t.shard == 0)
    with pytest.raises(CorruptShardError, match=r"cannot be read as HDF5.*rebuild") as err:
        data.frames(i, "rgb", slice(0, 1))
    assert "cannot read 'rgb'" not in str(err.value)  # the opener's own error, not wrapped again
    shutil.rmtree(root / "shards")
    with pytest.raises(CorruptShardError, match="is missing"):
        AVWDataset(root)


def test_other_config_in_the_same_directory_is_refused(tiny_dataset):
    root, _ = tiny_dataset
    before = (root / "manifest.json").read_text()
    with pytest.raises(ManifestError, match="another configuration"):
        build_dataset(root, replace(tiny_config(), seed=6))
    assert (root / "manifest.json").read_text() == before


def test_not_a_dataset(tmp_path):
    with pytest.raises(ManifestError, match="not an AVW dataset"):
        AVWDataset(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(ManifestError, match="not valid JSON"):
        AVWDataset(tmp_path)
