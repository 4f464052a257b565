"""Building one shard: load the scene, place its source, record trajectories, write HDF5.

A shard is written to ``<final>.tmp-<pid>`` and renamed to its final name only after it
is complete and closed (an atomic ``os.replace``), so a final name always holds a whole
shard; an interrupted build leaves at most a temporary file, which the next build
deletes and redoes. The same :class:`ShardSpec` and config always give the same bytes.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avworld.data.config import PATTERNS, DatasetConfig
from avworld.data.errors import TrajectorySamplingError
from avworld.data.patterns import pattern_of, place_source, plan_trajectory
from avworld.data.plan import SOURCE, TRAJECTORY, ShardSpec, reset_seed, rng_for
from avworld.data.rollout import level_dbfs, record_trajectory
from avworld.data.storage import CHUNK_CHECKSUM, SHARD_FORMAT, SHARD_VERSION, ShardWriter, file_sha256

#: progress(shard_id, frames_of_the_trajectory_just_recorded)
ShardProgress = Callable[[str, int], None]


@functools.lru_cache(maxsize=4)
def _sound_bank(sample_rate_hz: int, seed: int):
    """One sound bank per process and (rate, seed): building one takes ~80 ms, and its clips are
    a function of (sound, index) alone, so every scene of a worker can share it (and its clip cache)."""
    from avworld.sounds import SoundBank

    return SoundBank(sample_rate_hz=sample_rate_hz, seed=seed)


class SceneRecorder:
    """Everything needed to record trajectories in one scene: world, sound bank, source."""

    def __init__(self, config: DatasetConfig, scene_index: int, scene_spec: str) -> None:
        from avworld.geometry.spec import load_scene_spec
        from avworld.sim.world import SharedWorld

        self.config = config
        self.tcfg = config.trajectory
        self.scene_index = int(scene_index)
        self.scene_spec = scene_spec
        sim_cfg = self.tcfg.sim_config()
        self.world = SharedWorld(load_scene_spec(scene_spec), sim_cfg)
        # the bank a Simulator builds by default, so a replay without a bank hears the same clip
        self.bank = _sound_bank(sim_cfg.sample_rate_hz, sim_cfg.seed)
        self.source = place_source(self.world, self.tcfg, rng_for(config.seed, SOURCE, scene_index))
        clip = self.bank.clip(self.tcfg.sound, 0)
        self.sound_period_s = len(clip) / sim_cfg.sample_rate_hz

    def record(self, traj_index: int) -> tuple[dict, dict]:
        """Record trajectory ``traj_index``: per-frame arrays and per-trajectory metadata."""
        cfg = self.tcfg
        rng = rng_for(self.config.seed, TRAJECTORY, self.scene_index, traj_index)
        pattern = pattern_of(cfg, self.scene_index + traj_index)
        seed = reset_seed(self.config.seed, self.scene_index, traj_index)
        attempts = 0
        for _ in range(cfg.max_tries):
            try:
                plan = plan_trajectory(self.world, self.source[:2], cfg, rng, pattern, self.sound_period_s)
            except TrajectorySamplingError as exc:
                raise TrajectorySamplingError(f"scene {self.scene_spec}, trajectory {traj_index}: {exc}") from None
            attempts += plan.attempts
            rec = record_trajectory(self.world, plan, self.source, cfg, seed, self.bank)
            level = level_dbfs(rec["audio"])
            if level >= cfg.min_level_dbfs:
                meta = {"index": traj_index, "pattern": PATTERNS.index(pattern), "start_pose": plan.start_pose,
                        "goal_xy": plan.goal_xy, "start_offset_s": plan.start_offset_s, "reset_seed": seed,
                        "attempts": attempts, "level_dbfs": level}
                return rec, meta
        raise TrajectorySamplingError(
            f"scene {self.scene_spec}: every recording of trajectory {traj_index} was quieter than "
            f"min_level_dbfs={cfg.min_level_dbfs}; lower it or TrajectoryConfig.max_source_distance_m"
        )


def _stats(lengths: list[int], patterns: list[int], levels: list[float], rewards: list[float],
           success: int, collided: int, step_s: float) -> dict:
    n = sum(lengths)
    return {
        "trajectories": len(lengths),
        "frames": n,
        "hours": n * step_s / 3600.0,
        "length_mean": float(np.mean(lengths)) if lengths else 0.0,
        "length_min": int(min(lengths)) if lengths else 0,
        "length_max": int(max(lengths)) if lengths else 0,
        "patterns": {p: patterns.count(k) for k, p in enumerate(PATTERNS)},
        "level_dbfs_mean": float(np.mean(levels)) if levels else float("nan"),
        "return_mean": float(np.mean(rewards)) if rewards else 0.0,
        "success_frames": int(success),
        "collided_frames": int(collided),
    }


def build_shard(spec: ShardSpec, config: DatasetConfig, root: str | Path, progress: ShardProgress | None = None,
                final_path: str | Path | None = None) -> dict:
    """Build ``spec`` under ``root`` (at ``final_path`` if given); returns its manifest record
    (id, path, sha256, bytes, trajectory table, statistics)."""
    root = Path(root)
    final = Path(final_path) if final_path is not None else root / spec.path
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    recorder = SceneRecorder(config, spec.scene_index, spec.scene)
    tcfg, sim_cfg = config.trajectory, recorder.world.config
    attrs = {
        "format": SHARD_FORMAT, "version": SHARD_VERSION, "shard_id": spec.shard_id, "split": spec.split,
        "scene": spec.scene, "scene_index": spec.scene_index, "scene_hash": recorder.world.scene.content_hash,
        "source_position": np.asarray(recorder.source, float), "sound": tcfg.sound,
        "sample_rate_hz": sim_cfg.sample_rate_hz, "step_s": sim_cfg.step_s, "audio_format": tcfg.audio_format,
        "audio_full_scale": tcfg.audio_full_scale, "config": json.dumps(config.to_dict(), sort_keys=True),
        "complete": False,
    }
    writer = ShardWriter(tmp, tcfg, attrs, sim_cfg.step_samples)
    lengths, patterns, levels, rewards, table = [], [], [], [], []
    success = collided = 0
    try:
        for j in spec.traj_indices:
            rec, meta = recorder.record(j)
            table.append({"index": j, "start": writer.num_frames, "length": len(rec["action"]),
                          "pattern": PATTERNS[meta["pattern"]]})
            writer.append(rec, meta)
            lengths.append(len(rec["action"]))
            patterns.append(meta["pattern"])
            levels.append(meta["level_dbfs"])
            rewards.append(float(rec["reward"].sum()))
            success += int(rec["success"].sum())
            collided += int(rec["collided"].sum())
            if progress is not None:
                progress(spec.shard_id, len(rec["action"]))
        clipped = writer.clipped_samples
        writer.finish()
        sha = file_sha256(tmp)
        os.replace(tmp, final)  # atomic: the final name only ever holds a whole shard
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    stats = _stats(lengths, patterns, levels, rewards, success, collided, sim_cfg.step_s)
    size = final.stat().st_size
    stats.update(bytes=size, bytes_per_frame=size / max(1, stats["frames"]), clipped_audio_samples=clipped)
    return {**spec.to_dict(), "status": "done", "sha256": sha, "bytes": size, "chunk_checksums": CHUNK_CHECKSUM,
            "scene_hash": attrs["scene_hash"], "source_position": recorder.source.tolist(),
            "table": table, "stats": stats}


def build_shard_bytes(spec: ShardSpec, config: DatasetConfig) -> tuple[dict, bytes]:
    """Build a shard in a private temporary directory and return (record, file bytes): what a
    Ray task sends back, so the cluster needs no shared file system."""
    with tempfile.TemporaryDirectory(prefix="avw-shard-") as tmp:
        path = Path(tmp) / "shard.h5"
        record = build_shard(spec, config, tmp, final_path=path)
        return record, path.read_bytes()


def shard_problem(path: str | Path, record: dict, checksum: bool = True) -> str | None:
    """What is wrong with the shard file ``path`` against its manifest ``record`` (missing,
    another size, with ``checksum`` another SHA-256), or None if nothing."""
    path = Path(path)
    if not path.exists():
        return "is missing"
    size = path.stat().st_size
    if size != record.get("bytes"):
        return f"has {size} bytes, the manifest says {record.get('bytes')} (truncated or modified)"
    if checksum:
        sha = file_sha256(path)
        if sha != record.get("sha256"):
            return (f"fails its checksum (sha256 {sha[:16]}..., manifest {str(record.get('sha256'))[:16]}...): "
                    "the file is corrupt or was modified")
    return None


def verify_shard_file(path: str | Path, record: dict, checksum: bool = True) -> None:
    """Raise :class:`~avworld.data.errors.CorruptShardError` unless ``path`` has the size
    and (with ``checksum``) the SHA-256 that ``record`` (a manifest entry) says."""
    from avworld.data.errors import CorruptShardError

    problem = shard_problem(path, record, checksum)
    if problem == "is missing":
        raise CorruptShardError(f"shard {path} is missing; rerun `avworld data make` with the same --out to rebuild it")
    if problem is not None:
        raise CorruptShardError(f"shard {path} {problem}; delete it and rerun `avworld data make` with the same "
                                "--out to rebuild it")
