"""Direction cues of binaural RIRs: avworld against the SoundSpaces 2 engine (rlr) on the same poses.

Procedural 4-room houses, split into train and test houses (disjoint seeds). In each house, sources
at 1.2 m (AudioGoal's ``source_height_m``) on navigable points and listeners at ear height 1.5 m
(the camera's ``height_m``): half in the source's room, half in other rooms. Line of sight is a ray
cast between them (``RayCaster.occluded``): a listener in the source's room can still be shadowed
by furniture. Every listener turns through ``--yaws`` headings evenly spread over 360 degrees (from
a random offset). Both engines render the same binaural RIRs through the same KEMAR HRTF: avworld
with ``AcousticEngine(scene).spatial_rir`` + ``synthesis.binaural_rir`` (its public calls only, so
engine changes show here), rlr via ``rlr_reference.RLRScene`` (SoundSpaces 2 settings).

Per RIR and signal (the AudioGoal ringing telephone of the sound bank, ``telephone_ringing``, and
white noise), ``--windows`` 0.25 s steps of steady-state binaural audio (each a linear convolution
of a dry signal longer than the RIR, keeping only the output covered by the whole RIR; each window
starts at another point of the ring / another noise) give feature vectors (``_cue_features``:
per-band ILD, interaural coherence, cos/sin IPD below 1.5 kHz, GCC-PHAT ITD). A logistic reader
fitted on the train houses is scored on the test houses for two labels: left/right (sign of the
source's bearing in the head frame) and front/back. 0.5 is chance.

Also per engine: the ILD swing over the turn (max - min over the headings of the broadband ILD)
of the direct part (-1..+4 ms around d/c), the early part (to 50 ms after d/c) and the late part
(after that), in line of sight and occluded; DRR (direct part re the rest, both ears); T30 (mean
of the 500 Hz and 1 kHz octaves, both ears, first heading); seconds per RIR (rlr: one simulation
for all headings of a pose, divided by their number; avworld: a new pair, which traces the
source's rays when the source is new, and a new heading only).

    .venv/bin/python benchmarks/bench_binaural_cues.py                  # 6 train + 4 test houses
    .venv/bin/python benchmarks/bench_binaural_cues.py --quick          # smoke run, ~20 s
    .venv/bin/python benchmarks/bench_binaural_cues.py --no-rlr         # avworld only
    options: --train-houses N --test-houses N --rooms 4 --sources 2 --listeners 4 --yaws 8
             --windows 2 --seed 1000 --label TEXT --out benchmarks/results/binaural_cues_engines.json

rlr (``pip install -e .[reference]``) is benchmark-only: its licence is non-commercial (CC-BY-NC).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _cue_features as cf  # noqa: E402
import avworld  # noqa: E402
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.acoustics.analysis import band_reverberation_times  # noqa: E402
from avworld.acoustics.hrtf import load_hrtf  # noqa: E402
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine  # noqa: E402
from avworld.acoustics.synthesis import binaural_rir  # noqa: E402
from avworld.geometry.navigation import NavGrid  # noqa: E402
from avworld.geometry.procedural import HouseConfig, generate_house  # noqa: E402
from avworld.geometry.raycast import RayCaster  # noqa: E402
from avworld.sounds import SoundBank  # noqa: E402

FS = 16000
STEP = 4000  # 0.25 s at 16 kHz
SOURCE_Z, EAR_Z = 1.2, 1.5
C = 343.0
SIGNALS = ("telephone", "noise")
LABELS = ("left_right", "front_back")


def make_poses(scene, nav, rc, rng, n_sources: int, n_listeners: int) -> list[dict]:
    """(source, listener) pairs: per source half the listeners in its room, half in other rooms."""
    poses = []
    for _ in range(n_sources):
        src = np.r_[nav.sample_navigable(rng, 1)[0], SOURCE_Z]
        room = scene.room_at(src[:2])
        want = {True: (n_listeners + 1) // 2, False: n_listeners // 2}  # same room, other room
        for _ in range(4000):
            if not any(want.values()):
                break
            lis = np.r_[nav.sample_navigable(rng, 1)[0], EAR_Z]
            same = scene.room_at(lis[:2]) == room
            if want[same] and np.linalg.norm((lis - src)[:2]) > 1.0:
                want[same] -= 1
                poses.append({"source": src, "listener": lis, "same_room": bool(same),
                              "los": not bool(rc.occluded(src[None], lis[None])[0]),
                              "distance_m": float(np.linalg.norm(lis - src))})
    return poses


def dry_signals(rng, n: int, phone: np.ndarray) -> dict[str, np.ndarray]:
    """A telephone stretch from a random point of its loop and a fresh white noise, n samples each."""
    start = int(rng.integers(len(phone)))
    reps = int(np.ceil((start + n) / len(phone)))
    return {"telephone": np.tile(phone, reps)[start:start + n], "noise": rng.standard_normal(n)}


def analyse_pose(rirs: list[np.ndarray], pose: dict, yaws: np.ndarray, rng, n_windows: int,
                 phone: np.ndarray) -> tuple[list[dict], dict]:
    """Feature rows for every heading and window, and the pose's ILD swings, DRR and T30."""
    rows, ilds, drr = [], {k: [] for k in ("direct", "early", "late")}, []
    rel = pose["source"] - pose["listener"]
    delay = pose["distance_m"] / C
    for yaw, rir in zip(yaws, rirs):
        bearing = np.arctan2(rel[1], rel[0]) - yaw
        labels = {"left_right": 1.0 if np.sin(bearing) > 0 else -1.0,
                  "front_back": 1.0 if np.cos(bearing) > 0 else -1.0}
        for _ in range(n_windows):
            dry = dry_signals(rng, rir.shape[1] + STEP - 1, phone)
            feats = {s: cf.cue_features(cf.steady_state(dry[s], rir, STEP), FS) for s in SIGNALS}
            rows.append({"features": feats, **labels})
        parts = cf.part_energies(rir, FS, delay)
        for k in ilds:
            ilds[k].append(cf.ild_db(parts[k]))
        d = parts["direct"].sum()
        drr.append(10 * np.log10((d + 1e-30) / (parts["early"].sum() + parts["late"].sum() + 1e-30)))
    t30 = [np.nanmean(band_reverberation_times(rirs[0][c].astype(np.float64), FS, bands=(2, 3))) for c in (0, 1)]
    summary = {"ild_swing_db": {k: float(np.ptp(v)) for k, v in ilds.items()},
               "drr_db": float(np.mean(drr)), "t30_s": float(np.nanmean(t30))}
    return rows, summary


