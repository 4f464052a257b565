"""Shards as Ray tasks on a local one-CPU Ray instance give the same bytes as local workers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from avworld.data.distributed import RayUnavailableError, run_on_ray
from avworld.data.generate import build_dataset
from avworld.data.manifest import load_manifest

from .conftest import tiny_config


def test_missing_ray_names_the_install_command(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(RayUnavailableError, match=r"pip install 'avworld\[ray\]'"):
        run_on_ray([], tiny_config(), tmp_path, "local", lambda rec: None)


def test_ray_build_equals_local_build(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = replace(tiny_config(image_size=32, max_frames=20, depth=False), trajectories_per_scene=1)
    local = build_dataset(tmp_path / "local", cfg)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        events = []
        remote = build_dataset(tmp_path / "ray", cfg, ray_address="local", progress=events.append)
    finally:
        ray.shutdown()
    assert remote["complete"]
    assert [s["sha256"] for s in remote["shards"]] == [s["sha256"] for s in local["shards"]]
    assert [e.kind for e in events].count("shard") == 3
    assert load_manifest(tmp_path / "ray")["totals"] == local["totals"]
