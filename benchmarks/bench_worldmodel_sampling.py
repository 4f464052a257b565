"""World-model sampling time per prediction against the number of denoising steps (issue 18's "Numbers").

    python benchmarks/bench_worldmodel_sampling.py [--checkpoint RUN|PT] [--preset cpu-tiny]
        [--steps 1,2,5,10,25,50,100] [--batch 1,16] [--samplers ddim,ddpm] [--repeats 3] [--threads 1]
        [--device cpu|cuda] [--out benchmarks/results/worldmodel_sampling.json]

Times :func:`avworld.models.worldmodel.generate.fixed_step` (all modalities of the model's stage,
latents only, no decoding) on random context latents of the model's shapes: the time does not
depend on the weights, so without ``--checkpoint`` an untrained model of ``--preset`` is timed.
Reports the median over ``--repeats`` of seconds per prediction (call time / batch). Prints and
saves JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, avcdit_config
from avworld.models.worldmodel.generate import fixed_step, modalities


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="world-model run or .pt (default: untrained --preset)")
    p.add_argument("--preset", default="cpu-tiny")
    p.add_argument("--steps", default="1,2,5,10,25,50,100")
    p.add_argument("--batch", default="1,16")
    p.add_argument("--samplers", default="ddim,ddpm")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="benchmarks/results/worldmodel_sampling.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from avworld.train.worldmodel_checkpoint import load_worldmodel

        model = load_worldmodel(args.checkpoint)
    else:
        model = AVCDiT(avcdit_config(args.preset), seed=0)
        model.diffusion = GaussianDiffusion(1000, "linear", learn_sigma=model.config.learn_sigma)
        model.stage = 3
    model = model.to(args.device).eval()
    cfg = model.config
    _, ctx_names = modalities(model)
    rows = []
    for b in _ints(args.batch):
        g = torch.Generator().manual_seed(0)
        ctx = {"rgb": torch.randn(b, cfg.context_frames, cfg.rgb_channels, cfg.rgb_size, cfg.rgb_size, generator=g),
               "audio": torch.randn(b, cfg.context_frames, cfg.audio_dim, cfg.audio_frames, generator=g)}
        ctx = {k: v.to(args.device) for k, v in ctx.items() if k in ctx_names}
        action = (torch.randn(b, 3, generator=g) * 0.3).to(args.device)
        for sampler in args.samplers.split(","):
            for steps in _ints(args.steps):
                times = []
                for r in range(args.repeats + 1):  # the first call warms up
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    fixed_step(model, ctx, 4, action, sampler=sampler, steps=steps, seed=r)
                    if args.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    if r:
                        times.append(time.perf_counter() - t0)
                per = statistics.median(times) / b
                rows.append({"batch": b, "sampler": sampler, "steps": steps, "s_per_prediction": per})
                print(f"batch {b:3d} {sampler:4s} {steps:4d} steps: {per * 1000:9.1f} ms per prediction", flush=True)
    res = {"checkpoint": args.checkpoint, "preset": None if args.checkpoint else args.preset,
           "parameters": sum(q.numel() for q in model.parameters()), "device": args.device,
           "threads": args.threads, "machine": platform.processor() or platform.machine(), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
