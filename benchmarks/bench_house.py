"""Benchmark: procedural house generation plus navigation grid, per house.

Target (issue 2): under 1 s per house (generation + NavGrid at 0.05 m) on one core.

    .venv/bin/python benchmarks/bench_house.py [--houses 20] [--rooms 6] [--out benchmarks/results/house.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.geometry.navigation import NavConfig, NavGrid  # noqa: E402
from avworld.geometry.procedural import HouseConfig, generate_house  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--houses", type=int, default=20)
    ap.add_argument("--rooms", type=int, nargs="+", default=[3, 6, 12])
    ap.add_argument("--out", default="benchmarks/results/house.json")
    args = ap.parse_args()
    pinned = pin_to_one_core()
    rows = []
    for rooms in args.rooms:
        gen, nav_t, faces, area = [], [], [], []
        for seed in range(args.houses):
            t0 = time.perf_counter()
            scene = generate_house(HouseConfig(num_rooms=rooms), seed=seed)
            t1 = time.perf_counter()
            nav = NavGrid.build(scene, NavConfig())
            t2 = time.perf_counter()
            gen.append(t1 - t0)
            nav_t.append(t2 - t1)
            faces.append(scene.num_faces)
            area.append(nav.navigable_area_m2)
        total = np.array(gen) + np.array(nav_t)
        rows.append({
            "rooms": rooms,
            "houses": args.houses,
            "generate_ms_mean": 1e3 * float(np.mean(gen)),
            "navgrid_ms_mean": 1e3 * float(np.mean(nav_t)),
            "total_ms_mean": 1e3 * float(total.mean()),
            "total_ms_max": 1e3 * float(total.max()),
            "faces_mean": float(np.mean(faces)),
            "navigable_m2_mean": float(np.mean(area)),
        })
    print(f"{'rooms':>5} {'gen ms':>8} {'navgrid ms':>10} {'total ms':>9} {'max ms':>8} {'faces':>7} {'nav m2':>7}")
    for r in rows:
        print(f"{r['rooms']:>5} {r['generate_ms_mean']:>8.1f} {r['navgrid_ms_mean']:>10.1f} {r['total_ms_mean']:>9.1f} "
              f"{r['total_ms_max']:>8.1f} {r['faces_mean']:>7.0f} {r['navigable_m2_mean']:>7.1f}")
    result = {"benchmark": "house_generation", "pinned_one_core": pinned, "machine": machine_info(),
              "target_ms": 1000.0, "rows": rows}
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
