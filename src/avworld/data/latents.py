"""Latents of a dataset, encoded once: layout, typed errors, the manifest and its checks.

A tokenizer pair (image autoencoder, audio codec) turns every frame of an AVW dataset into
latents once, so a world model trains on latents instead of pixels::

    DIR/latents/NAME/latents.json          the latent manifest (atomic rewrite per file)
    DIR/latents/NAME/{shard id}.h5         one file per source shard, e.g. train-s0012-p01.h5

A latent file mirrors its source shard (same id, split and frame order: frame ``f`` of the
shard is row ``f``)::

    attrs   format="avworld-latents-file", version, shard_id, split, source_sha256 (the source
            shard's SHA-256 in the dataset manifest), identity_sha256, num_frames, complete (last)
    rgb     (F, C, h, w)  float16   image latents  (one chunk per frame, Fletcher-32, no compression)
    audio   (F, D, Fa)    float16   audio latents  (idem)

``latents.json``::

    {"format": "avworld-latents", "version": 1, "name", "dataset": {"name", "config_hash"},
     "identity": {what the caller says the latents are: checkpoints' sha256, scales, configs},
     "fields": {"rgb": {"shape": [C, h, w], "dtype": "float16"}, "audio": {...}},
     "files": [{"id", "path", "split", "frames", "source_sha256", "sha256", "bytes", "status"}],
     "splits": {"train": {"files", "frames", "complete"}, ...}, "software": {...}}

The writer is :func:`~avworld.data.latent_encode.encode_dataset`, the reader
:class:`~avworld.data.latent_reader.AVWLatents` (both importable from here too). Files are
written without timestamps, so the same frames, encoders and identity give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from avworld.data.errors import DataError
from avworld.data.manifest import _software
from avworld.data.plan import SPLITS
from avworld.data.shards import shard_problem

LATENTS_FORMAT = "avworld-latents"
LATENTS_VERSION = 1
FILE_FORMAT = "avworld-latents-file"
MANIFEST_NAME = "latents.json"
LATENT_FIELDS = ("rgb", "audio")
#: Rank of one frame's latent per field: rgb (C, h, w), audio (D, Fa).
FRAME_NDIM = {"rgb": 3, "audio": 2}
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: The command that (re)builds latents; the tokenizer CLI fills in the checkpoints.
ENCODE_COMMAND = "avworld tokenizer encode --data {root} --image IMAGE_CKPT --audio AUDIO_CKPT --name {name}"


class LatentsError(DataError):
    """Base class of the latent errors (a ``ValueError``: the CLI prints it and exits 2)."""


class LatentsMissingError(LatentsError):
    """The latents asked for were never encoded, or only in part (a split or some shards missing)."""


class StaleLatentsError(LatentsMissingError):
    """Latent files encoded from shards that have since been rebuilt (another source SHA-256),
    or that no longer match the latent manifest (size, checksum)."""


class LatentIdentityError(LatentsError):
    """An encode into a latent folder that holds latents of other tokenizers (another identity)."""


class LatentShapeError(LatentsError):
    """An encoder returned an array of the wrong rank, batch size, or another shape than the
    latents already in the folder."""


class LatentValueError(LatentsError):
    """An encoder returned NaN/inf or values beyond float16's range (±65504): not written."""


class EncodeInterrupted(Exception):  # noqa: N818 - not an error: the stop the caller asked for
    """The encode stopped at the caller's request (``stop.requested``); finished files are kept
    and recorded, the file in progress was discarded. Rerun the same encode to resume.

    Not a ``ValueError``: the CLI prints ``str(exc)`` (one line) and exits 130.
    """

    def __init__(self, files_done: int, files_total: int, frames_done: int, frames_total: int) -> None:
        super().__init__(f"interrupted; rerun the same command to resume ({files_done} of {files_total} latent "
                         f"files finished and kept)")
        self.files_done, self.files_total = files_done, files_total
        self.frames_done, self.frames_total = frames_done, frames_total


def encode_command(root, name: str) -> str:
    return ENCODE_COMMAND.format(root=root, name=name)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise LatentsError(f"latent name {name!r} is not a plain folder name; use letters, digits, '.', '_' or "
                           "'-' (e.g. 'sd4-codec20')")
    return name


def latents_dir(root: str | Path, name: str) -> Path:
    return Path(root) / "latents" / check_name(name)


