"""Running shards as Ray tasks (``avworld data make --ray ADDRESS``; needs ``pip install 'avworld[ray]'``).

Each shard is one task (``num_cpus=1``) running
:func:`~avworld.data.shards.build_shard_bytes` on any node: it builds the shard in a
private temporary directory and returns its manifest record and file bytes through the
object store (a shard is ~10-200 MB), so the cluster needs no shared file system and
every node only needs avworld installed. The driver writes each returned shard
atomically, checks its SHA-256 against the record and updates the manifest.

``ADDRESS``: ``local`` starts a private local Ray instance; ``auto`` joins the cluster
this machine belongs to; ``ray://HOST:10001`` connects a Ray client. If Ray is already
initialized in this process (e.g. ``ray.init(num_cpus=1)`` in a test) it is used as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from avworld.data.config import DatasetConfig
from avworld.data.errors import CorruptShardError, DataError
from avworld.data.plan import ShardSpec
from avworld.data.shards import build_shard_bytes
from avworld.data.storage import file_sha256


class RayUnavailableError(DataError):
    """Ray is not installed or the cluster cannot be reached."""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "--ray needs Ray: install it with `pip install 'avworld[ray]'` (or `pip install ray`), "
            "or drop --ray to use local worker processes (--workers N)"
        ) from None
    return ray


def write_shard_bytes(root: Path, record: dict, data: bytes) -> None:
    """Write a shard returned by a task: temporary name, checksum check, atomic rename."""
    final = root / record["path"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    sha = file_sha256(tmp)
    if sha != record["sha256"]:
        tmp.unlink(missing_ok=True)
        raise CorruptShardError(f"shard {record['id']} arrived damaged from its Ray task (checksum mismatch); "
                                "rerun the same command to rebuild it")
    os.replace(tmp, final)


def run_on_ray(todo: list[ShardSpec], config: DatasetConfig, root: Path, address: str,
               finished: Callable[[dict], None]) -> None:
    """Build ``todo`` as Ray tasks; ``finished(record)`` is called in the driver per shard."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "local" else address, include_dashboard=False,
                     log_to_driver=False)
        except Exception as exc:  # ConnectionError and Ray's own errors
            raise RayUnavailableError(f"cannot connect to Ray at {address!r} ({exc}); start the cluster "
                                      "(`ray start --head`) or use --ray local") from None
        started = True
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(build_shard_bytes)
        pending = [task.remote(spec, config) for spec in todo]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            record, data = ray.get(done[0])
            write_shard_bytes(root, record, data)
            finished(record)
    finally:
        if started:
            ray.shutdown()
