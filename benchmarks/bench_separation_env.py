"""Benchmark: ``avworld/ActiveSeparation-v0`` env steps per second (one process, one core).

Episodes of the default task (2 sources >= 8 m apart in 5-8 room training houses, the
agent at the target, 20 steps of 1 s, ``grid`` preset), uniformly random actions, stepped
through whole episodes with resets. Variants: 128x128 RGB (the default), 64x64 RGB, and
audio only (``rgb=False``, what audio-only baselines use). Warm: every house built and
its first episode run before timing; the episodes themselves are new (seed per reset),
so sources are traced anew at each reset and listener positions are mostly cold.
Reported: steps/s over steps only, and "episode steps/s" including the resets (20
observations per reset: the reset's and 19 steps').

    .venv/bin/python benchmarks/bench_separation_env.py [--episodes 6] [--scenes 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.tasks.separation import ActiveSeparationEnv  # noqa: E402

VARIANTS = {"rgb128": {"width": 128, "height": 128}, "rgb64": {"width": 64, "height": 64}, "audio": {"rgb": False}}


def run(label: str, kwargs: dict, episodes: int, scenes: int) -> dict:
    env = ActiveSeparationEnv(num_scenes=scenes, **kwargs)
    rng = np.random.default_rng(0)
    for i in range(scenes):  # warm-up: build every house once
        env.reset(options={"episode": env.scene_episode(i, 10_000)})
    t_steps = t_resets = 0.0
    n_steps = 0
    for e in range(episodes):
        t0 = time.perf_counter()
        env.reset(seed=100 + e)
        t_resets += time.perf_counter() - t0
        done = False
        while not done:
            t0 = time.perf_counter()
            _, _, term, trunc, _ = env.step(int(rng.integers(3)))
            t_steps += time.perf_counter() - t0
            n_steps += 1
            done = term or trunc
    obs_count = n_steps + episodes
    return {"variant": label, "kwargs": kwargs, "episodes": episodes, "steps": n_steps,
            "step_s": t_steps / n_steps, "steps_per_s": n_steps / t_steps, "reset_s": t_resets / episodes,
            "episode_steps_per_s": obs_count / (t_steps + t_resets)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--scenes", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "separation_env.json"))
    args = ap.parse_args()
    pinned = pin_to_one_core()
    rows = [run(v, VARIANTS[v], args.episodes, args.scenes) for v in args.variants.split(",")]
    print(f"{'variant':<8} {'steps/s':>8} {'ms/step':>8} {'reset s':>8} {'episode steps/s':>16}")
    for r in rows:
        print(f"{r['variant']:<8} {r['steps_per_s']:8.1f} {1e3 * r['step_s']:8.1f} {r['reset_s']:8.2f} "
              f"{r['episode_steps_per_s']:16.1f}")
    path = save_json({"benchmark": "separation_env", "machine": machine_info(), "pinned_one_core": pinned,
                      "args": vars(args), "results": rows}, args.out)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
