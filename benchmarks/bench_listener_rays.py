"""How few listener rays suffice: the late field's directions against a 4,096-ray reference.

The directional late field (docs/acoustics.md) takes the directions of the reverberant energy at
the listener from a listener-side trace with diffuse rain (``AcousticConfig.listener_rays``,
``listener_bounces``). SoundSpaces 2's engine traces 5,000 rays from the listener. For source and
listener pairs in procedural houses (half with line of sight, half occluded), this measures, per
ray count, against the same pairs traced with ``--reference`` rays:

* the direction error: half the L1 distance between the fractions per time segment, band and
  direction bin (0: identical, 1: disjoint), averaged over segments and bands weighted by energy;
* the net arrival direction (the fractions' first moment at 1 kHz, 12-100 ms) error in degrees;
* the late part's ILD (after 50 ms, KEMAR, head facing +x and +y) error in dB;
* milliseconds per trace (one core).

    .venv/bin/python benchmarks/bench_listener_rays.py [--houses 3] [--pairs 8] [--rays 64 128 256 512 1024]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.acoustics.hrtf import load_hrtf  # noqa: E402
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine, PositionError  # noqa: E402
from avworld.acoustics.synthesis import binaural_parts  # noqa: E402
from avworld.geometry.procedural import HouseConfig, generate_house  # noqa: E402

FS = 16000


def _pairs(scene, eng, n: int, rng) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """(source, listener, line of sight) pairs, alternately in one room and in two different rooms."""
    rooms = scene.rooms
    out = []
    while len(out) < n:
        a = rooms[rng.integers(len(rooms))]
        b = a if len(out) % 2 == 0 else rooms[rng.integers(len(rooms))]
        pts = []
        for room, z in ((a, 1.2), (b, 1.5)):
            p = np.asarray(room.polygon)
            q = np.r_[rng.uniform(p.min(0) + 0.4, p.max(0) - 0.4), z]
            try:
                eng.check_position(q, "point")
            except PositionError:
                break
            pts.append(q)
        if len(pts) == 2 and np.linalg.norm(pts[0] - pts[1]) > 1.0:
            los = not bool(eng.rc.occluded(pts[0][None], pts[1][None])[0])
            out.append((pts[0], pts[1], los))
    return out


def _late_ild(srir, hrtf, yaw: float) -> float:
    _, _, tail = binaural_parts(srir, hrtf, yaw)
    e = np.mean(tail[:, int((srir.delay_s.min() + 0.05) * FS):] ** 2, axis=1) + 1e-30
    return float(10 * np.log10(e[0] / e[1]))


def _net_azimuth(tail_dir: np.ndarray) -> float:
    f = tail_dir[1:4, 3, :8].mean(axis=0)  # 1 kHz, 10-100 ms after the direct sound
    az = np.radians(45.0 * np.arange(8))
    return float(np.degrees(np.arctan2(f @ np.sin(az), f @ np.cos(az))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--houses", type=int, default=3)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=8, help="source/listener pairs per house")
    ap.add_argument("--rays", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    ap.add_argument("--reference", type=int, default=4096)
    ap.add_argument("--bounces", type=int, default=8)
    ap.add_argument("--out", default="benchmarks/results/listener_rays.json")
    args = ap.parse_args()
    pinned = pin_to_one_core()
    hrtf = load_hrtf("kemar", FS)
    rows = {n: {"l1": [], "az_err_deg": [], "ild_err_db": [], "ms": []} for n in args.rays}
    rng = np.random.default_rng(0)
    for h in range(args.houses):
        scene = generate_house(HouseConfig(num_rooms=args.rooms), seed=2000 + h)
        base = AcousticConfig(listener_bounces=args.bounces)
        ref_eng = AcousticEngine(scene, dataclasses.replace(base, listener_rays=args.reference))
        for s, lis, los in _pairs(scene, ref_eng, args.pairs, rng):
            ref = ref_eng.spatial_rir(s, lis)
            tot = ref.tail.sum(axis=1)  # band weights
            ref_ild = [_late_ild(ref, hrtf, y) for y in (0.0, np.pi / 2)]
            for n in args.rays:
                eng = AcousticEngine(scene, dataclasses.replace(base, listener_rays=n))
                eng.trace(eng.quantize(s))
                srir = eng.spatial_rir(s, lis)
                t0 = time.perf_counter()
                eng._tail_direction(srir.source, srir.listener, srir.tail)
                rows[n]["ms"].append(1e3 * (time.perf_counter() - t0))
                l1 = 0.5 * np.abs(srir.tail_dir - ref.tail_dir).sum(axis=2)  # (S, 7)
                rows[n]["l1"].append(float((l1.mean(axis=0) * tot).sum() / tot.sum()))
                d = _net_azimuth(srir.tail_dir) - _net_azimuth(ref.tail_dir)
                rows[n]["az_err_deg"].append(abs((d + 180.0) % 360.0 - 180.0))
                rows[n]["ild_err_db"].append(float(np.mean(np.abs(
                    np.array([_late_ild(srir, hrtf, y) for y in (0.0, np.pi / 2)]) - ref_ild))))
            print(f"house {h}: pair {'LOS' if los else 'occluded'} {np.linalg.norm(s - lis):.1f} m done", flush=True)
    result = {"reference_rays": args.reference, "bounces": args.bounces, "pinned": pinned, "per_rays": {},
              "machine": machine_info()}
    print(f"{'rays':>6} {'L1 to ref':>10} {'net az err':>11} {'late ILD err':>13} {'ms/trace':>9}")
    for n, r in rows.items():
        summary = {k: float(np.median(v)) for k, v in r.items()}
        summary["n"] = len(r["l1"])
        result["per_rays"][str(n)] = summary
        print(f"{n:>6} {summary['l1']:>10.3f} {summary['az_err_deg']:>10.1f}d {summary['ild_err_db']:>11.2f}dB "
              f"{summary['ms']:>9.2f}")
    print(f"saved {save_json(result, args.out)}")


if __name__ == "__main__":
    main()
