"""Benchmark: encoding a dataset's latents once (I/O overhead) and their size against the shards.

Fake encoders of the realistic latent shapes replace the tokenizers, so what is timed is the
encode machinery itself: reading and decoding the frames (checked chunks), the float16 checks,
writing one Fletcher-32 chunk per frame, hashing and the manifest. Per 64x64 frame the image
encoder average-pools 8x8 to 3 channels + their mean (rgb latent 4x8x8); the audio encoder
projects each 120-sample block of both ears with a fixed random matrix to 64 channels (audio
latent 64x20, ~unit variance: as incompressible as real latents). Reported: frames/s of the
whole encode, of the encoders alone, latent bytes per frame against the HDF5 shards' bytes
per frame, and the LatentCDiTDataset samples/s against CDiTDataset's (one process, block
sampler with the trajectory cache, batches of 64).

    .venv/bin/python benchmarks/bench_latents.py [--data DIR] [--repeats 3]

Without ``--data`` an ``avw-tiny`` dataset is built in a temporary folder. With ``--data``
the dataset is only read: its manifest is copied to a temporary folder whose ``shards`` links
to the dataset's, and the latents are written there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402

_PROJ = np.random.default_rng(0).standard_normal((240, 64)).astype(np.float32) / np.sqrt(240 * 1e-3)


def image_encoder(rgb: np.ndarray) -> np.ndarray:
    n, h, w, _ = rgb.shape
    x = rgb.astype(np.float32).reshape(n, h // 8, 8, w // 8, 8, 3).mean(axis=(2, 4)) / 127.5 - 1.0
    x = x.transpose(0, 3, 1, 2)
    return np.concatenate([x, x.mean(axis=1, keepdims=True)], axis=1)


def audio_encoder(audio: np.ndarray) -> np.ndarray:
    n, c, s = audio.shape
    blocks = audio.reshape(n, c, s // 120, 120).transpose(0, 2, 1, 3).reshape(n, s // 120, c * 120)
    return (blocks @ _PROJ).transpose(0, 2, 1).copy()  # (N, 64, 20)


def _dataset(args, tmp: Path) -> Path:
    if args.data is None:
        from avworld.data import build_dataset, preset

        root = tmp / "avw-tiny"
        build_dataset(root, preset("avw-tiny"), workers=1)
        return root
    root = tmp / Path(args.data).name
    root.mkdir()
    shutil.copy(Path(args.data) / "manifest.json", root / "manifest.json")
    (root / "shards").symlink_to(Path(args.data).resolve() / "shards")
    return root


def _loader_rate(ds, batches: int) -> float:
    import torch

    from avworld.data.loaders import TrajectoryBlockSampler

    sampler = TrajectoryBlockSampler(ds, block=4, batch_size=64, seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, sampler=sampler, num_workers=0)
    n, t0 = 0, time.perf_counter()
    for k, batch in enumerate(loader):
        n += len(batch["traj"])
        if k + 1 >= batches:
            break
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="an AVW dataset (read only); default: build avw-tiny")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="loader batches timed")
    p.add_argument("--out", default="benchmarks/results/latents.json")
    args = p.parse_args()
    pinned = pin_to_one_core()
    from avworld.data.latent_loaders import LatentCDiTDataset
    from avworld.data.latents import encode_dataset
    from avworld.data.loaders import CDiTDataset
    from avworld.data.reader import AVWDataset

    with tempfile.TemporaryDirectory(prefix="bench-latents-") as tmp:
        root = _dataset(args, Path(tmp))
        data = AVWDataset(root)
        frames = data.num_frames
        shard_bytes = sum(s["bytes"] for s in data.shards)
        # the encoders alone, on frames already in memory
        rgb = np.concatenate([data.frames(i, "rgb", slice(None)) for i in range(min(len(data), 20))])
        audio = np.concatenate([data.frames(i, "audio", slice(None)) for i in range(min(len(data), 20))])
        t0 = time.perf_counter()
        for a in range(0, len(rgb), args.batch_size):
            image_encoder(rgb[a:a + args.batch_size])
            audio_encoder(audio[a:a + args.batch_size])
        enc_rate = len(rgb) / (time.perf_counter() - t0)
        times = []
        for r in range(args.repeats):
            result = encode_dataset(root, f"bench{r}", image_encoder, audio_encoder, {"bench": r},
                                    batch_size=args.batch_size)
            times.append(result.seconds)
        m = result.manifest
        latent_bytes = sum(f["bytes"] for f in m["files"])
        resume_t0 = time.perf_counter()
        skipped = encode_dataset(root, f"bench{args.repeats - 1}", image_encoder, audio_encoder,
                                 {"bench": args.repeats - 1}, batch_size=args.batch_size)
        resume_s = time.perf_counter() - resume_t0
        assert not skipped.encoded
        raw = sum(int(np.prod(f["shape"])) * 2 for f in m["fields"].values())
        kw = {"split": "train", "cache_trajectories": 8}
        cdit = _loader_rate(CDiTDataset(root, **kw), args.batches)
        latent = _loader_rate(LatentCDiTDataset(root, f"bench{args.repeats - 1}", **kw), args.batches)
        out = {
            "machine": {**machine_info(), "pinned_to_one_core": pinned},
            "dataset": str(args.data or "avw-tiny (built)"), "frames": frames,
            "image_size": data.config.trajectory.image_size, "latent_fields": m["fields"],
            "encode_frames_per_s": {"median": frames / float(np.median(times)), "min_s": min(times),
                                    "max_s": max(times)},
            "encoders_alone_frames_per_s": enc_rate,
            "recheck_complete_s": resume_s,
            "shard_bytes_per_frame": shard_bytes / frames,
            "latent_bytes_per_frame": latent_bytes / frames,
            "latent_raw_float16_bytes_per_frame": raw,
            "latent_over_shard": latent_bytes / shard_bytes,
            "loader_samples_per_s": {"CDiTDataset": cdit, "LatentCDiTDataset": latent},
        }
        data.close()
    print(out)
    save_json(out, args.out)


if __name__ == "__main__":
    main()
