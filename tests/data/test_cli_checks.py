"""`avworld data info` checks every shard, folders of orphan shards, and Ctrl-C on `data make`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from avworld.cli import main
from avworld.data.errors import OrphanShardsError
from avworld.data.generate import build_dataset
from avworld.data.manifest import load_manifest
from avworld.data.reader import AVWDataset

from .conftest import tiny_config


def _copy(tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    return root, load_manifest(root)


def _flip(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_info_checks_every_shards_size_by_default(tiny_dataset, tmp_path, capsys):
    root, m = _copy(tiny_dataset, tmp_path)
    missing, short = m["shards"][1], m["shards"][4]
    (root / missing["path"]).unlink()
    (root / short["path"]).write_bytes((root / short["path"]).read_bytes()[:500])
    assert main(["data", "info", str(root)]) == 2
    cap = capsys.readouterr()
    assert f"BAD shard {root / missing['path']} is missing" in cap.out
    assert f"BAD shard {root / short['path']} has 500 bytes" in cap.out
    assert "2 of 6 shards BAD" in cap.out
    assert "CorruptShardError" in cap.err and missing["id"] in cap.err and short["id"] in cap.err
    assert "rerun `avworld data make` with the same --out" in cap.err


def test_info_verify_lists_every_bad_shard(tiny_dataset, tmp_path, capsys):
    root, m = _copy(tiny_dataset, tmp_path)
    bad = [m["shards"][0], m["shards"][3], m["shards"][5]]
    for rec in bad:
        _flip(root / rec["path"])  # same size: only the hash sees it
    assert main(["data", "info", str(root)]) == 0
    assert "sizes match; SHA-256 not checked (use --verify)" in capsys.readouterr().out
    assert main(["data", "info", str(root), "--verify", "--json"]) == 2
    cap = capsys.readouterr()
    info = json.loads(cap.out)
    assert [b["id"] for b in info["bad_shards"]] == [rec["id"] for rec in bad]
    assert all("fails its checksum" in b["problem"] for b in info["bad_shards"])
    assert all(rec["id"] in cap.err for rec in bad)


def test_info_of_a_clean_dataset_reports_the_checks(tiny_dataset, capsys):
    assert main(["data", "info", str(tiny_dataset[0]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["bad_shards"] == [] and info["unlisted_shard_files"] == []
    assert info["chunk_checksums"] == "fletcher32 on every shard"


def test_a_shard_folder_without_manifest_is_reported_with_its_orphans(tiny_dataset, tmp_path, capsys):
    root, _ = _copy(tiny_dataset, tmp_path)
    (root / "manifest.json").unlink()
    assert main(["data", "info", str(root)]) == 2
    err = capsys.readouterr().err
    assert "OrphanShardsError" in err and "not an AVW dataset" not in err
    assert "no manifest.json but shards/ holds 6 orphan shard file(s)" in err and "--rebuild" in err
    with pytest.raises(OrphanShardsError, match="6 orphan shard"):
        AVWDataset(root)
    assert main(["data", "info", str(tiny_dataset[0] / "shards")]) == 2  # the shards/ folder of a dataset
    assert f"shards/ folder of the dataset {tiny_dataset[0]}; pass that folder instead" in capsys.readouterr().err


def test_make_into_orphan_shards_refuses_unless_rebuild(tiny_dataset, tmp_path, capsys):
    root, m = _copy(tiny_dataset, tmp_path)
    (root / "manifest.json").unlink()
    assert main(["data", "make", "--preset", "avw-tiny", "--out", str(root)]) == 2
    err = capsys.readouterr().err
    assert "OrphanShardsError: refusing to build into" in err and "6 orphan shard" in err and "--rebuild" in err
    assert not (root / "manifest.json").exists() and len(list((root / "shards").glob("*.h5"))) == 6
    with pytest.raises(OrphanShardsError, match="rebuild=True"):
        build_dataset(root, tiny_config())
    stray = root / "shards" / "train-s0099-p00.h5"  # not part of this config: deleted too
    shutil.copy(root / m["shards"][0]["path"], stray)
    events = []
    rebuilt = build_dataset(root, tiny_config(), rebuild=True, progress=events.append)
    assert not stray.exists()
    assert sum(e.kind == "rebuild" for e in events) == 7
    assert [s["sha256"] for s in rebuilt["shards"]] == [s["sha256"] for s in m["shards"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_on_data_make_prints_one_line_and_keeps_the_finished_shards(tmp_path, workers):
    out = tmp_path / "d"
    # 8 houses x 2 trajectories = 6 shards of 3: shards still to build when the first one is done, even
    # with 2 workers on a loaded machine (with 2 shards both could finish between the check and the signal)
    args = ["data", "make", "--preset", "avw-tiny", "--out", str(out), "--scenes", "8", "--per-scene", "2",
            "--size", "32", "--workers", str(workers)]
    proc = subprocess.Popen([sys.executable, "-m", "avworld.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    done = []
    deadline = time.monotonic() + 300
    while not done and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            m = load_manifest(out)
        except (ValueError, OSError):
            continue
        done = [s for s in m["shards"] if s.get("status") == "done"]
    assert done and proc.poll() is None, "the build finished (or never started) before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr + stdout
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted; rerun the same command to resume" in lines[0], stderr
    kept = {s["id"]: s["sha256"] for s in load_manifest(out)["shards"] if s.get("status") == "done"}
    assert len(kept) >= len(done)

    assert main(args) == 0  # resumes: the kept shards are verified and skipped, the rest built
    final = load_manifest(out)
    assert final["complete"] and not list((out / "shards").glob("*.tmp-*"))
    assert all(s["sha256"] == kept[s["id"]] for s in final["shards"] if s["id"] in kept)