def render_house(seed: int, args, hrtf, phone, use_rlr: bool, timing: dict) -> dict:
    scene = generate_house(HouseConfig(num_rooms=args.rooms), seed=seed)
    nav, rc = NavGrid.build(scene), RayCaster(scene)
    rng = np.random.default_rng(seed)
    poses = make_poses(scene, nav, rc, rng, args.sources, args.listeners)
    acfg = AcousticConfig(directional_tail=not args.isotropic_tail, listener_rays=args.listener_rays,
                          listener_bounces=args.listener_bounces)
    engine = AcousticEngine(scene, acfg)
    # warm-up outside the timing: the HRTF's late-field decoders and numba's compiled kernels, once per process
    binaural_rir(engine.spatial_rir(poses[0]["source"], poses[0]["listener"]), hrtf, 0.0)
    engine = AcousticEngine(scene, acfg)
    rlr_scene = None
    if use_rlr:
        import rlr_reference

        rlr_scene = rlr_reference.RLRScene(scene, hrtf=hrtf)
    out = {"seed": seed, "poses": []}
    seen_sources = set()
    for pose in poses:
        yaws = rng.uniform(0, 2 * np.pi) + np.arange(args.yaws) * 2 * np.pi / args.yaws
        t0 = time.perf_counter()
        srir = engine.spatial_rir(pose["source"], pose["listener"])
        first = binaural_rir(srir, hrtf, yaws[0])
        t1 = time.perf_counter()
        key = tuple(pose["source"])
        timing["avworld_new_source" if key not in seen_sources else "avworld_new_listener"].append(t1 - t0)
        seen_sources.add(key)
        av = [first]
        for y in yaws[1:]:
            t2 = time.perf_counter()
            av.append(binaural_rir(srir, hrtf, y))
            timing["avworld_new_yaw"].append(time.perf_counter() - t2)
        engines = {"avworld": av}
        if rlr_scene is not None:
            rl, secs = rlr_scene.render(pose["source"], pose["listener"], yaws)
            timing["rlr_per_rir"].append(secs / len(yaws))
            engines["rlr"] = rl
        rec = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in pose.items()}
        rec["engines"] = {}
        wrng = np.random.default_rng([seed, len(out["poses"])])  # the same dry signals for both engines
        state = wrng.bit_generator.state
        for name, rirs in engines.items():
            wrng.bit_generator.state = state
            rows, summary = analyse_pose(rirs, pose, yaws, wrng, args.windows, phone)
            rec["engines"][name] = {"rows": rows, **summary}
        out["poses"].append(rec)
        print(f"  house {seed}: pose {len(out['poses'])}/{len(poses)} d={pose['distance_m']:.1f} m "
              f"{'LOS' if pose['los'] else 'occluded'}", flush=True)
    return out


