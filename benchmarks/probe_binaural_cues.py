"""Diagnostic: can one step's binaural spectrogram tell whether the goal is to the left or right?

An AudioGoal agent hears the ringing phone through the env's ``spectrogram`` observation.
This probe asks the simplest question a navigating agent needs answered: on which side
is the sound source? For every episode of a train and a test episode file it records
several headings at the start pose (turning in place). For each it takes the spectrogram's
interaural level difference per frequency bin (log left − log right, averaged over the
step) and labels it with the side of the goal (the sign of the pointgoal bearing).

Two readers are scored on the test houses:

* the sign of the broadband ILD (louder ear = source side);
* a logistic regression on the per-bin ILD, fitted on the train houses.

It reports accuracy overall and by distance to the goal. 0.5 is chance. A free-field
source at 1–3 m to the side gives ILDs of 5–15 dB, where both readers are near 1.0.

    .venv/bin/python benchmarks/probe_binaural_cues.py --train TRAIN.jsonl --test TEST.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import avworld.tasks  # noqa: E402,F401  (registers the env ids)
from _common import machine_info, save_json  # noqa: E402
from _cue_features import fit_logistic, predict  # noqa: E402  (the reader shared with bench_binaural_cues)
from avworld.sim.config import PRESETS as MOTION_PRESETS  # noqa: E402
from avworld.tasks.episodes import episode_config_of, load_episodes  # noqa: E402

FLOOR = 1e-4  # spectrogram floor before the log (its values are 0.01-0.5 at metres from the source)


def motion_of(path: str) -> str:
    """The simulator motion preset the episode file was planned for (its header names it)."""
    header, _ = load_episodes(path)
    ec = episode_config_of(header)
    for name, p in MOTION_PRESETS.items():
        if (p["forward_step_m"], p["turn_deg"]) == (ec.forward_step_m, ec.turn_deg):
            return header.get("preset", name) if header.get("preset") in MOTION_PRESETS else name
    raise SystemExit(f"{path}: no motion preset moves {ec.forward_step_m} m / {ec.turn_deg} deg")


def collect(path: str, turns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin ILD (N, F), goal side (N,) in {-1, +1} (+1: left) and goal distance (N,) m."""
    motion = motion_of(path)
    env = gym.make("avworld/AudioGoal-v0", episodes=path, observations="audio", pointgoal=True, width=16, height=16,
                   preset=motion)
    coarse = MOTION_PRESETS[motion]["turn_deg"] >= 45  # grid: every turn is 90 degrees
    ild, side, dist = [], [], []
    try:
        for k in range(len(env.unwrapped.episodes)):
            obs, _ = env.reset(seed=k, options={"episode_index": k})
            for t in range(turns):
                s = obs["spectrogram"].mean(axis=2)  # (2, F): left, right
                ild.append(np.log(s[0] + FLOOR) - np.log(s[1] + FLOOR))
                side.append(1.0 if np.sin(obs["pointgoal"][1]) > 0 else -1.0)
                dist.append(float(obs["pointgoal"][0]))
                for _ in range(1 if coarse else 1 + 3 * (t % 3)):  # turn left by 10-70 (grid: 90) degrees
                    obs, *_ = env.step(2)
    finally:
        env.close()
    return np.array(ild), np.array(side), np.array(dist)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="episode file of the train houses")
    p.add_argument("--test", required=True, help="episode file of unseen houses")
    p.add_argument("--turns", type=int, default=5, help="headings recorded per episode")
    p.add_argument("--out", default="benchmarks/results/binaural_cues.json")
    args = p.parse_args()

    t0 = time.perf_counter()
    x_tr, y_tr, _ = collect(args.train, args.turns)
    x_te, y_te, d_te = collect(args.test, args.turns)
    model = fit_logistic(x_tr, y_tr)
    pred = predict(model, x_te)
    result = {
        "motion": {"train": motion_of(args.train), "test": motion_of(args.test)},
        "samples": {"train": len(y_tr), "test": len(y_te)},
        "broadband_ild_sign_accuracy": {"train": float(np.mean(np.sign(x_tr.mean(1)) == y_tr)),
                                        "test": float(np.mean(np.sign(x_te.mean(1)) == y_te))},
        "logistic_accuracy": {"train": float(np.mean(predict(model, x_tr) == y_tr)),
                              "test": float(np.mean(pred == y_te))},
        "test_by_distance_m": {},
        "seconds": time.perf_counter() - t0,
        "machine": machine_info(),
    }
    for lo, hi in ((0, 3), (3, 6), (6, 100)):
        m = (d_te >= lo) & (d_te < hi)
        if m.any():
            result["test_by_distance_m"][f"{lo}-{hi}"] = {"n": int(m.sum()),
                                                          "logistic": float(np.mean(pred[m] == y_te[m])),
                                                          "broadband": float(np.mean(np.sign(x_te[m].mean(1))
                                                                                     == y_te[m]))}
    for k in ("broadband_ild_sign_accuracy", "logistic_accuracy"):
        print(f"{k}: train {result[k]['train']:.3f}, test {result[k]['test']:.3f}")
    for k, v in result["test_by_distance_m"].items():
        print(f"test, goal {k} m away: n={v['n']}, logistic {v['logistic']:.2f}, broadband {v['broadband']:.2f}")
    print(f"saved {save_json(result, args.out)}")


if __name__ == "__main__":
    main()
