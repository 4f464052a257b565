"""``avworld plan report``: several ``plan eval`` runs on one page (seed 001's Table 8 and Fig. 7 analogue).

The table (also ``table.md``) has one row per run (SPL, SoftSPL, NA, SNA, success with 95 % CIs, s/step);
the maps show the same episodes with every run's path on the house's top-down map; each run's
video (what its agent saw and heard) is embedded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

COLOURS = [(40, 90, 220), (220, 60, 40), (30, 160, 70), (200, 140, 0), (140, 60, 180), (0, 150, 160)]
COLUMNS = ("success", "spl", "soft_spl", "na", "sna")


class PlanReportError(ValueError):
    """A run directory is not a ``plan eval --out`` directory."""


def load_run(d: str | Path) -> dict:
    d = Path(d)
    if not (d / "metrics.json").is_file() or not (d / "paths.json").is_file():
        raise PlanReportError(f"{d} has no metrics.json and paths.json; pass directories written by "
                              "`avworld plan eval --out DIR`")
    return {"dir": d, "metrics": json.loads((d / "metrics.json").read_text()),
            "paths": json.loads((d / "paths.json").read_text())}


def table_rows(runs: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["run", "episodes", *COLUMNS, "s / step"]
    rows = []
    for r in runs:
        m = r["metrics"]
        cells = [m["label"], str(m["num_episodes"])]
        for c in COLUMNS:
            a = m["aggregate"][c]
            d = 1 if c == "na" else 3
            cells.append(f"{a['mean']:.{d}f} [{a['ci_low']:.{d}f}, {a['ci_high']:.{d}f}]")
        cells.append(f"{m['seconds_per_step']['mean']:.3f}")
        rows.append(cells)
    return header, rows


def episode_map(episode_id: str, runs: list[dict]) -> np.ndarray:
    """The episode's house with each run's path (same colours as the legend)."""
    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.spec import load_scene_spec
    from avworld.viz.map_figure import map_figure

    first = runs[0]["paths"][episode_id]
    scene = load_scene_spec(first["scene"])
    nav = NavGrid.build(scene, NavConfig())
    paths = {}
    for i, r in enumerate(runs):
        p = r["paths"].get(episode_id)
        if p is not None:
            name = f"{r['metrics']['label']} ({'success' if p['success'] else 'fail'}, {len(p['actions'])} actions)"
            paths[name] = (np.asarray(p["poses"], float)[:, :2], COLOURS[i % len(COLOURS)])
    return map_figure(scene, nav, 40.0, sources=[first["source"]], goal=first["goal"], agent=first["start"],
                      paths=paths)


def write_report(run_dirs: list[str | Path], out: str | Path, maps: int = 4) -> Path:
    from PIL import Image

    from avworld.viz.html import HtmlReport

    runs = [load_run(d) for d in run_dirs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rep = HtmlReport("Planning with a world model: plain policy vs AVWM vs Oracle WM")
    m0 = runs[0]["metrics"]
    rep.paragraph(f"Agent {m0['agent']} ({m0.get('agent_global_step')} training steps) on {m0['episodes']}. "
                  "Rows: the plain policy, planning with the AV-CDiT world model (AVWM) and with the simulator "
                  "(Oracle WM); B beam width, H horizon, K candidates. Means with 95% Student-t intervals.")
    header, rows = table_rows(runs)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]
    (out / "table.md").write_text("\n".join(md) + "\n")
    rep.heading("Navigation metrics")
    rep.table(header, rows)
    common = [e for e in runs[0]["paths"] if all(e in r["paths"] for r in runs)]
    rep.heading(f"Paths on the same episodes (first {min(maps, len(common))} of {len(common)} shared)")
    figs = []
    for e in common[:maps]:
        Image.fromarray(episode_map(e, runs)).save(out / f"map_{e}.png")
        figs.append((f"map_{e}.png", f"episode {e}: start arrow, goal ring, sound source (red), each run's path"))
    rep.figures(figs)
    rep.heading("What the agents saw and heard (video with binaural sound, 4x upscaled)")
    vids = []
    for i, r in enumerate(runs):
        for v in sorted(r["dir"].glob("video_*.mp4"))[:1]:
            name = f"run{i}_{v.name}"
            shutil.copyfile(v, out / name)
            vids.append(rep.video_html(name, f"{r['metrics']['label']}: {v.stem[6:]}", width=256))
    if vids:
        rep.row(vids)
    return rep.write(out / "report.html")