def score(train: list[dict], test: list[dict], engine: str) -> dict:
    """Test accuracy of the logistic reader per signal and label: overall, LOS, occluded."""
    def table(houses):
        x = {s: [] for s in SIGNALS}
        y = {lab: [] for lab in LABELS}
        los = []
        for h in houses:
            for p in h["poses"]:
                for r in p["engines"][engine]["rows"]:
                    for s in SIGNALS:
                        x[s].append(r["features"][s])
                    for lab in LABELS:
                        y[lab].append(r[lab])
                    los.append(p["los"])
        return {s: np.array(v) for s, v in x.items()}, {k: np.array(v) for k, v in y.items()}, np.array(los)

    (x_tr, y_tr, _), (x_te, y_te, los) = table(train), table(test)
    ild_cols = [i for i, n in enumerate(cf.feature_names()) if n.startswith("ild_")]
    res = {}
    for s in SIGNALS:
        for lab in LABELS:
            pred = cf.predict(cf.fit_logistic(x_tr[s], y_tr[lab]), x_te[s])
            ok = pred == y_te[lab]
            res[f"{s}/{lab}"] = {"all": float(ok.mean()), "los": float(ok[los].mean()) if los.any() else None,
                                 "occluded": float(ok[~los].mean()) if (~los).any() else None,
                                 "n_test": int(len(ok)), "n_los": int(los.sum())}
        ok = np.sign(x_te[s][:, ild_cols].mean(1)) == y_te["left_right"]
        res[f"{s}/left_right_mean_ild_sign"] = {"all": float(ok.mean()),
                                                "los": float(ok[los].mean()) if los.any() else None,
                                                "occluded": float(ok[~los].mean()) if (~los).any() else None}
    return res


