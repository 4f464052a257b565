"""Diagnostic: how much louder is the goal's sound when the agent stands at the goal?

An AudioGoal agent must call STOP within 1 m of the sound source. Its only cue that it
has arrived is the sound itself, mostly its level. In a reverberant room the diffuse
field dominates beyond the critical distance, and the level barely changes with
distance. This probe puts a source (1 m above the floor, as the episodes do) in rooms of
procedural houses and a listener (ears at 1.5 m, facing +x) at growing horizontal
distances in line of sight. For each it reports, from the binaural RIR:

* the level (10 log10 of the RIR energy, both ears), relative to the level at 1 m;
* the direct-to-reverberant ratio (direct: 2.5 ms around the direct arrival);
* the room's T30 (Schroeder, -5 to -35 dB, left ear, at the largest distance).

Free field would give -20 log10(r) (6 dB per doubling of distance).

    .venv/bin/python benchmarks/probe_goal_level.py [--houses 0,3,5] [--rooms 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402
from avworld.acoustics.analysis import reverberation_time  # noqa: E402
from avworld.acoustics.bands import SPEED_OF_SOUND_M_S  # noqa: E402
from avworld.geometry.spec import load_scene_spec  # noqa: E402
from avworld.sim.config import SimConfig  # noqa: E402
from avworld.sim.world import SharedWorld  # noqa: E402

DISTANCES_M = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
SOURCE_Z, EAR_Z = 1.0, 1.5


def probe_room(world: SharedWorld, room) -> dict | None:
    """Level, DRR and T30 along a line from the room's centre, or None if the line is blocked."""
    c = room.polygon_array.mean(0)
    fs = world.config.sample_rate_hz
    for direction in ((0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)):
        u = np.array(direction)
        far = c + u * DISTANCES_M[-1] / 2
        pts = [far - u * d for d in DISTANCES_M]
        if not all(world.nav.is_navigable(p) and room.contains(p[None])[0] for p in pts):
            continue
        if not world.nav.segment_free(pts[0], pts[-1]):
            continue
        src = np.array([*far, SOURCE_Z])
        rows = []
        for d, p in zip(DISTANCES_M, pts):
            rir = world.binaural(src, np.array([*p, EAR_Z]), 0.0)
            e = rir.astype(np.float64) ** 2
            r = float(np.hypot(d, EAR_Z - SOURCE_Z))
            t0 = int(round(r / SPEED_OF_SOUND_M_S * fs))
            w0, w1 = max(t0 - int(0.0005 * fs), 0), t0 + int(0.002 * fs)
            direct, total = float(e[:, w0:w1].sum()), float(e.sum())
            rows.append({"distance_m": d, "path_m": r, "level_db": 10 * np.log10(total),
                         "drr_db": 10 * np.log10(direct / max(total - direct, 1e-30))})
        t30 = reverberation_time(rir[0], fs)  # the farthest listener's RIR: the room's decay
        ref = next(x["level_db"] for x in rows if x["distance_m"] == 1.0)
        for x in rows:
            x["level_re_1m_db"] = x["level_db"] - ref
            x["free_field_re_1m_db"] = -20 * np.log10(x["path_m"] / np.hypot(1.0, EAR_Z - SOURCE_Z))
        return {"room": room.index, "type": room.room_type, "area_m2": room.area_m2, "t30_s": t30,
                "rows": rows}
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--houses", default="0,3,5", help="procedural house seeds")
    ap.add_argument("--rooms", type=int, default=4, help="rooms per house")
    ap.add_argument("--out", default="benchmarks/results/goal_level.json")
    args = ap.parse_args()
    t = time.perf_counter()
    results = []
    for seed in (int(s) for s in args.houses.split(",")):
        world = SharedWorld(load_scene_spec(f"house:{seed}:{args.rooms}"), SimConfig())
        for room in world.scene.rooms:
            res = probe_room(world, room)
            if res is None:
                print(f"house {seed} room {room.index} ({room.room_type}): no free 3 m line, skipped")
                continue
            res["house"] = seed
            results.append(res)
            cells = "  ".join(f"{x['distance_m']:.1f} m {x['level_re_1m_db']:+5.1f} dB (DRR {x['drr_db']:+5.1f})"
                              for x in res["rows"])
            print(f"house {seed} {res['type']:>12} ({res['area_m2']:4.1f} m2, T30 {res['t30_s']:.2f} s): {cells}")
    r1 = np.hypot(1.0, EAR_Z - SOURCE_Z)
    free = "  ".join(f"{d:.1f} m {-20 * np.log10(np.hypot(d, EAR_Z - SOURCE_Z) / r1):+5.1f}" for d in DISTANCES_M)
    print(f"free field: {free}")
    at = {d: i for i, d in enumerate(DISTANCES_M)}
    step = [x["rows"][at[1.0]]["level_db"] - x["rows"][at[1.5]]["level_db"] for x in results]
    print(f"level at 1.0 m minus level at 1.5 m: mean {np.mean(step):.2f} dB over {len(step)} rooms "
          f"(free field {20 * np.log10(np.hypot(1.5, 0.5) / np.hypot(1.0, 0.5)):.2f} dB)")
    out = {"benchmark": "goal_level", "machine": machine_info(), "seconds": time.perf_counter() - t,
           "distances_m": DISTANCES_M, "rooms": results, "level_1m_minus_1p5m_db_mean": float(np.mean(step))}
    print("saved", save_json(out, args.out))


if __name__ == "__main__":
    main()
