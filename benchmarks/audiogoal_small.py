"""The ``audiogoal-small`` benchmark: train AV-Nav and AGSA with one step budget, test on unseen houses.

Steps (each resumable; rerun the same command to continue):

1. episodes: 8 train houses x 50 episodes and 10 unseen test houses x 5 episodes, all
   procedural with 2-4 rooms (``avworld episodes make --preset MOTION``, seed 0);
2. training: ``avworld train nav --agent A --preset fast --episodes train.jsonl
   --total-steps BUDGET --sync --set env.motion=MOTION`` for both agents (run them in
   parallel in two shells, or let ``--train`` run them one after the other);
3. evaluation of each agent's latest checkpoint on the test episodes with and without
   vision (``avworld train eval``), plus the learning curves as PNG, into ``--out``.

    .venv/bin/python benchmarks/audiogoal_small.py --out runs/audiogoal-small --budget 2000000 [--train]

``--motion grid`` (default) is SoundSpaces 1's navigation, the setting AV-Nav and the AGSA
paper report on: 1 m forward, 90 degree turns, 1 s of audio per step.
``--motion soundspaces2`` is SoundSpaces 2's 0.25 m / 10 degree / 0.25 s steps (about five
times as many actions per episode).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402

AGENTS = ("agsa", "avnav")


def _run(*args: str) -> None:
    cmd = [sys.executable, "-m", "avworld.cli", *args]
    print("$", " ".join(["avworld", *args]), flush=True)
    subprocess.run(cmd, check=True)


def make_episodes(out: Path, motion: str) -> tuple[Path, Path]:
    train, test = out / "train.jsonl", out / "test.jsonl"
    if not train.exists():
        _run("episodes", "make", "--split", "train", "--scenes", "8", "--per-scene", "50", "--rooms", "2,4",
             "--preset", motion, "--seed", "0", "--out", str(train))
    if not test.exists():
        _run("episodes", "make", "--split", "test", "--scenes", "10", "--per-scene", "5", "--rooms", "2,4",
             "--preset", motion, "--seed", "0", "--out", str(test))
    return train, test


def learning_curves(out: Path) -> Path:
    """PNG of success, SPL and return against env steps for every trained agent."""
    from PIL import Image

    from avworld.viz.plots import Series, line_plot

    panels = []
    for key, label in ((("episode/success", "success"), ("episode/spl", "SPL"), ("episode/return", "return"),
                        ("episode/length", "episode length"))):
        series = []
        for agent in AGENTS:
            path = out / agent / "metrics.csv"
            if not path.exists():
                continue
            rows = list(csv.DictReader(path.open()))
            x = np.array([float(r["step"]) for r in rows if r.get(key) not in ("", None)])
            y = np.array([float(r[key]) for r in rows if r.get(key) not in ("", None)])
            if len(x):
                k = max(1, len(y) // 20)  # running mean over ~5 % of the run (fewer points at the ends,
                w = np.ones(k)  # not zeros: a plain "same" convolution dips at both ends)
                series.append(Series(x, np.convolve(y, w, mode="same") / np.convolve(np.ones_like(y), w, mode="same"),
                                     agent))
        if series:
            panels.append(line_plot(series, title=f"training episodes: {label}", xlabel="env steps", ylabel=label,
                                    size=(700, 300)))
    path = out / "learning_curves.png"
    Image.fromarray(np.concatenate(panels, axis=0)).save(path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/audiogoal-small")
    p.add_argument("--budget", type=int, default=2_000_000, help="env steps per agent")
    p.add_argument("--train", action="store_true", help="train (or resume) both agents before evaluating")
    p.add_argument("--num", type=int, default=None, help="evaluate only the first NUM test episodes")
    p.add_argument("--motion", default="grid", choices=("grid", "soundspaces2"),
                   help="grid: SoundSpaces 1 (default, the papers' setting); soundspaces2: 0.25 m / 10 deg")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="extra training override passed to `avworld train nav --set` (repeatable)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = make_episodes(out, args.motion)
    if args.train:
        for agent in AGENTS:
            resume = ["--resume"] if (out / agent / "config.json").exists() else []
            _run("train", "nav", "--agent", agent, "--preset", "fast", "--episodes", str(train), "--total-steps",
                 str(args.budget), "--sync", "--no-progress", "--out", str(out / agent), "--set",
                 f"env.motion={args.motion}", *[a for kv in args.set for a in ("--set", kv)], *resume)
    results = {}
    for agent in AGENTS:
        if not (out / agent).exists():
            continue
        for vision in (True, False):
            name = f"{agent}{'' if vision else '-no-vision'}"
            num = ["--num", str(args.num)] if args.num else []
            _run("train", "eval", "--checkpoint", str(out / agent), "--episodes", str(test), "--out",
                 str(out / f"eval-{name}"), *num, *([] if vision else ["--no-vision"]))
            results[name] = json.loads((out / f"eval-{name}" / "metrics.json").read_text())
    curves = learning_curves(out)
    save_json({"machine": machine_info(), "budget": args.budget, "motion": args.motion, "results": results,
               "curves": str(curves)}, out / "results.json")
    for name, r in results.items():
        agg = r["aggregate"]
        print(f"{name}: " + ", ".join(f"{k} {agg[k]['mean']:.3f}" for k in ("success", "spl", "soft_spl", "sna")))


if __name__ == "__main__":
    main()
