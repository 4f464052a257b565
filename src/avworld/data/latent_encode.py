"""Encoding a dataset's frames into latents once: resumable, atomic, checked.

Each source shard's latents are written to ``{id}.h5.tmp-{pid}`` and renamed to ``{id}.h5``
only when complete and closed (``os.replace``); the latent manifest is rewritten atomically
after every finished file. Rerunning the same encode checks the recorded files (size and,
by default, SHA-256; the source shard's SHA-256 against the dataset manifest) and skips them,
re-encodes stale, damaged or missing ones, and deletes the temporary files of interrupted
runs. The encoders must be deterministic per frame (a frame's latent must not depend on the
other frames of its batch) for a resumed encode to be byte-identical to an uninterrupted one.
Layout and manifest: :mod:`avworld.data.latents`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avworld.data.latents import (
    FILE_FORMAT,
    FRAME_NDIM,
    LATENTS_VERSION,
    EncodeInterrupted,
    LatentIdentityError,
    LatentsError,
    LatentShapeError,
    check_latents,
    file_problem,
    identity_sha256,
    latents_dir,
    load_latent_manifest,
    new_latent_manifest,
    normalize_identity,
    save_latent_manifest,
    split_totals,
)
from avworld.data.plan import SPLITS
from avworld.data.reader import AVWDataset
from avworld.data.storage import file_sha256

#: image_encoder: uint8 (N, H, W, 3) -> float32 (N, C, h, w); audio_encoder: float32 (N, 2, n) -> float32 (N, D, F)
Encoder = Callable[[np.ndarray], np.ndarray]


@dataclass
class EncodeResult:
    """What :func:`encode_dataset` did: the latent folder and manifest, the shards it encoded,
    those it found complete (skipped), and those it re-encoded with the reason (stale, damaged)."""

    path: Path
    manifest: dict
    encoded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redone: dict[str, str] = field(default_factory=dict)
    frames_encoded: int = 0
    seconds: float = 0.0


def _identity_message(folder: Path, old: dict, new: dict, name: str) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    def show(d: dict) -> str:
        text = ", ".join(f"{k}={d.get(k)!r}" for k in keys)
        return text if len(text) < 400 else text[:400] + "..."
    return (f"{folder} holds latents {name!r} of another identity (differing: {', '.join(keys)}): stored "
            f"{{{show(old)}}}, this encode {{{show(new)}}}; use another --name, or delete {folder} to re-encode")


def _frame_reader(data: AVWDataset, shard: int):
    """read(field, a, b): frames a..b-1 of the shard (row order of the file), through the
    dataset's checked per-trajectory reads (a damaged chunk raises CorruptChunkError)."""
    trajs = sorted((t.start, t.length, i) for i, t in enumerate(data.trajectories) if t.shard == shard)

    def read(name: str, a: int, b: int) -> np.ndarray:
        parts = [data.frames(i, name, slice(max(a, s) - s, min(b, s + n) - s))
                 for s, n, i in trajs if s < b and s + n > a]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return read, sum(n for _, n, _ in trajs)


def _as_latent(y, name: str, n: int, shard_id: str) -> np.ndarray:
    kind = "image" if name == "rgb" else "audio"
    try:
        y = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise LatentShapeError(f"the {kind} encoder returned {type(y).__name__}, not an array of numbers ({exc})") \
            from None
    want = FRAME_NDIM[name] + 1
    if y.ndim != want or y.shape[0] != n:
        layout = "(N, C, h, w)" if name == "rgb" else "(N, D, F)"
        raise LatentShapeError(f"the {kind} encoder returned shape {y.shape} for a batch of {n} frames of shard "
                               f"{shard_id}; it must return {layout} with N = {n}")
    return y


class _Stopped(Exception):  # noqa: N818 - internal: unwinds one shard
    pass


def _encode_shard(data, k, encoders, batch_size, folder, manifest, id_sha, stop, tick) -> dict:
    import h5py

    rec = data.shards[k]
    read, num_frames = _frame_reader(data, k)
    final = folder / f"{rec['id']}.h5"
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    # HDF5 >= 1.10's file format: its fixed-array chunk index costs ~46 bytes per frame of rgb 4x8x8 +
    # audio 64x20 latents (1.5 %); the 1.8 format's B-tree ~143 (4.7 %)
    f = h5py.File(tmp, "w", libver=("v110", "v110"))
    try:
        for key, value in {"format": FILE_FORMAT, "version": LATENTS_VERSION, "shard_id": rec["id"],
                           "split": rec["split"], "source_sha256": rec["sha256"], "identity_sha256": id_sha,
                           "num_frames": num_frames, "complete": False}.items():
            f.attrs[key] = value
        dsets = {}
        for a in range(0, num_frames, batch_size):
            if stop is not None and stop.requested:
                raise _Stopped
            b = min(num_frames, a + batch_size)
            for name, encoder in encoders:
                y = _as_latent(encoder(read(name, a, b)), name, b - a, rec["id"])
                check_latents(y, name, a, rec["id"])
                known = manifest["fields"].get(name)
                if known is None:
                    known = manifest["fields"][name] = {"shape": list(y.shape[1:]), "dtype": "float16"}
                if list(y.shape[1:]) != known["shape"]:
                    raise LatentShapeError(
                        f"the {'image' if name == 'rgb' else 'audio'} encoder returned {name} latents of shape "
                        f"{tuple(y.shape[1:])} per frame for shard {rec['id']}, but the latents in {folder} have "
                        f"{tuple(known['shape'])}; an encoder of another shape needs another identity and --name")
                ds = dsets.get(name)
                if ds is None:
                    ds = dsets[name] = f.create_dataset(name, shape=(num_frames, *y.shape[1:]), dtype=np.float16,
                                                        chunks=(1, *y.shape[1:]), fletcher32=True, track_times=False)
                ds[a:b] = y.astype(np.float16)
            tick(b - a)
        f.attrs["complete"] = True
        f.close()
        sha = file_sha256(tmp)
        os.replace(tmp, final)  # atomic: the final name only ever holds a whole file
    except BaseException:
        f.close()
        tmp.unlink(missing_ok=True)
        raise
    return {"id": rec["id"], "path": final.name, "split": rec["split"], "frames": num_frames,
            "source_sha256": rec["sha256"], "sha256": sha, "bytes": final.stat().st_size, "status": "done"}


