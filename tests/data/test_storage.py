"""Shard writing: chunks compressed outside HDF5 (ISA-L / zlib) read back exactly through h5py's filter."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from avworld.data.config import TrajectoryConfig
from avworld.data.storage import (
    SMALL_DTYPES,
    TRAJ_FIELDS,
    ShardWriter,
    deflate_chunk,
    direct_readable,
    read_frames,
)


def _recording(T: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    # smooth gradients plus noise: compressible like a render, not trivially so
    ramp = np.linspace(0, 200, size, dtype=np.float32)
    rgb = (ramp[None, :, None, None] + rng.integers(0, 4, (T, size, size, 3))).astype(np.uint8)
    rec = {"rgb": rgb, "depth": rng.uniform(0.5, 5, (T, size, size)).astype(np.float32),
           "audio": rng.normal(0, 0.05, (T, 2, 2400)).astype(np.float32)}
    for k, dt in SMALL_DTYPES.items():
        shape = (T, 3) if k == "pose" else (T,)
        rec[k] = np.zeros(shape, dtype=dt)
    return rec


_META = {"index": 0, "pattern": 0, "start_pose": [0.0, 0.0, 0.0], "goal_xy": [1.0, 1.0], "start_offset_s": 0.0,
         "reset_seed": 1, "attempts": 1, "level_dbfs": -20.0}


@pytest.mark.parametrize("level", [1, 3, 6])
@pytest.mark.parametrize("audio_format", ["float16", "int16"])
def test_direct_chunks_read_back_exactly_through_the_gzip_filter(tmp_path, level, audio_format):
    cfg = TrajectoryConfig(image_size=24, depth=True, compression_level=level, audio_format=audio_format)
    recs = [_recording(5, 24, seed=0), _recording(3, 24, seed=1)]
    w = ShardWriter(tmp_path / "s.h5", cfg, {"format": "x"}, step_samples=2400)
    for rec in recs:
        w.append(rec, {k: _META[k] for k in TRAJ_FIELDS[2:]})
    w.finish()
    with h5py.File(tmp_path / "s.h5") as f:
        assert f["rgb"].compression == "gzip" and f["rgb"].shape == (8, 24, 24, 3)
        rgb = np.concatenate([r["rgb"] for r in recs])
        assert np.array_equal(f["rgb"][:], rgb)
        assert np.array_equal(f["depth"][:], np.concatenate([r["depth"] for r in recs]).astype(np.float16))
        mask, chunk = f["rgb"].id.read_direct_chunk((6, 0, 0, 0))
        assert mask == 0 and len(chunk) < rgb[6].nbytes  # really compressed, no filter skipped
        assert zlib.decompress(chunk) == rgb[6].tobytes()  # a plain zlib stream, as the gzip filter expects
        audio = f["audio"]
        assert (audio.compression == "gzip") == (audio_format == "int16")
        assert audio[:].shape == (8, 2, 2400)


def test_every_level_gives_a_zlib_stream_that_compresses():
    data = _recording(1, 64)["rgb"][0].tobytes()
    sizes = {}
    for level in range(1, 10):  # 1-3 ISA-L, 4-9 zlib
        out = deflate_chunk(data, level)
        assert zlib.decompress(out) == data
        sizes[level] = len(out)
    assert max(sizes.values()) < 0.7 * len(data)


def _shard_with_frames(path, level: int = 1):
    cfg = TrajectoryConfig(image_size=16, depth=True, compression_level=level, audio_format="int16")
    rec = _recording(9, 16, seed=3)
    w = ShardWriter(path, cfg, {"format": "x"}, step_samples=2400)
    w.append(rec, {k: _META[k] for k in TRAJ_FIELDS[2:]})
    w.finish()


@pytest.mark.parametrize("sel", [slice(None), slice(2, 7), slice(1, 9, 3), slice(5, 5), [0, 3, 8], np.array([4])])
def test_read_frames_equals_h5py_indexing(tmp_path, sel):
    _shard_with_frames(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5") as f:
        for name in ("rgb", "depth", "audio"):  # int16 audio is gzipped too
            got, ref = read_frames(f[name], sel), f[name][sel]
            assert got.dtype == ref.dtype and np.array_equal(got, ref), name
    _shard_with_frames(tmp_path / "raw.h5", level=0)  # no filter: h5py's own path
    with h5py.File(tmp_path / "raw.h5") as f:
        assert f["rgb"].compression is None and np.array_equal(read_frames(f["rgb"], sel), f["rgb"][sel])


def test_read_frames_reads_h5py_gzip_chunks_and_skipped_filters(tmp_path):
    rgb = _recording(4, 16)["rgb"]
    with h5py.File(tmp_path / "h.h5", "w") as f:
        d = f.create_dataset("rgb", data=rgb, chunks=(1, 16, 16, 3), compression="gzip", compression_opts=6)
        assert direct_readable(d)
        d.id.write_direct_chunk((2, 0, 0, 0), rgb[2].tobytes(), filter_mask=1)  # stored raw: deflate skipped
        assert np.array_equal(read_frames(d, slice(None)), rgb) and np.array_equal(d[:], rgb)
        s = f.create_dataset("shuffled", data=rgb, chunks=(1, 16, 16, 3), compression="gzip", shuffle=True)
        assert not direct_readable(s) and np.array_equal(read_frames(s, [1, 3]), rgb[[1, 3]])


@pytest.mark.parametrize("sel", [slice(None, None, -1), slice(0, 4, 0), 2, np.array([True, False, True]),
                                 [3, 1], [1, 1], [0, 9], np.array([0.0, 1.0])])
def test_frame_selections_hdf5_would_not_read_in_order_are_data_errors(tmp_path, sel):
    from avworld.data.errors import DataError

    _shard_with_frames(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5") as f:
        for name in ("rgb", "audio"):
            with pytest.raises(DataError, match="slice|increase|step"):
                read_frames(f[name], sel)


def test_the_writer_refuses_frames_of_another_shape(tmp_path):
    from avworld.data.errors import DataError

    cfg = TrajectoryConfig(image_size=16, compression_level=1)
    w = ShardWriter(tmp_path / "s.h5", cfg, {"format": "x"}, step_samples=2400)
    with pytest.raises(DataError, match=r"rgb of the trajectory has shape \(3, 8, 8, 3\).*\(3, 16, 16, 3\)"):
        w.append(_recording(3, 8), {k: _META[k] for k in TRAJ_FIELDS[2:]})
    w.close()


def test_a_corrupt_chunk_is_a_corrupt_shard_error(tiny_dataset, tmp_path):
    import shutil

    from avworld.data.errors import CorruptShardError
    from avworld.data.reader import AVWDataset

    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    data = AVWDataset(root, verify="none")
    ref = data.shards[data.trajectories[0].shard]["path"]
    with h5py.File(root / ref, "r+") as f:  # same size, garbage instead of a deflate stream
        mask, chunk = f["rgb"].id.read_direct_chunk((0, 0, 0, 0))
        f["rgb"].id.write_direct_chunk((0, 0, 0, 0), bytes(len(chunk)))
    data = AVWDataset(root, verify="none")
    with pytest.raises(CorruptShardError, match=r"field 'rgb', frame 0: cannot read.*rerun `avworld data make`"):
        data.frames(0, "rgb", slice(None))
