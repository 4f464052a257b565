"""Building a whole dataset, resumably: in this process, on a local process pool, or on Ray.

:func:`build_dataset` plans the shards (:mod:`avworld.data.plan`), keeps every shard the
manifest lists as done whose file still has the recorded size and SHA-256 (a shard
that fails the check is rebuilt), deletes temporary files of interrupted builds, and
builds the rest: ``workers <= 1`` in this process, ``workers > 1`` on a ``spawn``
process pool, ``ray_address`` as Ray tasks (:mod:`avworld.data.distributed`). The
manifest is rewritten after every finished shard, so an interrupted build (Ctrl-C, a
crash, a killed machine) loses at most the shards in progress. Shards are
deterministic, so a resumed build is byte-identical to an uninterrupted one. A folder that
holds shard files but no manifest (orphans: their checksums and config cannot be checked) is
refused unless ``rebuild=True``, which deletes them and builds from scratch.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avworld.data.config import DatasetConfig
from avworld.data.errors import CorruptShardError, DatasetConfigError, ManifestError, OrphanShardsError
from avworld.data.manifest import (
    compute_totals,
    load_manifest,
    manifest_path,
    new_manifest,
    orphan_shards,
    save_manifest,
)
from avworld.data.plan import ShardSpec
from avworld.data.shards import build_shard, verify_shard_file


@dataclass(frozen=True)
class BuildEvent:
    """A progress report of :func:`build_dataset`.

    ``kind``: ``plan`` (once: ``trajectories`` / ``shards`` to build now, ``frames`` = 0),
    ``skipped`` (a verified finished shard), ``rebuild`` (a finished shard failed its
    check and will be rebuilt; ``message`` says why), ``trajectory`` (one recorded
    trajectory of ``frames`` frames; Ray reports whole shards instead), ``shard`` (a
    shard finished and recorded in the manifest).
    """

    kind: str
    shard_id: str | None = None
    frames: int = 0
    trajectories: int = 0
    shards: int = 0
    message: str = ""


BuildProgress = Callable[[BuildEvent], None]


def _spec_of(rec: dict) -> ShardSpec:
    return ShardSpec(rec["id"], rec["path"], rec["split"], rec["scene_index"], rec["scene"],
                     tuple(rec["trajectories"]))


def _prepare(root: Path, config: DatasetConfig, verify: bool, emit: BuildProgress,
             rebuild: bool = False) -> tuple[dict, list[ShardSpec]]:
    """Load or create the manifest; check finished shards; return it and the shards to build."""
    orphans = [p for p in orphan_shards(root) if p.parent == root / "shards"]  # what a build would overwrite
    if orphans and not manifest_path(root).exists():
        if not rebuild:
            raise OrphanShardsError(
                f"refusing to build into {root}: it has no manifest.json but shards/ holds {len(orphans)} orphan "
                f"shard file(s) (e.g. {orphans[0].name}) whose checksums and configuration cannot be checked; rerun "
                "with --rebuild (build_dataset(..., rebuild=True)) to delete them and build the dataset there, "
                "choose another --out, or restore the manifest")
        for path in orphans:
            path.unlink()
            emit(BuildEvent("rebuild", path.stem, message=f"{path}: an orphan shard without a manifest, deleted"))
    if manifest_path(root).exists():
        manifest = load_manifest(root)
        if manifest["config_hash"] != config.config_hash():
            raise ManifestError(
                f"{root} holds a dataset built with another configuration (config hash "
                f"{manifest['config_hash']} vs {config.config_hash()}, preset {manifest.get('name')!r}); "
                "rerun with the same preset and options, or choose another --out"
            )
        manifest["name"] = config.name
    else:
        manifest = new_manifest(config)
    shard_dir = root / "shards"
    for tmp in shard_dir.glob("*.tmp-*") if shard_dir.exists() else ():
        tmp.unlink(missing_ok=True)  # left by an interrupted build: never used, always rebuilt
    todo = []
    for i, rec in enumerate(manifest["shards"]):
        path = root / rec["path"]
        if rec.get("status") == "done":
            try:
                if verify:
                    verify_shard_file(path, rec)
                elif not path.exists():
                    raise CorruptShardError(f"shard {path} is missing")
                emit(BuildEvent("skipped", rec["id"], frames=rec["stats"]["frames"],
                                trajectories=rec["stats"]["trajectories"]))
                continue
            except CorruptShardError as exc:
                emit(BuildEvent("rebuild", rec["id"], message=str(exc)))
        path.unlink(missing_ok=True)  # a file without a done record may predate a crash: rebuild it
        manifest["shards"][i] = {**_spec_of(rec).to_dict(), "status": "pending"}
        todo.append(_spec_of(rec))
    return manifest, todo


def build_dataset(root: str | Path, config: DatasetConfig, workers: int = 1, ray_address: str | None = None,
                  progress: BuildProgress | None = None, verify: bool = True, rebuild: bool = False) -> dict:
    """Build (or finish) the dataset ``config`` under ``root``; returns the final manifest.

    ``verify`` re-hashes finished shards before skipping them (set False to trust sizes).
    ``rebuild``: delete shard files that ``root`` holds without a manifest (otherwise
    :class:`~avworld.data.errors.OrphanShardsError`). Exceptions raised by ``progress`` abort
    the build like an interruption would (so does Ctrl-C: finished shards are kept).
    """
    if workers < 0:
        raise DatasetConfigError(f"workers must be >= 0, got {workers}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    emit = progress or (lambda event: None)
    manifest, todo = _prepare(root, config, verify, emit, rebuild)
    save_manifest(root, manifest)
    index = {rec["id"]: i for i, rec in enumerate(manifest["shards"])}
    emit(BuildEvent("plan", trajectories=sum(len(s.traj_indices) for s in todo), shards=len(todo)))

    def finished(record: dict) -> None:
        manifest["shards"][index[record["id"]]] = record
        manifest["totals"] = compute_totals(manifest)
        save_manifest(root, manifest)
        emit(BuildEvent("shard", record["id"], frames=record["stats"]["frames"],
                        trajectories=record["stats"]["trajectories"]))

    if todo:
        if ray_address is not None:
            from avworld.data.distributed import run_on_ray

            run_on_ray(todo, config, root, ray_address, finished)
        elif workers <= 1:
            def traj_done(shard_id: str, frames: int) -> None:
                emit(BuildEvent("trajectory", shard_id, frames=frames, trajectories=1))

            for spec in todo:
                finished(build_shard(spec, config, root, progress=traj_done))
        else:
            _run_pool(todo, config, root, workers, finished, emit)
    manifest["complete"] = all(s.get("status") == "done" for s in manifest["shards"])
    manifest["totals"] = compute_totals(manifest)
    save_manifest(root, manifest)
    return manifest


# ---------------------------------------------------------------------------- local process pool
_QUEUE = None


def _init_worker(q) -> None:
    global _QUEUE
    _QUEUE = q
    # Ctrl-C reaches the whole process group: the driver alone handles it (and terminates the
    # pool), so that workers print no traceback; their temporary files are deleted on resume.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_build(spec: ShardSpec, config: DatasetConfig, root: str) -> dict:
    return build_shard(spec, config, root, progress=lambda sid, n: _QUEUE.put((sid, n)))


def _run_pool(todo: list[ShardSpec], config: DatasetConfig, root: Path, workers: int,
              finished: Callable[[dict], None], emit: BuildProgress) -> None:
    """Build shards on ``workers`` spawned processes; per-trajectory progress comes back on a queue."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()

    def drain(timeout: float) -> None:
        try:
            while True:
                sid, n = q.get(timeout=timeout)
                emit(BuildEvent("trajectory", sid, frames=n, trajectories=1))
                timeout = 0.0
        except queue_mod.Empty:
            pass

    with ctx.Pool(min(workers, len(todo)), initializer=_init_worker, initargs=(q,)) as pool:
        pending = [pool.apply_async(_worker_build, (spec, config, str(root))) for spec in todo]
        while pending:
            drain(0.2)
            for res in [r for r in pending if r.ready()]:
                pending.remove(res)
                record = res.get()  # re-raises a worker's exception (the pool is then terminated)
                drain(0.0)
                finished(record)
