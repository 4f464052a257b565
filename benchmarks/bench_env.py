"""Benchmark: ``avworld/AudioGoal-v0`` steps per second, 1 and 2 processes, and the default env as a client sees it.

Vector part: 128x128 RGB-D + the step's binaural audio + spectrogram (the default
observation set), ``soundspaces2`` preset, episodes of the test split (2-4 room houses),
random actions without STOP (so episodes run long and the agent keeps reaching new
positions, i.e. the acoustic cache is mostly cold for the listener, as in training):

* 1 process: one env stepped in this process;
* 2 processes: ``AsyncVectorEnv`` with 2 workers (one per core), steps counted per env.

Such a random walk keeps bumping into walls: ~86 % of its steps see a pose it saw shortly
before, which the world's view cache (``SimConfig.render_cache_items``, since issue 22) serves
without rendering. ``--view-cache both`` (default) measures with it and without it
(``render_cache_items=0``: every view rendered, as before the cache, so figures compare with
earlier runs).

Client part (``--part client``): ``gymnasium.make("avworld/AudioGoal-v0")`` with no options,
as a Stable-Baselines3 client makes it: with today's defaults (pooled episodes, every house
kept built), with ``episodes_per_scene=0`` (a new episode per reset, every house kept built),
and with the defaults before issue 22 (``episodes_per_scene=0, world_cache=4``: a new episode
per reset, 4 of the 8 houses kept built). Measured: the first ``--cold`` resets (worlds built, episodes
sampled), the warm-up (every pooled episode reset once), ``--resets`` warm resets, and
``--uniform`` steps of uniformly random actions (STOP included, as the action space samples
them: episodes last ~4 steps), reset on every episode end, as steps/s.

    .venv/bin/python benchmarks/bench_env.py [--steps 600] [--size 128] [--part all|vector|client]
        [--view-cache both|on|off] [--variants defaults,per-reset,before] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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


def run(num_envs: int, episodes, steps: int, size: int, view_cache: bool = True) -> dict:
    vec = make_vector_env(num_envs, episodes, asynchronous=num_envs > 1, width=size, height=size,
                          **({} if view_cache else {"render_cache_items": 0}))
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
    return {"num_envs": num_envs, "view_cache": view_cache, "steps": steps * num_envs, "seconds": dt,
            "steps_per_s": steps * num_envs / dt}


def client(label: str, kwargs: dict, cold: int, resets: int, uniform: int) -> dict:
    """The default env of ``gymnasium.make`` (plus ``kwargs``): cold resets, warm resets, uniform stepping."""
    import gymnasium as gym

    import avworld  # noqa: F401  (registers the ids)

    env = gym.make("avworld/AudioGoal-v0", **kwargs)
    u = env.unwrapped
    out = {"label": label, "kwargs": kwargs, "load_before": os.getloadavg()[0]}
    t0 = time.perf_counter()
    env.reset(seed=0)
    for _ in range(cold - 1):
        env.reset()
    out["cold_resets_per_s"] = cold / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    if u.config.episodes_per_scene:  # every pooled episode once: what a long run reaches by itself
        for i in range(len(u.scenes)):
            for k in range(u.config.episodes_per_scene):
                env.reset(options={"episode": u.pool_episode(i, k)})
    out["warm_up_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(resets):
        env.reset()
    out["warm_resets_per_s"] = resets / (time.perf_counter() - t0)
    env.action_space.seed(0)
    episodes = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(uniform):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            episodes += 1
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    # per CPU second of all its threads too (the renderer runs beside the audio): less sensitive to host steal
    out.update(uniform_steps_per_s=uniform / dt, uniform_steps_per_cpu_s=uniform / cpu, uniform_episodes=episodes,
               worlds_built=u.worlds.builds,
               load_after=os.getloadavg()[0])
    env.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600, help="vector steps per measurement (default 600)")
    p.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    p.add_argument("--part", choices=["all", "vector", "client"], default="all",
                   help="vector: 1 and 2 processes; client: the default env of gymnasium.make (default all)")
    p.add_argument("--cold", type=int, default=40, help="client: resets timed from a fresh env (default 40)")
    p.add_argument("--resets", type=int, default=300, help="client: warm resets timed (default 300)")
    p.add_argument("--uniform", type=int, default=1500, help="client: uniform random steps timed (default 1500)")
    p.add_argument("--variants", default="defaults,per-reset,before",
                   help="client: which envs (defaults; per-reset: a new episode per reset; before: the defaults "
                        "before issue 22), comma-separated (default all three)")
    p.add_argument("--repeats", type=int, default=1,
                   help="client: runs of each variant; the median of the uniform rate is printed (default 1)")
    p.add_argument("--view-cache", choices=["both", "on", "off"], default="both",
                   help="vector: with the world's view cache, without it (every view rendered), or both (default)")
    p.add_argument("--out", default="benchmarks/results/env.json", help="JSON results file")
    args = p.parse_args()
    results, clients = [], []
    if args.part in ("all", "vector"):
        if args.view_cache == "both":  # each setting in a fresh process: a second run in one process reads slower
            results = []
            for c in ("on", "off"):
                with tempfile.TemporaryDirectory() as tmp:
                    out = os.path.join(tmp, "env.json")
                    subprocess.run([sys.executable, __file__, "--part", "vector", "--view-cache", c, "--steps",
                                    str(args.steps), "--size", str(args.size), "--out", out], check=True,
                                   stdout=subprocess.DEVNULL)
                    with open(out) as f:
                        results += json.load(f)["results"]
        else:
            episodes = make_episodes(split_scenes("test", 4, rooms=(2, 4)), per_scene=4, config=EpisodeConfig(), seed=0)
            results = [run(n, episodes, args.steps, args.size, args.view_cache == "on") for n in (1, 2)]
        for r in results:
            print(f"{r['num_envs']} process(es), view cache {'on' if r['view_cache'] else 'off'}: "
                  f"{r['steps_per_s']:.0f} env steps/s ({r['steps']} steps, {r['seconds']:.1f} s)")
    if args.part in ("all", "client"):
        variants = {"defaults": ("defaults", {}),
                    "per-reset": ("a new episode per reset", {"episodes_per_scene": 0}),
                    "before": ("defaults before issue 22", {"episodes_per_scene": 0, "world_cache": 4})}
        chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in chosen if v not in variants]
        if unknown or args.repeats < 1:
            p.error(f"--variants takes {', '.join(variants)} (got {', '.join(unknown)}); --repeats >= 1")
        for _ in range(args.repeats):
            for v in chosen:
                label, kwargs = variants[v]
                c = client(label, kwargs, args.cold, args.resets, args.uniform)
                clients.append(c)
                print(f"gym.make, {label}: first {args.cold} resets {c['cold_resets_per_s']:.1f}/s, warm-up "
                      f"{c['warm_up_s']:.0f} s, warm resets {c['warm_resets_per_s']:.0f}/s, uniform random actions "
                      f"{c['uniform_steps_per_s']:.0f} steps/s ({c['uniform_steps_per_cpu_s']:.0f} per CPU s; "
                      f"{c['uniform_episodes']} episodes, "
                      f"{c['worlds_built']} worlds built; load {c['load_before']:.1f} -> {c['load_after']:.1f})",
                      flush=True)
        if args.repeats > 1:
            for v in chosen:
                rates = [c["uniform_steps_per_s"] for c in clients if c["label"] == variants[v][0]]
                print(f"{variants[v][0]}: median of {len(rates)} runs {np.median(rates):.0f} uniform random steps/s "
                      f"(range {min(rates):.0f}-{max(rates):.0f})")
    save_json({"machine": machine_info(), "size": args.size, "results": results, "client": clients}, args.out)


if __name__ == "__main__":
    main()
