"""Benchmark: simulator steps per second (RGB-D 128x128 + binaural audio + spectrogram).

One source (the looping telephone ring) in a 6-room furnished house, preset
``soundspaces2`` (0.25 m, 10 deg, 0.25 s steps), one process pinned to one core:

* warm: a 300-step random-action episode replayed, every RIR already cached;
* cold listener: every step at a new listener position (cache cleared each step; the
  static source's ray trace is reused, as in navigation);
* cold source: the source also moves every step (new ray trace each step);
* memory: process RSS with a warm cache of ``--cache-positions`` spatial RIRs.

    .venv/bin/python benchmarks/bench_sim.py [--steps 300] [--cache-positions 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--cache-positions", type=int, default=10000)
    ap.add_argument("--out", default="benchmarks/results/sim.json")
    args = ap.parse_args()
    pinned = pin_to_one_core()
    scene = generate_house(HouseConfig(num_rooms=6), seed=0)
    cfg = SimConfig.preset("soundspaces2", binaural_cache_items=4 * args.steps)
    t0 = time.perf_counter()
    sim = Simulator(scene, cfg)
    setup_s = time.perf_counter() - t0
    nav = sim.world.nav
    rng = np.random.default_rng(0)
    src_xy = nav.sample_navigable(rng, 1)[0]
    source = SoundSourceSpec((float(src_xy[0]), float(src_xy[1]), 1.0), "telephone")
    start = nav.sample_navigable(rng, 1)[0]
    pose = (float(start[0]), float(start[1]), 0.0)
    actions = rng.choice([1, 1, 2, 3], size=args.steps)

    def episode(clear: str | None = None) -> float:
        sim.reset(agent_pose=pose, sources=[source], seed=1)
        t = time.perf_counter()
        for a in actions:
            if clear == "listener":
                sim.world.rirs._mem.clear()
                sim.world._binaural.clear()
            elif clear == "source":
                sim.world.rirs._mem.clear()
                sim.world._binaural.clear()
                sim.world.engine._traces.clear()
            sim.step(int(a))
        return args.steps / (time.perf_counter() - t)

    first = episode()
    warm = max(episode(), episode())
    cold_listener = episode("listener")
    cold_source = episode("source")
    obs = sim.observe()
    # memory with a warm cache of many positions
    rss0 = rss_mib()
    pts = nav.sample_navigable(np.random.default_rng(1), args.cache_positions)
    t = time.perf_counter()
    for p in pts:
        sim.world.rirs.get(source.position, sim.world.ear_position(*p))
    fill_s = time.perf_counter() - t
    result = {
        "benchmark": "simulator_steps",
        "pinned_one_core": pinned,
        "machine": machine_info(),
        "scene_faces": scene.num_faces,
        "setup_s": setup_s,
        "first_episode_steps_per_s": first,
        "warm_steps_per_s": warm,
        "cold_listener_steps_per_s": cold_listener,
        "cold_source_steps_per_s": cold_source,
        "obs_shapes": {k: list(np.shape(v)) for k, v in obs.items()},
        "cache_positions": len(pts),
        "cache_fill_s": fill_s,
        "cache_mib": sim.world.rirs.nbytes / 2**20,
        "rss_mib_before_fill": rss0,
        "rss_mib_after_fill": rss_mib(),
    }
    for k, v in result.items():
        if k not in ("machine", "obs_shapes"):
            print(f"{k:>28}: {v}")
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
