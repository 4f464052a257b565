"""Benchmark: binaural RIRs vs pyroomacoustics' hybrid model, same rooms, same run.

Rooms: a 6x4x3 m shoebox, an L-shaped room and two rooms joined by a doorway, all with
one uniform material (absorption 0.2, scattering 0.5), sources/listeners drawn with a
fixed seed. For every pair:

* pyroomacoustics: ``Room`` + ``compute_rir()`` with ISM order 3 + ray tracing
  (default rays), air absorption off, 16 kHz — the whole mono RIR;
* avworld, cold: a new source and listener every time (ray trace, image sources,
  synthesis) plus binauralization with the KEMAR HRTF;
* avworld, warm: same source, new listener (the source's ray trace is reused, as in
  navigation with a static sound);
* avworld, new yaw only: re-binauralize a cached spatial RIR for a new head yaw.

RT60 (T30) of both against Eyring (shoebox) and against each other is reported, plus
the memory of a spatial RIR. For the shoebox also: pyroomacoustics' T30 with its energy
threshold out of the way (``energy_thres=1e-13``; its default cuts its diffuse rain, see
docs/acoustics.md) and the T30 of an independent particle-transport model of the same walls
(tests/acoustics/transport_reference.py), which is what the room does (Eyring is not exact).

    .venv/bin/python benchmarks/bench_rir.py [--pairs 10] [--rounds 3] [--out benchmarks/results/rir.json]

Every pair is measured ``--rounds`` times, the rounds interleaving avworld and
pyroomacoustics; a pair's time is its median over rounds, a room's time the mean over pairs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.acoustics.analysis import eyring_rt60, reverberation_time  # noqa: E402
from avworld.acoustics.hrtf import load_hrtf  # noqa: E402
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine  # noqa: E402
from avworld.acoustics.synthesis import binaural_rir, mono_rir  # noqa: E402
from avworld.geometry.builder import extruded_room  # noqa: E402
from avworld.geometry.materials import Material  # noqa: E402


def _transport_t30(*args):
    """tests/acoustics/transport_reference.py's particle-transport T30 (loaded by path)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "acoustics" / "transport_reference.py"
    spec = importlib.util.spec_from_file_location("transport_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.transport_t30(*args)

FS = 16000
H = 3.0
ROOMS = {
    "shoebox": [(0, 0), (6, 0), (6, 4), (0, 4)],
    "l_shape": [(0, 0), (8, 0), (8, 3), (3, 3), (3, 7), (0, 7)],
    "two_rooms_door": [(0, 0), (5, 0), (5, 1), (5.2, 1), (5.2, 0), (10.2, 0), (10.2, 4), (5.2, 4), (5.2, 2),
                       (5, 2), (5, 4), (0, 4)],
}


def _inside(corners, p) -> bool:
    from avworld.geometry.scene import Room

    return bool(Room(0, "r", tuple(map(tuple, corners)), 0, H).contains(np.asarray(p[:2])))


def _pairs(corners, n, rng):
    c = np.asarray(corners, float)
    lo, hi = c.min(axis=0) + 0.5, c.max(axis=0) - 0.5
    out = []
    while len(out) < n:
        s = np.array([*rng.uniform(lo, hi), rng.uniform(1.0, 2.0)])
        m = np.array([*rng.uniform(lo, hi), rng.uniform(1.0, 2.0)])
        if _inside(c, s) and _inside(c, m) and np.linalg.norm(s - m) > 1.0:
            out.append((s, m))
    return out


def _pra_rir(pra, corners, absorption, scattering, s, m, energy_thres=1e-7):
    mat = pra.Material(absorption, scattering)
    room = pra.Room.from_corners(np.asarray(corners, float).T, fs=FS, materials=mat, max_order=3,
                                 ray_tracing=True, air_absorption=False)
    room.extrude(H, materials=mat)
    room.set_ray_tracing(energy_thres=energy_thres)
    room.add_source(list(s))
    room.add_microphone(np.asarray(m)[:, None])
    room.compute_rir()
    return np.asarray(room.rir[0][0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="repetitions per pair (its median is kept)")
    ap.add_argument("--absorption", type=float, default=0.2)
    ap.add_argument("--scattering", type=float, default=0.5)
    ap.add_argument("--out", default="benchmarks/results/rir.json")
    args = ap.parse_args()
    import pyroomacoustics as pra

    pinned = pin_to_one_core()
    hrtf = load_hrtf("kemar", FS)
    mat = Material("uniform", (0.7, 0.7, 0.7), (args.absorption,) * 7, (args.scattering,) * 7, (40.0,) * 7)
    cfg = AcousticConfig(sample_rate_hz=FS, air_absorption=False, max_rir_s=2.0)
    rows = []
    for name, corners in ROOMS.items():
        rng = np.random.default_rng(0)
        pairs = _pairs(corners, args.pairs, rng)
        yaws = rng.uniform(-np.pi, np.pi, len(pairs))
        t0 = time.perf_counter()
        engine = AcousticEngine(extruded_room(corners, H, mat), cfg)
        engine.rc.embree  # noqa: B018 - build the BVH outside the timed loop
        t_setup = time.perf_counter() - t0
        binaural_rir(engine.spatial_rir(*pairs[0]), hrtf, 0.0)  # warm caches (HRTF spectra, noise bank)
        # per pair and round: cold, warm, new-yaw and pyroomacoustics times; rounds interleave the
        # engines so that load from other processes hits both alike, and each pair keeps its median
        times = np.zeros((args.rounds, len(pairs), 4))
        rt_ours, rt_pra, rt_pra_full, mem = [], [], [], []
        for r in range(args.rounds):
            for i, (s, m) in enumerate(pairs):
                engine._traces.clear()  # a new source: ray trace, image sources, tail, synthesis
                engine._image_cache.clear()
                t0 = time.perf_counter()
                srir = engine.spatial_rir(s, m)
                h2 = binaural_rir(srir, hrtf, float(yaws[i]))
                times[r, i, 0] = time.perf_counter() - t0
                t0 = time.perf_counter()
                binaural_rir(engine.spatial_rir(s, m + np.array([0.1, 0.05, 0.0])), hrtf, 0.3)
                times[r, i, 1] = time.perf_counter() - t0
                t0 = time.perf_counter()
                binaural_rir(srir, hrtf, 1.234)
                times[r, i, 2] = time.perf_counter() - t0
                t0 = time.perf_counter()
                hp = _pra_rir(pra, corners, args.absorption, args.scattering, s, m)
                times[r, i, 3] = time.perf_counter() - t0
                assert h2.shape[0] == 2
                if r == 0:
                    mem.append(srir.nbytes)
                    rt_ours.append(reverberation_time(mono_rir(srir), FS))
                    rt_pra.append(reverberation_time(hp, FS))
                    # (untimed) the same with pyroomacoustics' energy threshold out of the way: its
                    # default 1e-7 is compared with absolute diffuse-rain energies (~1e-5 per hit),
                    # which drops the scattered part of its tail from ~0.1 s on
                    hp_full = _pra_rir(pra, corners, args.absorption, args.scattering, s, m, energy_thres=1e-13)
                    rt_pra_full.append(reverberation_time(hp_full, FS))
        cold, warm, yaw, pra_t = np.median(times, axis=0).T  # (pairs,) each
        row = {
            "room": name,
            "pairs": len(pairs),
            "rounds": args.rounds,
            "engine_setup_ms": 1e3 * t_setup,
            "ours_cold_ms": 1e3 * float(np.mean(cold)),
            "ours_warm_ms": 1e3 * float(np.mean(warm)),
            "ours_new_yaw_ms": 1e3 * float(np.mean(yaw)),
            "pra_hybrid_ms": 1e3 * float(np.mean(pra_t)),
            "speedup_cold": float(np.mean(pra_t) / np.mean(cold)),
            "speedup_warm": float(np.mean(pra_t) / np.mean(warm)),
            "rt60_ours_s": float(np.nanmean(rt_ours)),
            "rt60_pra_s": float(np.nanmean(rt_pra)),
            "rt60_pra_no_threshold_s": float(np.nanmean(rt_pra_full)),
            "spatial_rir_kb_max": max(mem) / 1024,
        }
        if name == "shoebox":
            ey = eyring_rt60(72.0, 108.0, args.absorption)
            row["rt60_eyring_s"] = ey
            row["rt60_err_ours_vs_eyring"] = float(np.nanmean(np.abs(np.array(rt_ours) / ey - 1)))
            row["rt60_err_pra_vs_eyring"] = float(np.nanmean(np.abs(np.array(rt_pra) / ey - 1)))
            row["rt60_err_pra_no_threshold_vs_eyring"] = float(np.nanmean(np.abs(np.array(rt_pra_full) / ey - 1)))
            # what walls of this absorption and scattering do (analytic particle transport in the box)
            ref = _transport_t30((6.0, 4.0, H), pairs[0][0], args.absorption, args.scattering)
            row["rt60_transport_reference_s"] = ref
            row["rt60_err_ours_vs_transport"] = float(np.nanmean(np.abs(np.array(rt_ours) / ref - 1)))
            row["rt60_err_pra_vs_transport"] = float(np.nanmean(np.abs(np.array(rt_pra) / ref - 1)))
        rows.append(row)
    cols = ["room", "ours_cold_ms", "ours_warm_ms", "ours_new_yaw_ms", "pra_hybrid_ms", "speedup_cold",
            "speedup_warm", "rt60_ours_s", "rt60_pra_s", "spatial_rir_kb_max"]
    print(" ".join(f"{c:>16}" for c in cols))
    for r in rows:
        print(" ".join(f"{r[c]:>16.3f}" if isinstance(r[c], float) else f"{r[c]:>16}" for c in cols))
    sb = rows[0]
    print(f"shoebox RT60: eyring {sb['rt60_eyring_s']:.3f} s, mean |error| ours {sb['rt60_err_ours_vs_eyring']:.3f}, "
          f"pyroomacoustics {sb['rt60_err_pra_vs_eyring']:.3f} (without its energy threshold "
          f"{sb['rt60_err_pra_no_threshold_vs_eyring']:.3f})")
    print(f"shoebox RT60: particle-transport reference {sb['rt60_transport_reference_s']:.3f} s, mean |error| ours "
          f"{sb['rt60_err_ours_vs_transport']:.3f}, pyroomacoustics {sb['rt60_err_pra_vs_transport']:.3f}")
    for r in rows[1:]:
        print(f"{r['room']} RT60 ours / pyroomacoustics: {r['rt60_ours_s'] / r['rt60_pra_s']:.3f}")
    result = {"benchmark": "rir_vs_pyroomacoustics", "pinned_one_core": pinned, "machine": machine_info(),
              "pyroomacoustics": pra.__version__, "absorption": args.absorption, "scattering": args.scattering,
              "config": cfg.__dict__, "rows": rows}
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
