"""Benchmark: ``avworld/AudioGoal-v0`` steps per second, 1 and 2 processes.

128x128 RGB-D + the step's binaural audio + spectrogram (the default observation set),
``soundspaces2`` preset, episodes of the test split (2-4 room houses), random actions
without STOP (so episodes run long and the agent keeps reaching new positions, i.e. the
acoustic cache is mostly cold for the listener, as in training). Measured:

* 1 process: one env stepped in this process;
* 2 processes: ``AsyncVectorEnv`` with 2 workers (one per core), steps counted per env.

    .venv/bin/python benchmarks/bench_env.py [--steps 600] [--size 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402
from avworld.tasks import make_vector_env  # noqa: E402
from avworld.tasks.episodes import EpisodeConfig, make_episodes, split_scenes  # noqa: E402


def _actions(n: int, num_envs: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice([1, 1, 1, 2, 3], size=(n, num_envs))  # forward-biased, never STOP


def run(num_envs: int, episodes, steps: int, size: int) -> dict:
    vec = make_vector_env(num_envs, episodes, asynchronous=num_envs > 1, width=size, height=size)
    try:
        vec.reset(seed=0)
        acts = _actions(steps + 20, num_envs)
        for a in acts[:20]:  # warm-up: worlds built, HRTF and sound bank loaded
            vec.step(a)
        t0 = time.perf_counter()
        for a in acts[20:]:
            vec.step(a)
        dt = time.perf_counter() - t0
    finally:
        vec.close()
    return {"num_envs": num_envs, "steps": steps * num_envs, "seconds": dt, "steps_per_s": steps * num_envs / dt}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600, help="vector steps per measurement")
    p.add_argument("--size", type=int, default=128, help="image size in pixels")
    p.add_argument("--out", default="benchmarks/results/env.json")
    args = p.parse_args()
    episodes = make_episodes(split_scenes("test", 4, rooms=(2, 4)), per_scene=4, config=EpisodeConfig(), seed=0)
    results = [run(n, episodes, args.steps, args.size) for n in (1, 2)]
    for r in results:
        print(f"{r['num_envs']} process(es): {r['steps_per_s']:.0f} env steps/s ({r['steps']} steps, "
              f"{r['seconds']:.1f} s)")
    save_json({"machine": machine_info(), "size": args.size, "results": results}, args.out)


if __name__ == "__main__":
    main()