def acoustics_summary(houses: list[dict], engine: str) -> dict:
    out = {}
    for group, pick in (("los", True), ("occluded", False)):
        ps = [p["engines"][engine] for h in houses for p in h["poses"] if p["los"] == pick]
        if not ps:
            continue
        out[group] = {"pairs": len(ps),
                      "ild_swing_db_mean": {k: float(np.mean([p["ild_swing_db"][k] for p in ps]))
                                            for k in ("direct", "early", "late")},
                      "ild_swing_db_median": {k: float(np.median([p["ild_swing_db"][k] for p in ps]))
                                              for k in ("direct", "early", "late")},
                      "drr_db_mean": float(np.mean([p["drr_db"] for p in ps])),
                      "t30_s_median": float(np.nanmedian([p["t30_s"] for p in ps]))}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-houses", type=int, default=6)
    p.add_argument("--test-houses", type=int, default=4)
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--sources", type=int, default=2, help="sources per house")
    p.add_argument("--listeners", type=int, default=4, help="listeners per source (half in its room)")
    p.add_argument("--yaws", type=int, default=8, help="headings per listener")
    p.add_argument("--windows", type=int, default=2, help="0.25 s windows per heading and signal")
    p.add_argument("--seed", type=int, default=1000, help="first house seed (train, then test)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 + 1 houses, 1 source, 2 listeners, 4 yaws")
    p.add_argument("--no-rlr", action="store_true", help="avworld only")
    p.add_argument("--isotropic-tail", action="store_true",
                   help="avworld with AcousticConfig(directional_tail=False): the late field of earlier versions")
    p.add_argument("--listener-rays", type=int, default=AcousticConfig.listener_rays,
                   help="AcousticConfig.listener_rays")
    p.add_argument("--listener-bounces", type=int, default=AcousticConfig.listener_bounces,
                   help="AcousticConfig.listener_bounces")
    p.add_argument("--label", default="", help="free text stored with the results (e.g. the engine version)")
    p.add_argument("--out", default="benchmarks/results/binaural_cues_engines.json")
    args = p.parse_args()
    if args.quick:
        args.train_houses, args.test_houses, args.sources, args.listeners, args.yaws, args.windows = 1, 1, 1, 2, 4, 1
    pinned = pin_to_one_core()
    use_rlr = not args.no_rlr
    if use_rlr:
        try:
            import rlr_audio_propagation  # noqa: F401
        except ImportError:
            print("rlr-audio-propagation is not installed (pip install -e .[reference]): avworld only")
            use_rlr = False
    engines = ["avworld"] + (["rlr"] if use_rlr else [])
    hrtf = load_hrtf("kemar", FS)
    phone = SoundBank(num_speakers=0, num_music=0, num_background=0).clip("telephone_ringing", 0).astype(np.float64)
    timing = {k: [] for k in ("avworld_new_source", "avworld_new_listener", "avworld_new_yaw", "rlr_per_rir")}
    t0 = time.perf_counter()
    seeds = list(range(args.seed, args.seed + args.train_houses + args.test_houses))
    houses = []
    for s in seeds:
        print(f"house {s} ({'train' if len(houses) < args.train_houses else 'test'})", flush=True)
        houses.append(render_house(s, args, hrtf, phone, use_rlr, timing))
    train, test = houses[: args.train_houses], houses[args.train_houses:]
    result = {
        "settings": {k: v for k, v in vars(args).items()}, "engines": engines, "pinned_to_one_core": pinned,
        "avworld_package": str(Path(avworld.__file__).parent),
        "house_seeds": {"train": seeds[: args.train_houses], "test": seeds[args.train_houses:]},
        "poses": {"train": sum(len(h["poses"]) for h in train), "test": sum(len(h["poses"]) for h in test),
                  "test_los": sum(p["los"] for h in test for p in h["poses"])},
        "accuracy": {e: score(train, test, e) for e in engines},
        "acoustics": {e: acoustics_summary(houses, e) for e in engines},
        "seconds_per_rir": {k: {"mean": float(np.mean(v)), "median": float(np.median(v)), "n": len(v)}
                            for k, v in timing.items() if v},
        "seconds": time.perf_counter() - t0, "machine": machine_info(),
        "pose_details": [{"seed": h["seed"], "poses": [{k: v for k, v in p.items() if k != "engines"}
                                                        | {e: {k: v for k, v in p["engines"][e].items() if k != "rows"}
                                                           for e in engines} for p in h["poses"]]} for h in houses],
    }
    print_summary(result)
    print(f"saved {save_json(result, args.out)}")


def print_summary(r: dict) -> None:
    pct = lambda v: "  -  " if v is None else f"{100 * v:4.0f}%"  # noqa: E731
    print(f"\ntest accuracy ({r['poses']['test']} test poses, {r['poses']['test_los']} with line of sight); "
          "all / LOS / occluded")
    print(f"{'engine':8} {'signal':10} {'left/right':>20} {'front/back':>20} {'L/R mean-ILD sign':>20}")
    for e, acc in r["accuracy"].items():
        for s in SIGNALS:
            cells = [acc[f"{s}/{k}"] for k in ("left_right", "front_back", "left_right_mean_ild_sign")]
            print(f"{e:8} {s:10} " + " ".join(f"{pct(c['all'])} {pct(c['los'])} {pct(c['occluded'])}".rjust(20)
                                             for c in cells))
    print("\nILD swing over the turn, mean dB (direct / early / late); DRR dB; T30 s (500 Hz-1 kHz, median)")
    for e, a in r["acoustics"].items():
        for g, v in a.items():
            sw = v["ild_swing_db_mean"]
            print(f"{e:8} {g:9} n={v['pairs']:3d}  swing {sw['direct']:5.1f} / {sw['early']:5.1f} / {sw['late']:5.1f}"
                  f"  DRR {v['drr_db_mean']:6.1f}  T30 {v['t30_s_median']:.2f}")
    print("\nseconds per RIR: "
          + ", ".join(f"{k} {v['mean']:.3f} (n={v['n']})" for k, v in r["seconds_per_rir"].items()))


if __name__ == "__main__":
    main()
