"""The HDF5 shard format: layout, audio scaling, writing and safe opening.

A shard holds the trajectories of one scene, frames of all trajectories concatenated::

    attrs     format="avworld-avw-shard", version, shard_id, split, scene, scene_index,
              scene_hash, source_position (3,), sound, sample_rate_hz, step_s,
              audio_format, audio_full_scale, config (JSON), num_trajectories,
              num_frames, complete (set last)
    rgb       (F, H, W, 3) uint8          one chunk per frame, gzip (see deflate_chunk)
    depth     (F, H, W)    float16        metres (only with TrajectoryConfig.depth), one chunk per frame, gzip
    audio     (F, 2, n)    float16|int16  binaural, channel 0 = left; see decode_audio; one chunk per
                                          frame, gzip for int16 only (see compressed_field)
    action    (F,) uint8   pose (F, 3) float64 (x, y, yaw_rad)   reward (F,) float32
    geodesic_m (F,) float64   success (F,) bool   collided (F,) bool
    traj/start, traj/length, traj/index, traj/pattern, traj/start_pose (N, 3),
    traj/goal_xy (N, 2), traj/start_offset_s, traj/reset_seed, traj/attempts, traj/level_dbfs

Trajectory ``k`` owns frames ``traj/start[k] : traj/start[k] + traj/length[k]``.
Every dataset carries HDF5's Fletcher-32 checksum per chunk (version 2; version 1 shards
have none, see :class:`~avworld.data.reader.AVWDataset`), so a damaged chunk fails its read.
Audio scaling: ``float16`` stores the simulator's float32 samples as they are;
``int16`` stores ``round(clip(x / audio_full_scale, -1, 1) * 32767)``. Files are
written without timestamps, so the same content gives the same bytes (and checksum).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from avworld.data.checksum import strip_checksum, with_checksum
from avworld.data.config import INT16_MAX, TrajectoryConfig
from avworld.data.errors import CorruptShardError, DataError

SHARD_FORMAT = "avworld-avw-shard"
#: 2: every dataset has HDF5's fletcher32 filter (a checksum per chunk); 1: no checksums.
SHARD_VERSION = 2
#: What a manifest's shard record says about per-chunk checksums (absent: version 1 shards).
CHUNK_CHECKSUM = "fletcher32"
FRAME_FIELDS = ("rgb", "depth", "audio", "action", "pose", "reward", "geodesic_m", "success", "collided")
TRAJ_FIELDS = ("start", "length", "index", "pattern", "start_pose", "goal_xy", "start_offset_s", "reset_seed",
               "attempts", "level_dbfs")
#: Small per-frame arrays (written whole when the shard is finished) and their stored dtypes.
SMALL_DTYPES = {"action": np.uint8, "pose": np.float64, "reward": np.float32, "geodesic_m": np.float64,
                "success": bool, "collided": bool}
_REBUILD = "delete it and rerun `avworld data make` with the same --out to rebuild it"


def encode_audio(x: np.ndarray, audio_format: str, full_scale: float = 1.0) -> np.ndarray:
    """Float audio -> the stored dtype (see module docstring)."""
    x = np.asarray(x, dtype=np.float32)
    if audio_format == "float16":
        return x.astype(np.float16)
    if audio_format == "int16":
        return np.round(np.clip(x / np.float32(full_scale), -1.0, 1.0) * INT16_MAX).astype(np.int16)
    raise ValueError(f"unknown audio format {audio_format!r}")


def decode_audio(stored: np.ndarray, audio_format: str, full_scale: float = 1.0) -> np.ndarray:
    """Stored audio -> float32 samples."""
    if audio_format == "float16":
        return np.asarray(stored, dtype=np.float32)
    if audio_format == "int16":
        return np.asarray(stored, dtype=np.float32) * np.float32(full_scale / INT16_MAX)
    raise ValueError(f"unknown audio format {audio_format!r}")


def quantize_audio(x: np.ndarray, config: TrajectoryConfig) -> np.ndarray:
    """What reading back a stored recording returns: ``decode(encode(x))``."""
    return decode_audio(encode_audio(x, config.audio_format, config.audio_full_scale), config.audio_format,
                        config.audio_full_scale)


def compressed_field(name: str, config: TrajectoryConfig) -> bool:
    """Whether frame dataset ``name`` is stored gzip-compressed (at ``config.compression_level``).

    Images and depth are. float16 audio is not: reverberant audio's float16 samples are
    close to incompressible (gzip level 1 saves ~8 %, 0.8 kB of a 26 kB frame, and costs
    0.2-0.3 ms per frame, as much as rendering's shading); int16 audio is (it saves ~24 %).
    """
    if not config.compression_level:
        return False
    return name != "audio" or config.audio_format == "int16"


def deflate_chunk(data: bytes, level: int) -> bytes:
    """One chunk compressed for HDF5's gzip (deflate) filter: a zlib stream at ``level``.

    Levels 1-3 use ISA-L (the ``isal`` package) at the same level number: on 128x128 RGB
    frames its level 1 is 3.5x faster than zlib's (0.11 vs 0.39 ms per frame) for files ~2 %
    larger, and the gzip filter was the largest cost of writing a frame. HDF5 only writes
    with zlib, so :class:`ShardWriter` compresses chunks itself and writes them with
    ``write_direct_chunk``; any HDF5 reader inflates them as usual. Levels 4-9 use Python's
    zlib (the bytes of HDF5's own filter where both link the same zlib). Same input, same
    bytes for a given isal / zlib build; the manifest records the isal version.
    """
    if level <= 3:
        from isal import isal_zlib

        return isal_zlib.compress(data, level)
    import zlib

    return zlib.compress(data, level)


def _filters(ds) -> tuple[int, ...]:
    dcpl = ds.id.get_create_plist()
    return tuple(dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters()))


def direct_readable(ds) -> bool:
    """Whether :func:`read_frames` may inflate ``ds``'s chunks itself: one chunk per frame and
    deflate, optionally followed by fletcher32, as the filters (what :class:`ShardWriter`
    writes for compressed fields; version 1 shards have no fletcher32)."""
    import h5py

    if ds.chunks != (1, *ds.shape[1:]):
        return False
    z = h5py.h5z
    return _filters(ds) in ((z.FILTER_DEFLATE,), (z.FILTER_DEFLATE, z.FILTER_FLETCHER32))


def has_chunk_checksums(ds) -> bool:
    """Whether HDF5 stores a Fletcher-32 checksum with every chunk of ``ds``."""
    import h5py

    return h5py.h5z.FILTER_FLETCHER32 in _filters(ds)


class FrameReadError(OSError):
    """Frame ``frame`` (index in the shard) of a dataset cannot be read: its chunk fails its
    checksum, is missing, or does not inflate to a frame."""

    def __init__(self, frame: int, message: str) -> None:
        super().__init__(message)
        self.frame = int(frame)


def frame_indices(sel, num_frames: int):
    """A frame selection as increasing indices (a ``range`` for slices); :class:`DataError`
    for anything HDF5 would not read in order (steps < 1, scalars, masks, unsorted indices)."""
    if isinstance(sel, slice):
        if sel.step is not None and sel.step < 1:
            raise DataError(f"frame slices need a step >= 1, got {sel.step}; reverse the frames after reading")
        return range(*sel.indices(num_frames))
    idx = np.asarray(sel)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise DataError(f"select frames with a slice or a 1-D array of integer indices, got {idx.dtype} "
                        f"of shape {idx.shape}; use np.flatnonzero(mask) for a boolean mask")
    idx = idx.astype(np.int64)
    if idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0 or idx[-1] >= num_frames):
        raise DataError(f"frame indices must increase strictly within 0..{num_frames - 1}, got {idx.tolist()[:8]}"
                        f"{'...' if idx.size > 8 else ''}; use np.unique to sort them and drop repeats")
    return idx


def read_frames(ds, sel, direct: bool | None = None) -> np.ndarray:
    """``ds[sel]`` for a frame dataset (``sel`` a slice or increasing indices along axis 0,
    checked by :func:`frame_indices`).

    Datasets that are :func:`direct_readable` are read chunk by chunk with ``read_direct_chunk``
    and inflated by ISA-L: 0.11 ms per 128x128 RGB frame against 0.28-0.34 ms through h5py
    (zlib inside HDF5's filter pipeline), the same bytes. A damaged chunk is caught as HDF5 would
    catch it: a deflated chunk by the zlib stream's own Adler-32 of the inflated bytes (checked when
    inflating; the Fletcher-32 stored after it is left to HDF5's reads), a raw one by its Fletcher-32.
    Other datasets go through h5py, which checks them. ``direct``: the caller's cached
    :func:`direct_readable` (computed when None).
    A chunk that fails its checksum or cannot be read or inflated raises :class:`FrameReadError` (the
    frame; the reader turns it into :class:`~avworld.data.errors.CorruptChunkError`).
    """
    idx = frame_indices(sel, ds.shape[0])
    if not (direct_readable(ds) if direct is None else direct):
        try:
            return ds[sel]
        except OSError:
            for i in idx:  # find the damaged frame (each read raises only for a bad chunk)
                try:
                    ds[int(i):int(i) + 1]
                except OSError as exc:
                    what = "fails its Fletcher-32 checksum or " if has_chunk_checksums(ds) else ""
                    raise FrameReadError(i, f"frame {i} of {ds.name}: the chunk {what}cannot be decoded "
                                            f"(HDF5: {exc})") from None
            raise
    from isal import isal_zlib

    shape = ds.shape[1:]
    out = np.empty((len(idx), *shape), dtype=ds.dtype)
    nbytes = out[0:1].nbytes
    zeros = (0,) * len(shape)
    read = ds.id.read_direct_chunk
    checked = len(_filters(ds)) == 2  # deflate + fletcher32 (direct_readable)
    for k, i in enumerate(idx):
        try:
            mask, chunk = read((int(i), *zeros))
            fletcher = checked and not mask & 2  # bit 1 set: fletcher32 was skipped for this chunk
            if mask & 1:  # bit 0 set: deflate was skipped, the chunk is the raw frame
                if fletcher:
                    chunk = strip_checksum(chunk)
                    if chunk is None:
                        raise FrameReadError(i, f"frame {i} of {ds.name}: the chunk fails its Fletcher-32 checksum "
                                             "(its bytes changed after it was written)")
                raw = chunk
            else:
                # A deflated chunk is a zlib stream, which ends with the Adler-32 of the inflated bytes: inflating
                # checks it (every one of 14,262 single-bit flips in a 33 kB RGB chunk was caught), so the
                # Fletcher-32 after the stream (kept for HDF5's own reads) is not computed again here: it cost
                # ~20 us of the ~0.15 ms per frame read.
                raw = isal_zlib.decompress(memoryview(chunk)[:-4] if fletcher else chunk)
        except (RuntimeError, isal_zlib.error) as exc:  # unallocated chunk, broken index, bad stream
            raise FrameReadError(i, f"frame {i} of {ds.name}: the chunk cannot be read or inflated, or fails "
                                    f"its zlib (Adler-32) check ({exc})") from None
        if len(raw) != nbytes:
            raise FrameReadError(i, f"frame {i} of {ds.name} inflates to {len(raw)} bytes, expected {nbytes}")
        out[k] = np.frombuffer(raw, dtype=ds.dtype).reshape(shape)
    return out


def file_sha256(path: str | Path, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def open_shard(path: str | Path):
    """Open a finished shard read-only; a missing, unreadable or unfinished file raises
    :class:`CorruptShardError` naming the file and the fix."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise CorruptShardError(f"shard {path} is missing; rerun `avworld data make` with the same --out to build it")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CorruptShardError(f"shard {path} cannot be read as HDF5 ({exc}); {_REBUILD}") from None
    try:
        ok = f.attrs.get("format") == SHARD_FORMAT and bool(f.attrs.get("complete", False))
    except (OSError, KeyError) as exc:
        f.close()
        raise CorruptShardError(f"shard {path} has unreadable attributes ({exc}); {_REBUILD}") from None
    if not ok:
        f.close()
        raise CorruptShardError(f"{path} is not a complete AVW shard (format/complete attributes); {_REBUILD}")
    return f


class ShardWriter:
    """Appends recorded trajectories to a new HDF5 file, then finalizes it (see module docstring)."""

    def __init__(self, path: str | Path, config: TrajectoryConfig, attrs: dict, step_samples: int) -> None:
        import h5py

        self.path = Path(path)
        self.config = config
        self.f = h5py.File(self.path, "w", libver=("earliest", "v110"))
        s, n = config.image_size, step_samples
        comp = {"compression": "gzip", "compression_opts": config.compression_level} if config.compression_level else {}
        audio_dtype = np.float16 if config.audio_format == "float16" else np.int16
        shapes = {"rgb": ((s, s, 3), np.uint8), "audio": ((2, n), audio_dtype)}
        if config.depth:
            shapes["depth"] = ((s, s), np.float16)
        # frame arrays grow per trajectory, one chunk per frame (random access by the loaders)
        self.dsets = {
            name: self.f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                        chunks=(1, *shape), track_times=False, fletcher32=True,
                                        **(comp if compressed_field(name, config) else {}))
            for name, (shape, dtype) in shapes.items()
        }
        for k, v in attrs.items():
            self.f.attrs[k] = v
        self.small: dict[str, list[np.ndarray]] = {k: [] for k in SMALL_DTYPES}
        self.traj: dict[str, list] = {k: [] for k in TRAJ_FIELDS}
        self.num_frames = 0
        self.clipped_samples = 0

    def append(self, rec: dict[str, np.ndarray], meta: dict) -> None:
        """Add one trajectory: ``rec`` from :func:`~avworld.data.rollout.record_trajectory`,
        ``meta`` with the per-trajectory fields of :data:`TRAJ_FIELDS` (but start/length)."""
        cfg = self.config
        T = len(rec["action"])
        arrays = {"rgb": rec["rgb"], "audio": encode_audio(rec["audio"], cfg.audio_format, cfg.audio_full_scale)}
        if cfg.audio_format == "int16":
            self.clipped_samples += int(np.count_nonzero(np.abs(rec["audio"]) > cfg.audio_full_scale))
        if cfg.depth:
            arrays["depth"] = rec["depth"].astype(np.float16)
        a, b = self.num_frames, self.num_frames + T
        for name, d in self.dsets.items():
            d.resize(b, axis=0)
            if compressed_field(name, cfg):  # one chunk per frame, compressed here (see deflate_chunk)
                frames = np.ascontiguousarray(arrays[name], dtype=d.dtype)
                if frames.shape != (T, *d.shape[1:]):  # write_direct_chunk would not notice
                    raise DataError(f"{name} of the trajectory has shape {frames.shape}, the shard stores "
                                    f"{(T, *d.shape[1:])}: record it with this dataset's TrajectoryConfig")
                zeros = (0,) * (frames.ndim - 1)
                for i in range(T):
                    chunk = deflate_chunk(frames[i].tobytes(), cfg.compression_level)
                    d.id.write_direct_chunk((a + i, *zeros), with_checksum(chunk))  # as the filters would
            else:
                d[a:b] = arrays[name]
        for k, dt in SMALL_DTYPES.items():
            self.small[k].append(np.asarray(rec[k], dtype=dt))
        self.traj["start"].append(a)
        self.traj["length"].append(T)
        for k in TRAJ_FIELDS[2:]:
            self.traj[k].append(meta[k])
        self.num_frames = b

    def finish(self) -> None:
        """Write the trajectory table, mark the file complete and close it."""
        dtypes = {"start": np.int64, "length": np.int32, "index": np.int32, "pattern": np.uint8,
                  "start_pose": np.float64, "goal_xy": np.float64, "start_offset_s": np.float64,
                  "reset_seed": np.uint32, "attempts": np.int32, "level_dbfs": np.float32}
        for k, dt in dtypes.items():
            self._checked(f"traj/{k}", np.asarray(self.traj[k], dtype=dt))
        for k, dt in SMALL_DTYPES.items():
            self._checked(k, np.concatenate(self.small[k]) if self.small[k] else np.zeros(0, dt))
        self.f.attrs["num_trajectories"] = len(self.traj["start"])
        self.f.attrs["num_frames"] = self.num_frames
        self.f.attrs["complete"] = True
        self.f.close()

    def _checked(self, name: str, data: np.ndarray) -> None:
        """A small array as one chunk with a Fletcher-32 checksum (fletcher32 needs chunks; the
        first axis is resizable so that an empty array can have a chunk shape too)."""
        self.f.create_dataset(name, data=data, chunks=(max(1, len(data)), *data.shape[1:]),
                              maxshape=(None, *data.shape[1:]), fletcher32=True, track_times=False)

    def close(self) -> None:
        if self.f.id.valid:
            self.f.close()


def shard_attrs(f) -> dict:
    """The shard's attributes as plain Python values (``config`` parsed from JSON)."""
    out = {}
    for k, v in f.attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    if isinstance(out.get("config"), str):
        out["config"] = json.loads(out["config"])
    return out
