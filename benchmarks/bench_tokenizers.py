"""Tokenizer throughput and latent size (issue 17's "Numbers": frames/s on one core, and on a GPU
when one is present; latent files against the HDF5 frames).

    python benchmarks/bench_tokenizers.py --data data/avw-64 [--image CKPT] [--audio CKPT] [--threads 1]

Encodes and decodes ``--frames`` real frames / clips of the dataset's test split in batches of
``--batch`` with the EMA weights, ``--repeats`` times (median reported), on the CPU with
``--threads`` torch threads and, when CUDA is available, on the GPU. Prints and saves JSON
(default benchmarks/results/tokenizers.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from avworld.data import AVWDataset
from avworld.train.tokenizer_checkpoint import load_tokenizer


def _frames(root: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    data = AVWDataset(root, split="test")
    rgb, audio, got = [], [], 0
    for i in range(len(data.trajectories)):
        t = data.trajectory(i)
        rgb.append(t["rgb"])
        audio.append(t["audio"].astype(np.float32))
        got += len(t["rgb"])
        if got >= n:
            break
    return np.concatenate(rgb)[:n], np.concatenate(audio)[:n]


def _rate(fn, x: torch.Tensor, batch: int, repeats: int, sync) -> float:
    """Median items per second of ``fn`` over ``x`` in batches."""
    rates = []
    with torch.no_grad():
        fn(x[:batch])  # warm-up
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            for a in range(0, len(x), batch):
                fn(x[a:a + batch])
            sync()
            rates.append(len(x) / (time.perf_counter() - t0))
    return statistics.median(rates)


def measure(model, x: np.ndarray, device: torch.device, batch: int, repeats: int) -> dict:
    model = model.to(device)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        z = model.encode_latents(xt[:batch])
    zt = z.repeat((len(x) + len(z) - 1) // len(z), *([1] * (z.dim() - 1)))[: len(x)]
    return {"device": str(device), "encode_per_s": round(_rate(model.encode_latents, xt, batch, repeats, sync), 1),
            "decode_per_s": round(_rate(model.decode_latents, zt, batch, repeats, sync), 1),
            "latent_shape": list(z.shape[1:])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="AVW dataset (its test split is encoded)")
    ap.add_argument("--image", default="image", help="image autoencoder (default: the shipped one)")
    ap.add_argument("--audio", default="audio", help="audio codec (default: the shipped one)")
    ap.add_argument("--frames", type=int, default=512, help="frames / clips per measurement (default 512)")
    ap.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats, median reported (default 3)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: one core)")
    ap.add_argument("--out", default="benchmarks/results/tokenizers.json", help="JSON output")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rgb, audio = _frames(args.data, args.frames)
    manifest = json.loads((Path(args.data) / "manifest.json").read_text())
    frames = sum(s["stats"]["frames"] for s in manifest["shards"])
    shard_bytes = sum(s["bytes"] for s in manifest["shards"]) / max(1, frames)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result = {"data": args.data, "frames": len(rgb), "threads": args.threads, "batch": args.batch,
              "shard_bytes_per_frame": round(shard_bytes, 1)}
    latent_values = 0
    for kind, which, x in (("image", args.image, rgb), ("audio", args.audio, audio)):
        model = load_tokenizer(which, kind=kind)
        rows = [measure(model, x, d, args.batch, args.repeats) for d in devices]
        latent_values += int(np.prod(rows[0]["latent_shape"]))
        result[kind] = {"checkpoint": model.checkpoint_info["path"], "runs": rows}
        for r in rows:
            print(f"{kind:5s} {r['device']:5s} encode {r['encode_per_s']:9.1f}/s  decode {r['decode_per_s']:9.1f}/s  "
                  f"latent {r['latent_shape']}")
    result["latent_bytes_per_frame_float16"] = 2 * latent_values
    result["latent_over_shard"] = round(2 * latent_values / shard_bytes, 4)
    print(f"latents {2 * latent_values} B/frame (float16, image + audio) vs shards {shard_bytes:.0f} B/frame: "
          f"{100 * result['latent_over_shard']:.1f} %")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
