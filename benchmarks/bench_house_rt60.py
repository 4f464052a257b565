"""Benchmark: reverberation time of the rooms of procedural houses (issue 16, item 3).

For every house (``HouseConfig(num_rooms=--rooms, acoustic_damping=d)``, seeds
0..--houses-1) and every room, ``--pairs`` source/listener pairs are drawn inside the room
(0.5 m from its walls, clear of furniture footprints, 1.0-1.7 m high, at least 1 m apart;
the same pairs for every damping setting) and simulated with the default acoustic engine.
A pair's RT60 is the T30 (Schroeder, -5..-35 dB) of its omnidirectional RIR, mean of the
500 Hz and 1 kHz octave bands; a room's RT60 is the mean over its pairs. Reported per
room type and damping setting: n, median, quartiles, min-max, and the median RIR length
(``SpatialRIR.duration_s``: the engine drops the tail 80 dB below its peak, capped at
``AcousticConfig.max_rir_s``), which sets the cost of rendering.

Targets (issue 16; furnished dwellings as measured e.g. by Diaz & Pedrero in 11,457
furnished bedrooms and living rooms, Building Acoustics 15 (2008), doi:10.1260/147547308784050179):
living rooms and bedrooms 0.3-0.7 s (median about 0.5 s), kitchens and bathrooms up to 1.0 s.

    .venv/bin/python benchmarks/bench_house_rt60.py --houses 50 [--rooms 6] [--damping 1.0 0.5 2.0] \
        [--pairs 2] [--no-contents] [--out benchmarks/results/house_rt60.json]

``--no-contents`` is an ablation: it zeroes the calibrated contents allowance
(``avworld.geometry.materials.CONTENTS_ABSORPTION``) to show what the tabulated soft
furnishings do alone. ``--damping none`` runs a generator without the knob (the numbers
before issue 16, ``benchmarks/results/house_rt60_before.json``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402
from avworld.acoustics.analysis import band_reverberation_times  # noqa: E402
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine  # noqa: E402
from avworld.acoustics.synthesis import mono_rir  # noqa: E402
from avworld.geometry.procedural import HouseConfig, generate_house  # noqa: E402

MID_BANDS = (2, 3)  # 500 Hz and 1 kHz octaves


def room_pairs(scene, room, n: int, rng: np.random.Generator, margin_m: float = 0.5, min_dist_m: float = 1.0):
    """Up to ``n`` (source, listener) pairs inside ``room``, clear of furniture footprints."""
    poly = room.polygon_array
    lo, hi = poly.min(axis=0) + margin_m, poly.max(axis=0) - margin_m
    if np.any(hi <= lo):
        return []
    boxes = [(np.asarray(o.bbox_min[:2]) - 0.25, np.asarray(o.bbox_max[:2]) + 0.25)
             for o in scene.objects if o.room == room.index]

    def free(p) -> bool:
        return not any(np.all(p > a) and np.all(p < b) for a, b in boxes)

    out = []
    for _ in range(200 * n):
        if len(out) == n:
            break
        s, m = rng.uniform(lo, hi), rng.uniform(lo, hi)
        if np.linalg.norm(s - m) >= min_dist_m and free(s) and free(m):
            out.append((np.array([*s, rng.uniform(1.0, 1.7)]), np.array([*m, rng.uniform(1.0, 1.7)])))
    return out


def measure(houses: int, rooms: int, damping: float | None, pairs: int) -> list[dict]:
    """One row per room: seed, room type, area, RT60 (mean of pairs), RIR length (median of pairs)."""
    has_knob = "acoustic_damping" in {f.name for f in dataclasses.fields(HouseConfig)}
    kw = {"num_rooms": rooms}
    if damping is not None:
        if not has_knob:
            raise SystemExit("this HouseConfig has no acoustic_damping; run with --damping none")
        kw["acoustic_damping"] = damping
    rows = []
    for seed in range(houses):
        scene = generate_house(HouseConfig(**kw), seed=seed)
        engine = AcousticEngine(scene, AcousticConfig())
        for room in scene.rooms:
            rng = np.random.default_rng([seed, room.index, 16])
            rts, durs = [], []
            for s, m in room_pairs(scene, room, pairs, rng):
                srir = engine.spatial_rir(s, m)
                rts.append(float(np.nanmean(band_reverberation_times(mono_rir(srir), srir.sample_rate_hz,
                                                                     MID_BANDS))))
                durs.append(srir.duration_s)
            if rts:
                rows.append({"seed": seed, "room": room.index, "type": room.room_type, "area_m2": room.area_m2,
                             "rt60_s": float(np.nanmean(rts)), "duration_s": float(np.median(durs))})
    return rows


def summarize(rows: list[dict]) -> dict:
    out = {}
    for t in sorted({r["type"] for r in rows}) + ["all"]:
        rt = np.array([r["rt60_s"] for r in rows if t in ("all", r["type"])])
        rt = rt[np.isfinite(rt)]
        dur = np.array([r["duration_s"] for r in rows if t in ("all", r["type"])])
        if len(rt) == 0:
            continue
        q = np.percentile(rt, [0, 25, 50, 75, 100])
        out[t] = {"n": int(len(rt)), "min": q[0], "q25": q[1], "median": q[2], "q75": q[3], "max": q[4],
                  "duration_median_s": float(np.median(dur))}
    return {k: {kk: (float(vv) if isinstance(vv, np.floating) else vv) for kk, vv in v.items()}
            for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--houses", type=int, default=10, help="seeds 0..N-1 (the documented run uses 50)")
    ap.add_argument("--rooms", type=int, default=6)
    ap.add_argument("--damping", nargs="+", default=["1.0", "0.5", "2.0"],
                    help="HouseConfig.acoustic_damping values; 'none' for a config without the knob")
    ap.add_argument("--pairs", type=int, default=2, help="source/listener pairs per room")
    ap.add_argument("--no-contents", action="store_true", help="ablation: no calibrated contents allowance")
    ap.add_argument("--out", default="benchmarks/results/house_rt60.json")
    args = ap.parse_args()
    if args.no_contents:
        import avworld.geometry.materials as materials

        materials.CONTENTS_ABSORPTION = (0.0,) * materials.NUM_BANDS
    settings = []
    for d in args.damping:
        damping = None if d.lower() == "none" else float(d)
        t0 = time.perf_counter()
        rows = measure(args.houses, args.rooms, damping, args.pairs)
        settings.append({"acoustic_damping": damping, "seconds": time.perf_counter() - t0,
                         "summary": summarize(rows), "rooms": rows})
    print(f"{'damping':>8} {'room type':>12} {'n':>4} {'median':>7} {'q25':>6} {'q75':>6} {'min':>6} {'max':>6} "
          f"{'RIR s':>6}")
    for st in settings:
        for t, s in st["summary"].items():
            print(f"{st['acoustic_damping']!s:>8} {t:>12} {s['n']:>4} {s['median']:>7.2f} {s['q25']:>6.2f} "
                  f"{s['q75']:>6.2f} {s['min']:>6.2f} {s['max']:>6.2f} {s['duration_median_s']:>6.2f}")
    result = {"benchmark": "house_rt60", "machine": machine_info(), "houses": args.houses, "num_rooms": args.rooms,
              "pairs_per_room": args.pairs, "contents_allowance": not args.no_contents,
              "rt60": "T30, mean of the 500 Hz and 1 kHz octave bands",
              "acoustic_config": dataclasses.asdict(AcousticConfig()), "settings": settings}
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
