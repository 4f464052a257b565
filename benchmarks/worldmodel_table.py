"""Markdown tables of world-model evaluations (`avworld worldmodel eval --out DIR`) for docs/results.md.

    python benchmarks/worldmodel_table.py LABEL=EVAL_DIR [LABEL=EVAL_DIR ...]
        [--factorized LABEL=VISUAL_EVAL_DIR+AUDIO_EVAL_DIR] [--modes fixed,rollout] [--deltas 1,2,4,8,16]
        [--metrics ssim,psnr,lsd,ild_error,itd_error,reward_mse] [--out benchmarks/results/worldmodel_table.json]

One row per (model, mode, Δ): the world model's mean with its 95 % bootstrap interval for each
metric, then the same metrics' baselines (copy-last; the better of the two reward baselines).
``--factorized`` joins the image columns of one evaluation (a visual-only model) with the audio
and reward columns of another (an audio-only model): the modality-factorized baseline, whose two
halves are independent models. Prints the table and saves it as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

IMAGE = ("psnr", "ssim")
REWARD_BASELINES = ("reward: train mean per Δ", "reward: train mean per Δ and action")


def _load(path: str) -> dict:
    p = Path(path) / "metrics.json"
    if not p.is_file():
        raise SystemExit(f"{p}: no such file; pass the --out folder of `avworld worldmodel eval`")
    return json.loads(p.read_text())["tables"]


def _cell(stat, digits=3) -> str:
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "-"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _baseline(table: dict, metric: str):
    if metric == "reward_mse":
        cands = [table[r][metric] for r in REWARD_BASELINES if r in table and metric in table[r]]
        return min(cands, key=lambda s: s["mean"]) if cands else None
    return table.get("copy-last", {}).get(metric)


def joined(visual: dict, audio: dict) -> dict:
    """Tables with image metrics from ``visual`` and the rest from ``audio`` (same modes and Δ)."""
    out: dict = {}
    for mode, per in audio.items():
        for d, table in per.items():
            v = visual.get(mode, {}).get(d, {})
            rows = {}
            for name, row in table.items():
                merged = {k: s for k, s in row.items() if k not in IMAGE}
                merged.update({k: s for k, s in v.get(name, {}).items() if k in IMAGE})
                rows[name] = merged
            out.setdefault(mode, {})[d] = rows
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("evals", nargs="*", metavar="LABEL=EVAL_DIR")
    p.add_argument("--factorized", action="append", default=[], metavar="LABEL=VISUAL_DIR+AUDIO_DIR")
    p.add_argument("--modes", default="fixed,rollout")
    p.add_argument("--deltas", default="1,2,4,8,16")
    p.add_argument("--metrics", default="ssim,psnr,lsd,ild_error,itd_error,reward_mse")
    p.add_argument("--compact", action="store_true",
                   help="one column per metric: 'world model [95 %% CI] / baseline mean'")
    p.add_argument("--out", default="benchmarks/results/worldmodel_table.json")
    args = p.parse_args()
    runs = []
    for spec in args.evals:
        label, _, path = spec.partition("=")
        runs.append((label, _load(path)))
    for spec in args.factorized:
        label, _, paths = spec.partition("=")
        vis, _, aud = paths.partition("+")
        runs.append((label, joined(_load(vis), _load(aud))))
    metrics = [m for m in args.metrics.split(",") if m]
    header = ["model", "mode", "Δ"] + ([f"{m} WM / baseline" for m in metrics] if args.compact else
                                        [f"{m} WM" for m in metrics] + [f"{m} baseline" for m in metrics])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = []
    for label, tables in runs:
        for mode in args.modes.split(","):
            for d in args.deltas.split(","):
                table = tables.get(mode, {}).get(d)
                if not table:
                    continue
                wm = [table.get("world model", {}).get(m) for m in metrics]
                base = [_baseline(table, m) for m in metrics]
                if args.compact:
                    cells = [f"{_cell(w)} / {_cell(b).split(' [')[0]}" for w, b in zip(wm, base)]
                else:
                    cells = [_cell(s) for s in wm + base]
                lines.append("| " + " | ".join([label, mode, d] + cells) + " |")
                rows.append({"model": label, "mode": mode, "delta": int(d),
                             "world_model": dict(zip(metrics, wm)), "baseline": dict(zip(metrics, base))})
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