def normalize_identity(identity) -> dict:
    """``identity`` as JSON gives it back (tuples -> lists, keys as strings); a non-JSON value is an error."""
    if not isinstance(identity, dict):
        raise LatentsError(f"identity must be a dict (tokenizer checkpoints' sha256, latent scales, configs), "
                           f"got {type(identity).__name__}")
    try:
        return json.loads(json.dumps(identity, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise LatentsError(f"identity must be JSON-able (strings, numbers, lists, dicts; no NaN): {exc}") from None


def identity_sha256(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def new_latent_manifest(name: str, dataset_manifest: dict, identity: dict) -> dict:
    return {"format": LATENTS_FORMAT, "version": LATENTS_VERSION, "name": name,
            "dataset": {"name": dataset_manifest.get("name"), "config_hash": dataset_manifest.get("config_hash")},
            "identity": identity, "fields": {}, "files": [], "splits": {}, "software": _software()}


def load_latent_manifest(root: str | Path, name: str) -> dict | None:
    """The latent manifest of ``root``'s latents ``name``, or None if there is none."""
    path = latents_dir(root, name) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LatentsError(f"{path} is not valid JSON ({exc}); delete the folder {path.parent} and rerun "
                           f"`{encode_command(root, name)}`") from None
    if not isinstance(m, dict) or m.get("format") != LATENTS_FORMAT or m.get("version") != LATENTS_VERSION:
        raise LatentsError(f"{path} is not a version-{LATENTS_VERSION} latent manifest (format "
                           f"{m.get('format') if isinstance(m, dict) else None!r}); delete the folder {path.parent} "
                           f"and rerun `{encode_command(root, name)}`")
    return m


def save_latent_manifest(root: str | Path, name: str, manifest: dict) -> Path:
    """Write ``latents.json`` atomically, with the per-split totals recomputed."""
    folder = latents_dir(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    manifest["files"].sort(key=lambda r: r["id"])
    path = folder / MANIFEST_NAME
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def split_totals(manifest: dict, dataset_manifest: dict) -> dict:
    """Per split: latent files done, their frames, and whether every shard of the split has one."""
    done = {r["id"] for r in manifest["files"] if r.get("status") == "done"}
    out = {}
    for split in SPLITS:
        shards = [s for s in dataset_manifest["shards"] if s["split"] == split and s.get("status") == "done"]
        mine = [s for s in shards if s["id"] in done]
        out[split] = {"files": len(mine), "frames": sum(s["stats"]["frames"] for s in mine),
                      "complete": len(mine) == len(shards)}
    return out


def file_problem(root: str | Path, name: str, shard: dict, record: dict | None, checksum: bool = True) -> str | None:
    """What is wrong with the latents of source shard ``shard`` (a dataset manifest record)
    given its latent manifest ``record``, or None: not encoded, stale source, missing, size, sha256."""
    if record is None or record.get("status") != "done":
        return f"shard {shard['id']} ({shard['split']}) is not encoded"
    if record.get("source_sha256") != shard.get("sha256"):
        return (f"latents of shard {shard['id']} are stale: encoded from a shard with sha256 "
                f"{str(record.get('source_sha256'))[:16]}..., the dataset's is now {str(shard.get('sha256'))[:16]}... "
                "(the dataset was rebuilt)")
    problem = shard_problem(latents_dir(root, name) / record["path"], record, checksum)
    return None if problem is None else f"latent file {record['path']} {problem}"


def verify_latents(root: str | Path, name: str, checksum: bool = True, splits=None) -> list[str]:
    """Every problem of ``root``'s latents ``name`` (all splits, or ``splits``), one line each:
    no manifest, shards not encoded, stale latents (the source shard was rebuilt), missing files,
    wrong sizes and (``checksum``) SHA-256s, leftover temporary files. Empty when all is well."""
    from avworld.data.manifest import load_manifest

    dataset = load_manifest(root)
    manifest = load_latent_manifest(root, name)
    folder = latents_dir(root, name)
    if manifest is None:
        return [f"{folder / MANIFEST_NAME} does not exist: latents {name!r} were never encoded"]
    records = {r["id"]: r for r in manifest["files"]}
    wanted = set(SPLITS if splits is None else splits)
    problems = []
    for shard in dataset["shards"]:
        if shard["split"] in wanted and shard.get("status") == "done":
            problem = file_problem(root, name, shard, records.get(shard["id"]), checksum)
            if problem is not None:
                problems.append(problem)
    problems += [f"temporary file {p.name} of an interrupted encode (deleted by the next encode)"
                 for p in sorted(folder.glob("*.tmp-*"))]
    return problems


def check_latents(latent: np.ndarray, field: str, first_frame: int, shard_id: str) -> None:
    """Raise :class:`LatentValueError` for NaN/inf or values float16 cannot hold (``field`` of
    frames ``first_frame + i`` of shard ``shard_id``)."""
    finite = np.isfinite(latent)
    what = None
    if not finite.all():
        bad = ~finite.reshape(len(latent), -1).all(axis=1)
        what, count = "NaN or inf", int((~finite).sum())
    else:
        big = np.abs(latent) > FLOAT16_MAX
        if big.any():
            bad = big.reshape(len(latent), -1).any(axis=1)
            what, count = f"values beyond float16's range (|x| > {FLOAT16_MAX:g}, max {np.abs(latent).max():.4g})", \
                int(big.sum())
    if what is not None:
        frame = first_frame + int(np.flatnonzero(bad)[0])
        raise LatentValueError(
            f"the {'image' if field == 'rgb' else 'audio'} encoder returned {what} "
            f"for frame {frame} of shard {shard_id} ({count} value(s) in a batch "
            f"of {len(latent)} frames); nothing of this shard was written. Check the checkpoint and its latent "
            "scale (latents are stored as float16)")


def __getattr__(attr: str):  # the writer and the reader, importable from here (they import this module)
    if attr == "encode_dataset":
        from avworld.data.latent_encode import encode_dataset

        return encode_dataset
    if attr == "AVWLatents":
        from avworld.data.latent_reader import AVWLatents

        return AVWLatents
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
