"""Active-separation training throughput: f^P pretraining steps and active PPO env steps per second.

    python benchmarks/bench_separation_train.py [--threads 1] [--passive-steps 6] [--active-updates 2]
        [--size 32] [--out benchmarks/results/separation_train.json]

* passive: seconds per Adam step of f^P (Eq. 1) on a batch of 32 synthetic 1 s mixtures, cpu
  and gpu preset widths, spectra computed per step (as without the cache) and precomputed (cache);
* active: env steps per second of the active trainer (``SeparationPPOTrainer``, cpu preset, one
  env of ``avworld/ActiveSeparation-v0`` with ``--size`` RGB, an untrained f^P), the trainer's own
  ``perf/steps_per_s`` / collect / learn times over ``--active-updates`` 20-step updates.

Prints and saves JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def bench_passive(channels, steps: int, cached: bool) -> float:
    from avworld.models.separation import PassiveConfig, PassiveSeparator, passive_loss
    from avworld.train.separation_data import spectra

    rng = np.random.default_rng(0)
    batch = {"mixture": rng.standard_normal((32, 2, 16000)).astype(np.float32) * 0.05,
             "target_binaural": rng.standard_normal((32, 2, 16000)).astype(np.float32) * 0.05,
             "target_mono": rng.standard_normal((32, 16000)).astype(np.float32) * 0.05,
             "target_type": np.arange(32)}
    model = PassiveSeparator(PassiveConfig(channels=channels, num_types=122))
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    pre = spectra(batch)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        s = pre if cached else spectra(batch)
        loss, _ = passive_loss(model(s["mixture"], s["target_type"]), s["target_binaural"], s["target_mono"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))


def bench_active(updates: int, size: int) -> dict:
    from avworld.models.separation import PassiveConfig, PassiveSeparator
    from avworld.train.separation_active import build_trainer, make_separation_envs
    from avworld.train.separation_config import resolve_active

    groups = resolve_active("cpu", ["ppo.num_envs=1", f"ppo.total_steps={20 * updates}", f"env.width={size}",
                                    f"env.height={size}", "env.num_scenes=1"])
    passive = PassiveSeparator(PassiveConfig(channels=(32, 64, 128, 256, 256), num_types=122)).eval()
    envs = make_separation_envs(groups["env"], 1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tr = build_trainer(envs, passive, groups, out_dir=Path(tmp), tensorboard=False)
            rows = []
            tr.reset_envs()
            for _ in range(updates):
                t0 = time.perf_counter()
                nv, _ = tr.collect()
                t1 = time.perf_counter()
                tr.learn(nv)
                t2 = time.perf_counter()
                tr.update += 1
                rows.append((t1 - t0, t2 - t1))
    finally:
        envs.close()
    collect = float(np.mean([r[0] for r in rows]))
    learn = float(np.mean([r[1] for r in rows]))
    return {"env_steps_per_s": 20 / (collect + learn), "collect_s_per_update": collect,
            "learn_s_per_update": learn, "collect_steps_per_s": 20 / collect, "size": size, "updates": updates}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--passive-steps", type=int, default=6)
    p.add_argument("--active-updates", type=int, default=2)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--out", default="benchmarks/results/separation_train.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "passive_s_per_step_batch32": {}}
    for name, ch in (("cpu", (32, 64, 128, 256, 256)), ("gpu", (64, 128, 256, 512, 512))):
        for cached in (False, True):
            key = f"{name}{'_cached' if cached else ''}"
            result["passive_s_per_step_batch32"][key] = bench_passive(ch, args.passive_steps, cached)
    if args.active_updates > 0:
        result["active"] = bench_active(args.active_updates, args.size)
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
