"""Latents encoded once: layout, values, resume after an interrupt, identity, staleness, corruption."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from avworld.data.errors import CorruptChunkError
from avworld.data.latent_reader import AVWLatents
from avworld.data.latents import (
    EncodeInterrupted,
    LatentIdentityError,
    LatentsError,
    LatentShapeError,
    LatentsMissingError,
    LatentValueError,
    StaleLatentsError,
    encode_dataset,
    latents_dir,
    verify_latents,
)
from avworld.data.reader import AVWDataset
from avworld.data.storage import file_sha256, has_chunk_checksums

from .latent_fakes import IDENTITY, StopAfter, fake_audio_encoder, fake_image_encoder
from .test_integrity import _flip_byte


@pytest.fixture
def root(tiny_dataset, tmp_path):
    """A private copy of the tiny dataset (encodes write under its latents/ folder)."""
    dst = tmp_path / "data"
    shutil.copytree(tiny_dataset[0], dst)
    return dst


def _encode(root, name="lat", **kw):
    kw.setdefault("batch_size", 7)  # does not divide any shard's frame count
    return encode_dataset(root, name, kw.pop("image", fake_image_encoder), kw.pop("audio", fake_audio_encoder),
                          kw.pop("identity", IDENTITY), **kw)


def _f16(x):
    return x.astype(np.float16).astype(np.float32)


def _file_hashes(root, name):
    return {p.name: file_sha256(p) for p in sorted(latents_dir(root, name).glob("*.h5"))}


def test_encode_writes_one_checked_file_per_shard_with_the_encoders_values(root):
    seen = []
    result = _encode(root, progress=lambda done, total: seen.append((done, total)))
    data = AVWDataset(root)
    assert sorted(result.encoded) == sorted(s["id"] for s in data.shards) and not result.skipped
    assert result.frames_encoded == data.num_frames
    assert seen[-1] == (data.num_frames, data.num_frames) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    m = result.manifest
    assert m["identity"] == IDENTITY
    assert m["fields"] == {"rgb": {"shape": [4, 6, 6], "dtype": "float16"},
                           "audio": {"shape": [3, 20], "dtype": "float16"}}
    for split in ("train", "val", "test"):
        assert m["splits"][split]["frames"] == data.manifest["totals"][split]["frames"]
        assert m["splits"][split]["complete"]
    assert json.loads((result.path / "latents.json").read_text()) == m
    for shard in data.shards:
        with h5py.File(result.path / f"{shard['id']}.h5", "r") as f:
            assert f.attrs["source_sha256"] == shard["sha256"] and f.attrs["complete"]
            assert f["rgb"].shape == (shard["stats"]["frames"], 4, 6, 6) and f["rgb"].dtype == np.float16
            assert f["rgb"].chunks == (1, 4, 6, 6) and f["audio"].chunks == (1, 3, 20)
            assert has_chunk_checksums(f["rgb"]) and has_chunk_checksums(f["audio"])
    lat = AVWLatents(root, "lat")
    for i in range(len(data)):  # frame f of trajectory i == encoder(frame f), through float16
        assert np.array_equal(lat.frames(i, "rgb", slice(None)),
                              _f16(fake_image_encoder(data.frames(i, "rgb", slice(None)))))
        assert np.array_equal(lat.frames(i, "audio", [0, 3]),
                              _f16(fake_audio_encoder(data.frames(i, "audio", [0, 3]))))
    assert lat.frames(0, "audio", slice(1, 3)).dtype == np.float32
    assert verify_latents(root, "lat") == []


def test_the_batch_size_does_not_change_the_bytes(root):
    _encode(root, "a", batch_size=7)
    _encode(root, "b", batch_size=64)
    _encode(root, "c", batch_size=1)
    assert _file_hashes(root, "a") == _file_hashes(root, "b") == _file_hashes(root, "c")


@pytest.mark.parametrize("k", [0, 3, 9])
def test_an_interrupted_encode_resumes_to_identical_latents(root, k):
    _encode(root, "ref")
    stop = StopAfter(k)
    with pytest.raises(EncodeInterrupted, match="interrupted; rerun the same command to resume") as info:
        _encode(root, "lat", stop=stop)
    folder = latents_dir(root, "lat")
    assert not list(folder.glob("*.tmp-*"))  # the file in progress was discarded
    kept = sorted(p.name for p in folder.glob("*.h5"))
    assert len(kept) == info.value.files_done < info.value.files_total
    assert len([p for p in verify_latents(root, "lat") if "is not encoded" in p]) == info.value.files_total - len(kept)
    resumed = _encode(root, "lat")
    assert sorted(f"{s}.h5" for s in resumed.skipped) == kept
    assert len(resumed.encoded) == info.value.files_total - len(kept)
    assert _file_hashes(root, "lat") == _file_hashes(root, "ref")
    a, b = AVWLatents(root, "lat"), AVWLatents(root, "ref")
    for i in range(len(a)):
        for field in ("rgb", "audio"):
            assert np.array_equal(a.frames(i, field, slice(None)), b.frames(i, field, slice(None)))


def test_leftover_temporary_files_are_reported_and_deleted(root):
    _encode(root)
    folder = latents_dir(root, "lat")
    (folder / "train-s0001-p00.h5.tmp-99999").write_bytes(b"half a file")
    assert any("temporary file" in p for p in verify_latents(root, "lat"))
    assert _encode(root).encoded == []
    assert not list(folder.glob("*.tmp-*"))


def test_another_identity_is_refused_and_the_same_resumes(root):
    _encode(root)
    other = {**IDENTITY, "image": {"sha256": "c" * 64, "scale": 1.0}}
    with pytest.raises(LatentIdentityError, match=r"differing: image.*'a{64}'.*'c{64}'.*another --name.*delete"):
        _encode(root, identity=other)
    with pytest.raises(LatentIdentityError, match="fields"):
        _encode(root, audio=None)
    same = json.loads(json.dumps(IDENTITY))  # an equal dict from elsewhere
    assert _encode(root, identity=same).encoded == []
    assert _encode(root, "other", identity=other).encoded  # another name is fine


def test_latents_of_a_rebuilt_shard_are_stale(root):
    _encode(root)
    manifest = json.loads((root / "manifest.json").read_text())
    shard = manifest["shards"][2]
    shard["sha256"] = "0" * 64  # what a rebuild of this shard with other bytes looks like to the latents
    (root / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_latents(root, "lat")
    assert len(problems) == 1 and "stale" in problems[0] and shard["id"] in problems[0]
    with pytest.raises(StaleLatentsError, match=rf"{shard['id']} are stale.*avworld tokenizer encode --data"):
        AVWLatents(root, "lat", split=shard["split"])
    result = _encode(root)
    assert list(result.redone) == [shard["id"]] and result.encoded == [shard["id"]]
    with h5py.File(result.path / f"{shard['id']}.h5", "r") as f:
        assert f.attrs["source_sha256"] == "0" * 64
    AVWLatents(root, "lat", split=shard["split"])


def test_a_latent_file_whose_attributes_name_another_source_is_stale(root):
    _encode(root)
    data = AVWDataset(root, split="train")
    path = latents_dir(root, "lat") / f"{data.shards[0]['id']}.h5"
    with h5py.File(path, "r+") as f:
        f.attrs["source_sha256"] = "1" * 64  # same size: passes the manifest's size check
    lat = AVWLatents(root, "lat", split="train", verify="none")
    with pytest.raises(StaleLatentsError, match="not complete latents of shard"):
        lat.frames(0, "rgb", slice(None))


def test_a_flipped_byte_in_a_latent_chunk_raises_naming_file_field_and_frame(root):
    _encode(root)
    lat = AVWLatents(root, "lat", split="train")
    i = 1
    ref = lat.trajectories[i]
    path = latents_dir(root, "lat") / f"{ref.shard_id}.h5"
    good = lat.frames(i, "rgb", slice(None))
    lat.close()
    _flip_byte(path, "rgb", ref.start + 2)
    lat = AVWLatents(root, "lat", split="train")  # same size: opens
    with pytest.raises(CorruptChunkError, match=rf"latent file .*{path.name}, trajectory {i} .*field 'rgb', "
                                                r"frame 2.*avworld tokenizer encode") as info:
        lat.frames(i, "rgb", slice(None))
    assert info.value.field == "rgb" and info.value.frame == 2 and info.value.shard == str(path)
    assert np.array_equal(lat.frames(i, "rgb", slice(3, None)), good[3:])  # the other chunks still read
    assert any("fails its checksum" in p for p in verify_latents(root, "lat"))
    result = _encode(root)
    assert list(result.redone) == [ref.shard_id]
    assert np.array_equal(AVWLatents(root, "lat", split="train").frames(i, "rgb", slice(None)), good)


@pytest.mark.parametrize("bad, what", [(np.nan, "NaN or inf"), (np.inf, "NaN or inf"),
                                       (1e5, "values beyond float16's range")])
def test_non_finite_or_too_large_latents_are_refused(root, bad, what):
    def encoder(rgb):
        y = fake_image_encoder(rgb)
        y[min(3, len(y) - 1), 1, 2, 2] = bad
        return y

    with pytest.raises(LatentValueError, match=rf"image encoder returned {what}.* frame 3 of shard"):
        _encode(root, image=encoder)
    folder = latents_dir(root, "lat")
    assert not list(folder.glob("*.h5*"))  # nothing written, no temporary file left


@pytest.mark.parametrize("encoder, match", [
    (lambda rgb: fake_image_encoder(rgb)[0], r"shape \(4, 6, 6\).*\(N, C, h, w\) with N = 7"),
    (lambda rgb: fake_image_encoder(rgb)[:-1], r"shape \(6, 4, 6, 6\) for a batch of 7"),
    (lambda rgb: "latents", r"returned str"),
])
def test_encoders_of_the_wrong_shape_are_refused(root, encoder, match):
    with pytest.raises(LatentShapeError, match=match):
        _encode(root, image=encoder)


def test_a_split_subset_then_the_rest(root):
    result = _encode(root, splits=["val"])
    data = AVWDataset(root)
    assert sorted(result.encoded) == sorted(s["id"] for s in data.shards if s["split"] == "val")
    assert result.manifest["splits"]["val"]["complete"] and not result.manifest["splits"]["train"]["complete"]
    assert len(AVWLatents(root, "lat", split="val")) == len(AVWDataset(root, split="val"))
    with pytest.raises(LatentsMissingError, match=r"do not cover split 'train'.*avworld tokenizer encode --data"):
        AVWLatents(root, "lat", split="train")
    assert verify_latents(root, "lat", splits=["val"]) == []
    rest = _encode(root)
    assert sorted(rest.skipped) == sorted(result.encoded) and len(rest.encoded) == len(data.shards) - 2
    AVWLatents(root, "lat")


def test_image_only_latents_and_their_errors(root):
    _encode(root, audio=None, identity={"image": IDENTITY["image"]})
    lat = AVWLatents(root, "lat", split="test")
    assert lat.fields == ("rgb",) and lat.frames(0, "rgb", [1]).shape == (1, 4, 6, 6)
    with pytest.raises(LatentsError, match="hold \\['rgb'\\], not 'audio'"):
        lat.frames(0, "audio", slice(None))


def test_missing_latents_and_bad_arguments(root):
    with pytest.raises(LatentsMissingError, match="no latents 'nope'.*avworld tokenizer encode --data .* --name nope"):
        AVWLatents(root, "nope")
    assert "never encoded" in verify_latents(root, "nope")[0]
    with pytest.raises(LatentsError, match="nothing to encode"):
        _encode(root, image=None, audio=None)
    with pytest.raises(LatentsError, match="batch_size"):
        _encode(root, batch_size=0)
    with pytest.raises(LatentsError, match="splits"):
        _encode(root, splits=["training"])
    with pytest.raises(LatentsError, match="plain folder name"):
        _encode(root, "../up")
    with pytest.raises(LatentsError, match="JSON-able"):
        _encode(root, identity={"scale": float("nan")})


def test_a_forked_worker_reopens_the_latent_files(root):
    _encode(root)
    lat = AVWLatents(root, "lat", split="train")
    lat.small(0)
    lat.frames(0, "rgb", [0])
    shard = lat.trajectories[0].shard
    before = lat._lat_files[shard]
    lat._pid = lat._lat_pid = -1  # as in a forked worker; AVWDataset.small resets its own handles first
    lat.small(0)
    lat.frames(0, "rgb", [0])
    assert lat._lat_files[shard] is not before
    state = lat.__getstate__()
    assert state["_lat_files"] == {} and state["_files"] == {}


def test_a_damaged_source_chunk_or_ctrl_c_leaves_no_partial_file(root):
    data = AVWDataset(root, split="val")
    ref = data.trajectories[0]
    _flip_byte(root / data.shards[ref.shard]["path"], "rgb", ref.start + 1)
    with pytest.raises(CorruptChunkError, match=r"shard .*field 'rgb', frame 1"):
        _encode(root, splits=["val"])
    assert not list(latents_dir(root, "lat").glob("*.h5*"))
    calls = []

    def interrupted(audio):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return fake_audio_encoder(audio)

    with pytest.raises(KeyboardInterrupt):
        _encode(root, "ctrl-c", audio=interrupted, splits=["train", "test"])
    assert not list(latents_dir(root, "ctrl-c").glob("*.tmp-*"))
    _encode(root, "ctrl-c", splits=["train", "test"])
    _encode(root, "ref", splits=["train", "test"])
    assert _file_hashes(root, "ctrl-c") == _file_hashes(root, "ref")


def test_the_latents_code_but_the_loaders_imports_no_torch():
    code = ("import sys, avworld.data.latents, avworld.data.latent_encode, avworld.data.latent_reader; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
