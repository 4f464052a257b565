"""Corrupt data is never returned silently: per-chunk Fletcher-32 checksums, and older shards
without them re-hashed on first open."""

from __future__ import annotations

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest

from avworld.data.checksum import fletcher32, strip_checksum, with_checksum
from avworld.data.errors import CorruptChunkError, CorruptShardError
from avworld.data.reader import AVWDataset, UncheckedShardsWarning
from avworld.data.storage import file_sha256, has_chunk_checksums


def _copy(tiny_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset[0], root)
    return root


def _flip_byte(path, ds_name: str, frame: int) -> None:
    """Flip one byte in the middle of the stored chunk of ``frame`` (found with h5py's low-level API)."""
    with h5py.File(path, "r") as f:
        ds = f[ds_name]
        info = ds.id.get_chunk_info_by_coord((frame, *(0,) * (ds.ndim - 1)))
    assert info.size > 100
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([b[0] ^ 0x40]))


def test_fletcher32_is_hdf5s(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {"img": rng.integers(0, 255, (3, 40, 40, 3), dtype=np.uint8),
              "odd": rng.integers(0, 255, (3, 7), dtype=np.uint8),
              "zeros": np.zeros((2, 9), np.uint8), "ones": np.full((2, 8), 255, np.uint8),
              "audio": rng.normal(0, 0.1, (3, 2, 2400)).astype(np.float16)}
    with h5py.File(tmp_path / "f.h5", "w") as f:
        for name, a in arrays.items():
            for gz in (False, True):
                ds = f.create_dataset(f"{name}{gz}", data=a, chunks=(1, *a.shape[1:]), fletcher32=True,
                                      **({"compression": "gzip"} if gz else {}))
                for i in range(len(a)):
                    _, stored = ds.id.read_direct_chunk((i, *(0,) * (a.ndim - 1)))
                    assert with_checksum(stored[:-4]) == stored  # HDF5's own checksum
                    assert strip_checksum(stored) == stored[:-4]
                    bad = bytearray(stored)
                    bad[len(bad) // 2] ^= 1
                    assert strip_checksum(bytes(bad)) is None
    big = rng.integers(0, 256, 300_001, dtype=np.uint8).tobytes()  # several 64k-word blocks, odd length
    w = np.frombuffer(big[:-1], ">u2").astype(np.int64).tolist() + [big[-1] << 8]
    s1 = s2 = 0
    for x in w:  # the definition, with exact integers
        s1 += x
        s2 += s1
    fold = lambda x: 0 if x == 0 else (x - 1) % 65535 + 1  # noqa: E731
    assert fletcher32(big) == (fold(s2) << 16) | fold(s1)


def test_every_dataset_of_a_shard_has_checksums_that_hdf5_accepts(tiny_dataset):
    root, manifest = tiny_dataset
    rec = manifest["shards"][0]
    assert rec["chunk_checksums"] == "fletcher32"
    with h5py.File(root / rec["path"], "r") as f:
        names = []
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert {"rgb", "audio", "depth", "pose", "traj/start"} <= set(names)
        for n in names:
            assert has_chunk_checksums(f[n]), n
            f[n][()]  # HDF5 checks the checksums the writer computed for its direct chunks


@pytest.mark.parametrize("field", ["audio", "rgb"])
def test_a_flipped_byte_raises_naming_shard_trajectory_and_field(tiny_dataset, tmp_path, field):
    root = _copy(tiny_dataset, tmp_path)
    data = AVWDataset(root, split="train")
    i = 1
    ref = data.trajectories[i]
    path = root / data.shards[ref.shard]["path"]
    good = data.frames(i, field, slice(None))
    data.close()  # HDF5 shares an open file (and its chunk cache) with later opens in the process
    _flip_byte(path, field, ref.start + 2)

    data = AVWDataset(root, split="train")  # size unchanged: the open passes
    with pytest.raises(CorruptChunkError) as err:
        data.frames(i, field, slice(None))
    e = err.value
    assert (e.shard, e.trajectory, e.field, e.frame) == (str(path), i, field, 2)
    msg = str(e)
    assert str(path) in msg and f"trajectory {i} " in msg and f"field {field!r}, frame 2" in msg
    assert "rerun `avworld data make`" in msg
    with pytest.raises(CorruptChunkError, match=f"field {field!r}, frame 2"):
        data.frames(i, field, [0, 2])
    with pytest.raises(CorruptChunkError):
        data.trajectory(i)
    assert np.array_equal(data.frames(i, field, slice(0, 2)), good[:2])  # the other chunks still read
    assert np.array_equal(data.frames(i, field, slice(3, None)), good[3:])


def test_the_pytorch_loaders_raise_the_typed_error(tiny_dataset, tmp_path):
    torch = pytest.importorskip("torch")
    from avworld.data.loaders import CDiTDataset, SequenceDataset

    root = _copy(tiny_dataset, tmp_path)
    data = AVWDataset(root, split="train")
    i = 0
    ref = data.trajectories[i]
    path = root / data.shards[ref.shard]["path"]
    data.close()
    _flip_byte(path, "audio", ref.start + 1)

    seq = SequenceDataset(root, split="train", length=None)
    with pytest.raises(CorruptChunkError, match=rf"{path.name}, trajectory {i} .*field 'audio', frame 1"):
        seq[i]
    ds = CDiTDataset(root, split="train", context=2, window=2, num_goals=1, cache_trajectories=2)
    for workers in (0, 1):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers)
        with pytest.raises(CorruptChunkError, match=rf"{path.name}, trajectory {i} .*field 'audio'"):
            for _ in loader:
                pass


def _strip_checksums(src, dst) -> None:
    """Rewrite shard ``src`` as the version 1 writer did: same datasets, chunks and filters but
    fletcher32, same attributes."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                chunks = obj.chunks if obj.ndim > 1 and obj.shape[0] > 0 and obj.chunks[0] == 1 else None
                g.create_dataset(name, data=obj[()], chunks=chunks, compression=obj.compression if chunks else None,
                                 compression_opts=obj.compression_opts if chunks else None, track_times=False)
        f.visititems(copy)
        for k, v in f.attrs.items():
            g.attrs[k] = v
        g.attrs["version"] = 1


def test_shards_without_checksums_still_read_and_are_rehashed_on_first_open(tiny_dataset, tmp_path):
    root = _copy(tiny_dataset, tmp_path)
    mpath = root / "manifest.json"
    manifest = json.loads(mpath.read_text())
    rec = next(r for r in manifest["shards"] if r["split"] == "train")
    path = root / rec["path"]
    new = AVWDataset(root, split="train")
    expected = [new.trajectory(i, fields=("rgb", "audio", "depth")) for i in range(len(new))]
    new.close()
    _strip_checksums(path, tmp_path / "old.h5")
    shutil.move(tmp_path / "old.h5", path)
    rec.pop("chunk_checksums")
    rec.update(bytes=path.stat().st_size, sha256=file_sha256(path))
    mpath.write_text(json.dumps(manifest))

    old = AVWDataset(root, split="train")
    assert not old.chunk_checksums
    with h5py.File(path, "r") as f:
        assert not has_chunk_checksums(f["audio"]) and not has_chunk_checksums(f["rgb"])
    for i in range(len(old)):  # reads as before, the same data
        got = old.trajectory(i, fields=("rgb", "audio", "depth"))
        assert all(np.array_equal(got[k], expected[i][k]) for k in expected[i])

    i = next(k for k, t in enumerate(old.trajectories) if t.shard_id == rec["id"])
    old.close()  # HDF5 shares an open file (and its chunk cache) with later opens in the process
    _flip_byte(path, "audio", old.trajectories[i].start + 1)
    with pytest.raises(CorruptShardError, match=rf"{path.name} fails its checksum.*trajectory {i}"):
        AVWDataset(root, split="train").trajectory(i)  # the whole file is hashed when first opened
    with pytest.warns(UncheckedShardsWarning, match="without per-chunk checksums"):
        unchecked = AVWDataset(root, split="train", verify="none")
    got = unchecked.frames(i, "audio", slice(None))
    assert not np.array_equal(got[1], expected[i]["audio"][1])  # read unchecked, as documented
    assert np.array_equal(got[2:], expected[i]["audio"][2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AVWDataset(tiny_dataset[0], split="train", verify="none")  # shards with checksums: no warning


def test_a_damaged_small_field_says_it_was_read_for_the_whole_shard(tiny_dataset, tmp_path):
    root = _copy(tiny_dataset, tmp_path)
    data = AVWDataset(root, split="train")
    ref = data.trajectories[1]
    path = root / data.shards[ref.shard]["path"]
    data.close()
    with h5py.File(path, "r") as f:
        ds = f["pose"]
        info = ds.id.get_chunk_info(0)
    with open(path, "r+b") as fh:  # one byte inside the first chunk of the shard's poses
        fh.seek(info.byte_offset + info.size // 2)
        b = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([b[0] ^ 0x40]))
    data = AVWDataset(root, split="train")
    with pytest.raises(CorruptChunkError, match="read whole for the shard while loading trajectory 1") as err:
        data.small(1)
    assert err.value.field == "pose" and str(path) in str(err.value)
