"""Reading a built AVW dataset without torch: trajectories, frames, audio, poses.

:class:`AVWDataset` indexes the trajectories of a split from the manifest alone and
opens shard files lazily, once per process: the handles are dropped when the object is
pickled (e.g. into DataLoader workers) and reopened in the new process, so it is safe
with ``fork`` and ``spawn`` workers.

Integrity: every chunk of a shard written by this version carries a Fletcher-32 checksum
that is checked on every read, so a damaged chunk raises
:class:`~avworld.data.errors.CorruptChunkError` naming the shard, the trajectory, the field
and the frame instead of returning wrong data. Shards written before (shard version 1; their
manifest records lack ``chunk_checksums``) have no such checksums: they are re-hashed
(SHA-256 against the manifest) when first opened, so their damage is found at that read,
named by shard; with ``verify="none"`` they are read unchecked, with a warning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avworld.data.errors import CorruptChunkError, CorruptShardError, DataError
from avworld.data.manifest import config_of, load_manifest, require_complete
from avworld.data.plan import SPLITS
from avworld.data.shards import verify_shard_file
from avworld.data.storage import (
    CHUNK_CHECKSUM,
    FrameReadError,
    decode_audio,
    direct_readable,
    frame_indices,
    open_shard,
    read_frames,
)

CHUNKED_FIELDS = ("rgb", "depth", "audio")  # stored one chunk per frame

#: Small per-frame arrays, loaded whole per shard on first use.
SMALL_FIELDS = ("action", "pose", "reward", "geodesic_m", "success", "collided")
VERIFY_MODES = ("none", "size", "checksum")
_REBUILD = "delete it and rerun `avworld data make` with the same --out to rebuild it"


class UncheckedShardsWarning(UserWarning):
    """Shards without per-chunk checksums are read without any check (``verify="none"``)."""


@dataclass(frozen=True)
class TrajectoryRef:
    """Where trajectory ``index`` of scene ``scene_index`` lives: ``shard`` (position in
    :attr:`AVWDataset.shards`), frames ``start : start + length`` of that shard."""

    shard: int
    shard_id: str
    split: str
    scene_index: int
    index: int
    start: int
    length: int
    pattern: str


class AVWDataset:
    """The trajectories of one split (``split=None``: all) of the dataset at ``root``.

    ``verify``: ``size`` (default) checks every shard's file size against the manifest,
    ``checksum`` also its SHA-256 (reads every byte), ``none`` nothing. A shard that fails
    raises :class:`~avworld.data.errors.CorruptShardError` naming the file and the fix.
    Every read checks the chunks' checksums (a damaged one raises
    :class:`~avworld.data.errors.CorruptChunkError`); shards of older versions without them
    are re-hashed when first opened (see the module docstring).
    """

    def __init__(self, root: str | Path, split: str | None = None, verify: str = "size",
                 allow_incomplete: bool = False) -> None:
        if split is not None and split not in SPLITS:
            raise DataError(f"unknown split {split!r}; choose one of {SPLITS} (or None for all)")
        if verify not in VERIFY_MODES:
            raise DataError(f"unknown verify mode {verify!r}; choose one of {VERIFY_MODES}")
        self.root = Path(root)
        self.manifest = load_manifest(self.root)
        if not allow_incomplete:
            require_complete(self.manifest, self.root)
        self.config = config_of(self.manifest)
        self.split = split
        self.step_s = float(self.manifest["sim_config"]["step_s"])
        self.sample_rate_hz = int(self.manifest["sim_config"]["sample_rate_hz"])
        self.shards = [s for s in self.manifest["shards"]
                       if s.get("status") == "done" and (split is None or s["split"] == split)]
        #: shards whose whole file was hashed against the manifest (kept when pickled: no re-hash per worker)
        self._hashed: set[int] = set()
        for k, rec in enumerate(self.shards):
            path = self.root / rec["path"]
            if verify == "checksum":
                verify_shard_file(path, rec)
                self._hashed.add(k)
            elif verify == "size":
                verify_shard_file(path, rec, checksum=False)
        self.trajectories = [
            TrajectoryRef(k, rec["id"], rec["split"], rec["scene_index"], t["index"], t["start"], t["length"],
                          t["pattern"])
            for k, rec in enumerate(self.shards) for t in rec["table"]
        ]
        unchecked = [rec["id"] for rec in self.shards if not self._chunk_checked(rec)]
        self._rehash = verify != "none"
        if unchecked and not self._rehash:
            warnings.warn(f"{len(unchecked)} shard(s) of {self.root} (e.g. {unchecked[0]}) were written without "
                          "per-chunk checksums (avworld shard version 1) and verify='none' reads them unchecked: a "
                          "damaged chunk would be returned silently; use verify='size' (re-hash them when first "
                          "opened) or rebuild the dataset", UncheckedShardsWarning, stacklevel=2)
        self._files: dict[int, object] = {}
        self._dsets: dict[tuple[int, str], tuple] = {}
        self._small: dict[int, dict[str, np.ndarray]] = {}
        self._pid = os.getpid()

    @staticmethod
    def _chunk_checked(rec: dict) -> bool:
        return rec.get("chunk_checksums") == CHUNK_CHECKSUM

    @property
    def chunk_checksums(self) -> bool:
        """Whether every shard stores per-chunk checksums (False: some are re-hashed on first open)."""
        return all(self._chunk_checked(rec) for rec in self.shards)

    # ------------------------------------------------------------------ files
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"], state["_dsets"] = {}, {}
        return state

    def _file(self, shard: int):
        if self._pid != os.getpid():  # a forked worker: never share HDF5 handles across processes
            self._files, self._dsets, self._pid = {}, {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            rec = self.shards[shard]
            if self._rehash and shard not in self._hashed and not self._chunk_checked(rec):
                verify_shard_file(self.root / rec["path"], rec)  # no per-chunk checksums: hash it once
                self._hashed.add(shard)
            f = self._files[shard] = open_shard(self.root / rec["path"])
        return f

    def close(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing a handle of a dead file
                pass
        self._files, self._dsets = {}, {}

    def _dataset(self, shard: int, name: str):
        """The shard's dataset ``name`` and whether :func:`read_frames` inflates it itself (cached)."""
        f = self._file(shard)  # resets the caches in a forked worker; raises its own CorruptShardError
        key = (shard, name)
        hit = self._dsets.get(key)
        if hit is None:
            ds = f[name]
            hit = self._dsets[key] = (ds, name in CHUNKED_FIELDS and direct_readable(ds))
        return hit

    def _read(self, shard: int, name: str, sel, traj: int):
        """Field ``name`` of ``shard`` at ``sel``, read for trajectory ``traj`` (named in errors)."""
        try:
            ds, direct = self._dataset(shard, name)
            if name in CHUNKED_FIELDS:
                return read_frames(ds, sel, direct)
            return ds[sel]
        except (OSError, KeyError) as exc:
            path = self.root / self.shards[shard]["path"]
            ref = self.trajectories[traj]
            frame = exc.frame - ref.start if isinstance(exc, FrameReadError) else None
            where = f", frame {frame}" if frame is not None else ""
            # frame fields are read per trajectory; the small ones whole per shard, so the damage may lie
            # in any trajectory's rows of that shard
            whose = (f"trajectory {traj} (scene {ref.scene_index}, trajectory {ref.index} of the scene)"
                     if name in CHUNKED_FIELDS else f"read whole for the shard while loading trajectory {traj}")
            raise CorruptChunkError(
                f"shard {path}, {whose}, "
                f"field {name!r}{where}: cannot read the stored data ({exc}); {_REBUILD}",
                shard=str(path), trajectory=traj, field=name, frame=frame) from None
        except CorruptShardError as exc:  # the shard failed its check when first opened
            raise type(exc)(f"{exc} (found when reading field {name!r} of trajectory {traj})") from None

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self.trajectories)

    @property
    def num_frames(self) -> int:
        return sum(t.length for t in self.trajectories)

    def small(self, i: int) -> dict[str, np.ndarray]:
        """``action``, ``pose``, ``reward``, ``geodesic_m``, ``success``, ``collided`` of trajectory ``i``."""
        ref = self.trajectories[i]
        arrays = self._small.get(ref.shard)
        if arrays is None:
            arrays = self._small[ref.shard] = {k: self._read(ref.shard, k, slice(None), i) for k in SMALL_FIELDS}
        return {k: v[ref.start:ref.start + ref.length] for k, v in arrays.items()}

    def frames(self, i: int, name: str, sel) -> np.ndarray:
        """Frames ``sel`` (a slice, or increasing indices, within the trajectory) of ``rgb``,
        ``depth`` (float32 metres) or ``audio`` (float32, decoded) of trajectory ``i``."""
        ref = self.trajectories[i]
        rel = frame_indices(sel, ref.length)  # DataError for steps < 1, masks, unsorted indices
        if isinstance(rel, range):
            idx = slice(ref.start + rel.start, ref.start + rel.stop, rel.step)
        else:
            idx = ref.start + rel
        if name == "depth" and not self.config.trajectory.depth:
            raise DataError("this dataset has no depth; build it with TrajectoryConfig(depth=True) (--depth)")
        data = self._read(ref.shard, name, idx, i)
        if name == "audio":
            t = self.config.trajectory
            return decode_audio(data, t.audio_format, t.audio_full_scale)
        if name == "depth":
            return data.astype(np.float32)
        return data

    def trajectory(self, i: int, fields=("rgb", "audio")) -> dict[str, np.ndarray]:
        """All frames of trajectory ``i``: the small arrays plus the requested frame ``fields``."""
        out = self.small(i)
        for name in fields:
            out[name] = self.frames(i, name, slice(None))
        return out

    def info(self, i: int) -> dict:
        """Per-trajectory metadata: scene, source, pattern, start pose, goal, seeds."""
        ref = self.trajectories[i]
        rec = self.shards[ref.shard]
        k = [t["index"] for t in rec["table"]].index(ref.index)
        meta = {name: self._read(ref.shard, f"traj/{name}", k, i) for name in
                ("start_pose", "goal_xy", "start_offset_s", "reset_seed", "attempts", "level_dbfs")}
        meta = {n: (v.tolist() if isinstance(v, np.ndarray) else v.item()) for n, v in meta.items()}
        return {"scene": rec["scene"], "scene_index": ref.scene_index, "split": ref.split, "shard": ref.shard_id,
                "traj_index": ref.index, "pattern": ref.pattern, "frames": ref.length,
                "source_position": rec["source_position"], **meta}