def encode_dataset(root: str | Path, name: str, image_encoder: Encoder | None, audio_encoder: Encoder | None,
                   identity: dict, batch_size: int = 64, splits=None,
                   progress: Callable[[int, int], None] | None = None, stop=None,
                   checksum: bool = True) -> EncodeResult:
    """Encode the frames of the dataset at ``root`` into ``root/latents/name`` (see module docstring).

    ``image_encoder`` maps uint8 frames (N, H, W, 3) to float32 (N, C, h, w); ``audio_encoder``
    float32 audio (N, 2, n) (decoded, as :meth:`AVWDataset.frames` returns it) to float32
    (N, D, F); None skips that modality. ``identity`` (JSON-able: checkpoints' SHA-256, latent
    scales, configs) is stored in the manifest: an encode into a folder of another identity
    raises :class:`LatentIdentityError`, the same identity resumes. ``splits``: a subset of
    ``("train", "val", "test")`` (None: all). ``progress(frames_done, frames_total)`` is called
    after every batch; ``stop`` is an object whose ``.requested`` is checked between batches:
    once true, the file in progress is discarded and :class:`EncodeInterrupted` raised (finished
    files are kept). ``checksum``: re-hash recorded files before skipping them (else sizes only).
    Non-finite latents or values beyond float16's range raise :class:`LatentValueError`.
    """
    t0 = time.perf_counter()
    encoders = [(n, e) for n, e in (("rgb", image_encoder), ("audio", audio_encoder)) if e is not None]
    if not encoders:
        raise LatentsError("nothing to encode: give an image encoder, an audio encoder or both")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LatentsError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    wanted = SPLITS if splits is None else tuple(splits)
    bad = [s for s in wanted if s not in SPLITS]
    if bad or not wanted:
        raise LatentsError(f"unknown or empty splits {list(wanted)}; choose among {SPLITS}")
    identity = normalize_identity(identity)
    folder = latents_dir(root, name)
    data = AVWDataset(root, split=None, verify="size")
    manifest = load_latent_manifest(root, name)
    fields = [n for n, _ in encoders]
    if manifest is None:
        manifest = new_latent_manifest(name, data.manifest, identity)
        manifest["encoded_fields"] = fields
    elif manifest["identity"] != identity:
        raise LatentIdentityError(_identity_message(folder, manifest["identity"], identity, name))
    elif manifest.get("encoded_fields") != fields:
        raise LatentIdentityError(f"{folder} holds latents {name!r} of fields {manifest.get('encoded_fields')} "
                                  f"and this encode makes {fields} (an image and/or audio encoder more or "
                                  f"less); give the same encoders, use another --name, or delete {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.h5.tmp-*"):  # files of interrupted encodes: never used
        leftover.unlink(missing_ok=True)
    result = EncodeResult(path=folder, manifest=manifest)
    records = {r["id"]: r for r in manifest["files"]}
    shards = [k for k, rec in enumerate(data.shards) if rec["split"] in wanted]
    total = sum(rec["stats"]["frames"] for k, rec in enumerate(data.shards) if k in shards)
    pending = []
    for k in shards:
        rec = data.shards[k]
        problem = file_problem(root, name, rec, records.get(rec["id"]), checksum)
        if problem is None:
            result.skipped.append(rec["id"])
            continue
        if rec["id"] in records:
            result.redone[rec["id"]] = problem
            manifest["files"].remove(records.pop(rec["id"]))
        pending.append(k)
    manifest["splits"] = split_totals(manifest, data.manifest)
    save_latent_manifest(root, name, manifest)
    done = [total - sum(data.shards[k]["stats"]["frames"] for k in pending)]
    if progress is not None:
        progress(done[0], total)

    def tick(n: int) -> None:
        done[0] += n
        result.frames_encoded += n
        if progress is not None:
            progress(done[0], total)

    id_sha = identity_sha256(identity)
    try:
        for k in pending:
            record = _encode_shard(data, k, encoders, batch_size, folder, manifest, id_sha, stop, tick)
            manifest["files"].append(record)
            manifest["splits"] = split_totals(manifest, data.manifest)
            save_latent_manifest(root, name, manifest)
            result.encoded.append(record["id"])
    except _Stopped:
        finished = len(shards) - len(pending) + len(result.encoded)
        raise EncodeInterrupted(finished, len(shards), done[0], total) from None
    finally:
        data.close()
    result.seconds = time.perf_counter() - t0
    return result
