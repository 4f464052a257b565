"""Reading a dataset's latents per trajectory, as :class:`~avworld.data.reader.AVWDataset` reads frames.

:class:`AVWLatents` is an :class:`AVWDataset` (same trajectories, split, small arrays, info)
whose :meth:`~AVWLatents.frames` returns latents instead of pixels and audio. Opening it checks
that every shard of the split has latents encoded from the shard as it is now (the source
SHA-256) and of the recorded size (``verify="checksum"``: SHA-256); a missing split or shard
raises :class:`~avworld.data.latents.LatentsMissingError`, stale or altered files
:class:`~avworld.data.latents.StaleLatentsError`, both naming the encode command to run.
Every read checks the chunks' Fletcher-32: a damaged chunk raises
:class:`~avworld.data.errors.CorruptChunkError` naming the latent file, trajectory, field and frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from avworld.data.errors import CorruptChunkError
from avworld.data.latents import (
    FILE_FORMAT,
    LatentsMissingError,
    StaleLatentsError,
    encode_command,
    file_problem,
    latents_dir,
    load_latent_manifest,
)
from avworld.data.reader import AVWDataset
from avworld.data.storage import FrameReadError, frame_indices, read_frames


class AVWLatents(AVWDataset):
    """The latents ``name`` of the dataset at ``root``, split ``split`` (None: all).

    ``frames(i, "rgb"|"audio", sel)`` returns float32 latents (n, C, h, w) / (n, D, F) of
    trajectory ``i``; everything else (``trajectories``, ``small``, ``info``) is the dataset's.
    ``verify`` applies to the source shards and the latent files alike.
    """

    def __init__(self, root: str | Path, name: str, split: str | None = None, verify: str = "size") -> None:
        super().__init__(root, split=split, verify=verify)
        self.name = name
        self.latent_root = latents_dir(root, name)
        self._fix = f"run `{encode_command(root, name)}`"
        manifest = load_latent_manifest(root, name)
        if manifest is None:
            raise LatentsMissingError(f"{root} has no latents {name!r} ({self.latent_root} has no latents.json); "
                                      f"{self._fix} to encode them")
        self.latent_manifest = manifest
        self.fields = tuple(f for f in ("rgb", "audio") if f in manifest["fields"])
        self.latent_shapes = {f: tuple(manifest["fields"][f]["shape"]) for f in self.fields}
        records = {r["id"]: r for r in manifest["files"]}
        self.latent_records = []
        missing, stale = [], []
        for rec in self.shards:
            lat = records.get(rec["id"])
            problem = None if verify == "none" and lat is not None and lat.get("source_sha256") == rec["sha256"] \
                else file_problem(root, name, rec, lat, checksum=verify == "checksum")
            if problem is not None:
                (missing if lat is None or lat.get("status") != "done" else stale).append(problem)
            self.latent_records.append(lat)
        which = f"split {split!r}" if split is not None else "the dataset"
        if missing:
            raise LatentsMissingError(f"latents {name!r} of {root} do not cover {which}: {missing[0]}"
                                      f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; "
                                      f"{self._fix} (it encodes only what is missing)")
        if stale:
            raise StaleLatentsError(f"latents {name!r} of {root}: {stale[0]}"
                                    f"{f' (and {len(stale) - 1} more)' if len(stale) > 1 else ''}; {self._fix} "
                                    "(it re-encodes stale and damaged files and keeps the others)")
        self._lat_files: dict[int, object] = {}
        self._lat_pid = os.getpid()  # its own: AVWDataset._file may have reset self._pid already

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_lat_files"] = {}
        return state

    def _latent_file(self, shard: int):
        if self._lat_pid != os.getpid():  # a forked worker: never share HDF5 handles across processes
            self._lat_files, self._lat_pid = {}, os.getpid()
        f = self._lat_files.get(shard)
        if f is None:
            import h5py

            path = self.latent_root / self.latent_records[shard]["path"]
            try:
                f = h5py.File(path, "r")
            except OSError as exc:
                raise StaleLatentsError(f"latent file {path} cannot be read as HDF5 ({exc}); {self._fix}") from None
            source = self.shards[shard]["sha256"]
            ok = f.attrs.get("format") == FILE_FORMAT and bool(f.attrs.get("complete", False))
            if not ok or f.attrs.get("source_sha256") != source:
                f.close()
                raise StaleLatentsError(f"latent file {path} is not complete latents of shard "
                                        f"{self.shards[shard]['id']} as it is now (source sha256 {source[:16]}...); "
                                        f"{self._fix}")
            self._lat_files[shard] = f
        return f

    def close(self) -> None:
        super().close()
        for f in self._lat_files.values():
            try:
                f.close()
            except Exception:  # noqa: BLE001 - closing a handle of a dead file
                pass
        self._lat_files = {}

    def frames(self, i: int, name: str, sel) -> np.ndarray:
        """Latents ``sel`` (a slice, or increasing indices, within the trajectory) of field
        ``rgb`` (n, C, h, w) or ``audio`` (n, D, F) of trajectory ``i``, float32."""
        if name not in self.fields:
            raise LatentsMissingError(
                f"latents {self.name!r} hold {list(self.fields)}, not {name!r}; encode the fields you need under "
                f"another name (`{encode_command(self.root, self.name + '-av')}`)")
        ref = self.trajectories[i]
        rel = frame_indices(sel, ref.length)
        idx = slice(ref.start + rel.start, ref.start + rel.stop, rel.step) if isinstance(rel, range) \
            else ref.start + rel
        f = self._latent_file(ref.shard)
        try:
            data = read_frames(f[name], idx, direct=False)
        except (OSError, KeyError) as exc:
            path = self.latent_root / self.latent_records[ref.shard]["path"]
            frame = exc.frame - ref.start if isinstance(exc, FrameReadError) else None
            where = f", frame {frame}" if frame is not None else ""
            raise CorruptChunkError(
                f"latent file {path}, trajectory {i} (scene {ref.scene_index}, trajectory {ref.index} of the scene), "
                f"field {name!r}{where}: cannot read the stored latents ({exc}); {self._fix} (it re-encodes "
                "damaged files)", shard=str(path), trajectory=i, field=name, frame=frame) from None
        return data.astype(np.float32)
