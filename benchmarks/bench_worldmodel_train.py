"""World-model training throughput per stage (issue 18's "Numbers": samples/s on CPU, GPU when lent).

    python benchmarks/bench_worldmodel_train.py --data data/avw-small-64 --latents NAME [--split val]
        [--preset cpu-tiny] [--steps 60] [--threads 1] [--device cpu|cuda] [--set KEY=VALUE ...]

Runs the real trainer (data, hybrid loss, backward, AdamW, EMA; no checkpoints inside the
timed steps) for ``--steps`` steps of each stage alone, in a temporary run directory, and
reports seconds per step and examples per second per stage, from the trainer's own
``perf/steps_per_s`` over the last ``--steps - warm`` steps. Prints and saves JSON (default
benchmarks/results/worldmodel_train.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import torch

from avworld.train.worldmodel import train_worldmodel
from avworld.train.worldmodel_config import resolve
from avworld.train.worldmodel_data import fit_latents, latents_info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--latents", required=True)
    p.add_argument("--split", default="train", help="split to train on (val: when only val latents exist)")
    p.add_argument("--preset", default="cpu-tiny")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warm", type=int, default=10, help="steps excluded from the timing")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default=None)
    p.add_argument("--set", action="append", default=[], dest="overrides")
    p.add_argument("--out", default="benchmarks/results/worldmodel_train.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    n, warm = args.steps, args.warm
    sets = [*args.overrides, f"train.split={args.split}", f"train.steps_per_stage=({n},{n},{n})",
            f"train.log_every={warm}", "train.checkpoint_every=1000000", "train.val_items=0"]
    model_cfg, cfg, explicit = resolve(args.preset, sets)
    model_cfg = fit_latents(model_cfg, latents_info(args.data, args.latents), explicit)
    report = {"preset": args.preset, "threads": args.threads, "device": args.device or "auto",
              "examples_per_step": cfg.batch_size * cfg.num_goals, "steps": n, "warm": warm, "stages": {}}
    for stage in (1, 2, 3):
        with tempfile.TemporaryDirectory() as tmp:
            train_worldmodel(model_cfg, cfg, args.data, args.latents, tmp, stages=(stage,), progress=False,
                             tensorboard=False, device=args.device, log=lambda *a: None)
            rows = [r for r in csv.DictReader(open(Path(tmp) / "metrics.csv")) if r.get("perf/steps_per_s")]
        first, last = rows[0], rows[-1]  # cumulative rates at steps `warm` and n
        t_first = int(first["step"]) / float(first["perf/steps_per_s"])
        t_last = int(last["step"]) / float(last["perf/steps_per_s"])
        s_per_step = (t_last - t_first) / (int(last["step"]) - int(first["step"]))
        report["stages"][stage] = {"s_per_step": round(s_per_step, 4),
                                   "examples_per_s": round(report["examples_per_step"] / s_per_step, 1)}
        print(f"stage {stage}: {s_per_step:.3f} s/step, {report['examples_per_step'] / s_per_step:.0f} examples/s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
