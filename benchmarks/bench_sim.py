"""Benchmark: simulator steps per second (RGB-D 128x128 + binaural audio + spectrogram).

One source (the looping telephone ring) in a 6-room furnished house, preset
``soundspaces2`` (0.25 m, 10 deg, 0.25 s steps), one process, for each ``--threads`` value
(``SimConfig.threads``) pinned to that many cores (1 thread: one core, as before):

* warm: a 300-step random-action episode replayed, every RIR already cached (the episode
  is run once untimed first in every round; since issue 22 a pose revisited within the
  world's last 64 views is not rendered again, as for any client);
* cold listener: every step at a new listener position (cache cleared each step; the
  static source's ray trace is reused, as in navigation);
* cold source: the source also moves every step (new ray trace each step);
* memory: process RSS with a warm cache of ``--cache-positions`` spatial RIRs.

    .venv/bin/python benchmarks/bench_sim.py [--steps 300] [--cache-positions 10000] [--threads 1 2]
        [--rounds 3]

Each case is run ``--rounds`` times, alternating thread counts; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402
from avworld.geometry.procedural import HouseConfig, generate_house  # noqa: E402
from avworld.sim.config import SimConfig  # noqa: E402
from avworld.sim.simulator import Simulator  # noqa: E402
from avworld.sim.sources import SoundSourceSpec  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


_ALLOWED = sorted(os.sched_getaffinity(0))


def pin_cores(k: int) -> list[int]:
    """Restrict this thread (and the threads it starts) to the first ``k`` cores the process
    was allowed at start; returns them."""
    cores = _ALLOWED[:k]
    os.sched_setaffinity(0, set(cores))
    return cores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--cache-positions", type=int, default=10000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/sim.json")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    allowed = _ALLOWED
    threads = [t for t in args.threads if t <= len(allowed)]
    scene = generate_house(HouseConfig(num_rooms=6), seed=0)
    sims = {}
    t0 = time.perf_counter()
    for k in threads:
        cfg = SimConfig.preset("soundspaces2", binaural_cache_items=4 * args.steps, threads=k)
        sims[k] = Simulator(scene, cfg)
    setup_s = (time.perf_counter() - t0) / len(threads)
    sim0 = sims[threads[0]]
    nav = sim0.world.nav
    rng = np.random.default_rng(0)
    src_xy = nav.sample_navigable(rng, 1)[0]
    source = SoundSourceSpec((float(src_xy[0]), float(src_xy[1]), 1.0), "telephone")
    start = nav.sample_navigable(rng, 1)[0]
    pose = (float(start[0]), float(start[1]), 0.0)
    actions = rng.choice([1, 1, 2, 3], size=args.steps)

    def episode(sim, clear: str | None = None) -> float:
        sim.reset(agent_pose=pose, sources=[source], seed=1)
        t = time.perf_counter()
        for a in actions:
            if clear in ("listener", "source"):
                sim.world.rirs._mem.clear()
                sim.world.forget_rendered()
            if clear == "source":
                sim.world.engine._traces.clear()
            sim.step(int(a))
        return args.steps / (time.perf_counter() - t)

    first = {}
    for k in threads:
        pin_cores(k)
        first[k] = episode(sims[k])
    cases = {"warm": None, "cold_listener": "listener", "cold_source": "source"}
    runs = {(k, c): [] for k in threads for c in cases}
    observations = {}
    for _ in range(args.rounds):
        for k in threads:
            pin_cores(k)
            episode(sims[k])  # fill the caches again (the cold cases of the last round cleared them)
            for c, clear in cases.items():
                runs[(k, c)].append(episode(sims[k], clear))
            observations[k] = sims[k].observe()
    # the same episode gives the same bytes whatever the thread count
    ref = observations[threads[0]]
    identical = all(
        all(np.array_equal(np.asarray(o[key]), np.asarray(ref[key])) for key in ref) for o in observations.values()
    )
    per_threads = {
        str(k): {
            "cores": k,
            "first_episode_steps_per_s": first[k],
            **{f"{c}_steps_per_s": float(np.median(runs[(k, c)])) for c in cases},
            **{f"{c}_runs": runs[(k, c)] for c in cases},
        }
        for k in threads
    }
    # memory with a warm cache of many positions
    pin_cores(1)
    sim = sims[threads[0]]
    rss0 = rss_mib()
    pts = nav.sample_navigable(np.random.default_rng(1), args.cache_positions)
    t = time.perf_counter()
    for p in pts:
        sim.world.rirs.get(source.position, sim.world.ear_position(*p))
    fill_s = time.perf_counter() - t
    result = {
        "benchmark": "simulator_steps",
        "machine": machine_info(),
        "cores_allowed": len(allowed),
        "scene_faces": scene.num_faces,
        "setup_s": setup_s,
        "threads": per_threads,
        "identical_across_threads": identical,
        "obs_shapes": {k: list(np.shape(v)) for k, v in ref.items()},
        "cache_positions": len(pts),
        "cache_fill_s": fill_s,
        "cache_mib": sim.world.rirs.nbytes / 2**20,
        "rss_mib_before_fill": rss0,
        "rss_mib_after_fill": rss_mib(),
    }
    for k, v in result.items():
        if k not in ("machine", "obs_shapes", "threads"):
            print(f"{k:>28}: {v}")
    for k, v in per_threads.items():
        print(f"threads={k}: " + ", ".join(f"{c} {v[f'{c}_steps_per_s']:.0f}" for c in cases) + " steps/s")
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
