"""Looking at a dataset: summary statistics (``avworld data info``) and one trajectory as a
video with sound, a top-down map of its path and a small HTML page (``avworld data show``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avworld.data.errors import DataError
from avworld.data.manifest import compute_totals, load_manifest, manifest_path, orphan_shards
from avworld.data.plan import SPLITS
from avworld.data.reader import AVWDataset
from avworld.data.shards import shard_problem
from avworld.data.storage import CHUNK_CHECKSUM


def dataset_info(root: str | Path, verify: bool = False) -> dict:
    """Summary of the dataset at ``root``: config, build state, totals per split (scenes,
    trajectories, frames, hours, bytes), and ``bad_shards``: every finished shard whose file is
    missing or has another size than the manifest records, with ``verify`` also every one whose
    SHA-256 differs (all of them, each with its problem). A folder with shards but no manifest
    raises :class:`~avworld.data.errors.OrphanShardsError` (it counts them)."""
    root = Path(root)
    m = load_manifest(root)
    root = manifest_path(root).parent
    done = [s for s in m["shards"] if s.get("status") == "done"]
    bad = []
    for rec in done:
        problem = shard_problem(root / rec["path"], rec, checksum=verify)
        if problem is not None:
            bad.append({"id": rec["id"], "path": str(root / rec["path"]), "problem": problem})
    listed = {(root / rec["path"]).resolve() for rec in done}
    unlisted = [str(p) for p in orphan_shards(root) if p.resolve() not in listed]
    legacy = sum(rec.get("chunk_checksums") != CHUNK_CHECKSUM for rec in done)
    if bad:
        checks = f"{len(bad)} of {len(done)} shards BAD (listed below)"
    elif verify:
        checks = "verified (SHA-256 of every shard)"
    else:
        checks = "sizes match; SHA-256 not checked (use --verify)"
    t = m["config"]["trajectory"]
    sim = m["sim_config"]
    totals = compute_totals(m)
    return {
        "path": str(root),
        "name": m["name"],
        "config_hash": m["config_hash"],
        "complete": len(done) == len(m["shards"]),
        "shards_done": len(done),
        "shards_total": len(m["shards"]),
        "checksums": checks,
        "bad_shards": bad,
        "unlisted_shard_files": unlisted,
        "chunk_checksums": (f"{CHUNK_CHECKSUM} on every shard" if not legacy else
                            f"none on {legacy} of {len(done)} shards (written by an older avworld: re-hashed "
                            "when first opened; rebuild to get per-chunk checks)"),
        "frame": {"rgb": [t["image_size"], t["image_size"], 3], "depth": bool(t["depth"]),
                  "audio": [2, int(round(sim["step_s"] * sim["sample_rate_hz"]))], "audio_format": t["audio_format"],
                  "step_s": sim["step_s"], "sample_rate_hz": sim["sample_rate_hz"],
                  "forward_step_m": sim["forward_step_m"], "turn_deg": sim["turn_deg"]},
        "scenes": {s: len(m["splits"][s]) for s in SPLITS},
        "totals": totals,
    }


def format_info(info: dict) -> str:
    """A plain-text table of :func:`dataset_info`."""
    f = info["frame"]
    lines = [
        f"dataset {info['name']} at {info['path']} (config {info['config_hash']})",
        f"  shards: {info['shards_done']}/{info['shards_total']} built"
        + ("" if info["complete"] else "  -- INCOMPLETE: rerun `avworld data make` with the same --out"),
        f"  checksums: {info['checksums']}; per-chunk: {info['chunk_checksums']}",
        f"  frame: RGB {f['rgb'][0]}x{f['rgb'][1]}{' + depth' if f['depth'] else ''}, audio 2x{f['audio'][1]} "
        f"{f['audio_format']} at {f['sample_rate_hz']} Hz, {f['step_s']} s/step, "
        f"forward {f['forward_step_m']} m, turn {f['turn_deg']} deg",
        f"  {'split':<6} {'scenes':>6} {'trajs':>7} {'frames':>9} {'hours':>8} {'mean len':>9} {'MB':>9} "
        f"{'kB/frame':>9}",
    ]
    for split in (*SPLITS, "all"):
        t = info["totals"][split]
        scenes = sum(info["scenes"].values()) if split == "all" else info["scenes"][split]
        lines.append(f"  {split:<6} {scenes:>6} {t['trajectories']:>7} {t['frames']:>9} {t['hours']:>8.3f} "
                     f"{t['length_mean']:>9.1f} {t['bytes'] / 1e6:>9.1f} {t['bytes_per_frame'] / 1e3:>9.1f}")
    pats = info["totals"]["all"]["patterns"]
    lines.append("  patterns: " + ", ".join(f"{k} {v}" for k, v in pats.items()))
    for b in info["bad_shards"]:
        lines.append(f"  BAD shard {b['path']} {b['problem']}")
    if info["unlisted_shard_files"]:
        lines.append(f"  {len(info['unlisted_shard_files'])} shard file(s) not listed as built in the manifest "
                     f"(not used by the dataset), e.g. {info['unlisted_shard_files'][0]}")
    return "\n".join(lines)


def _video_writer():
    from avworld.viz.video import write_video_with_audio

    return write_video_with_audio


def show_trajectory(root: str | Path, traj: int, out_dir: str | Path, scale: int = 2) -> dict[str, Path]:
    """Write ``traj_N.mp4`` (frames with the binaural sound track), ``traj_N_topdown.png``
    (scene map with the path, source and goal), ``traj_N_frames.png`` (8 frames) and
    ``traj_N.html`` into ``out_dir``; ``traj`` indexes all trajectories of the dataset."""
    from PIL import Image

    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.spec import load_scene_spec
    from avworld.viz.html import HtmlReport
    from avworld.viz.map_figure import map_figure
    from avworld.viz.plots import Series, line_plot

    data = AVWDataset(root, split=None, verify="size", allow_incomplete=True)
    if not 0 <= traj < len(data):
        raise DataError(f"trajectory {traj} does not exist: the dataset has {len(data)} (0..{len(data) - 1}); "
                        "see `avworld data info`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = data.info(traj)
    arrays = data.trajectory(traj, fields=("rgb", "audio"))
    rgb, audio = arrays["rgb"], arrays["audio"]  # (T, H, W, 3), (T, 2, n)
    T = len(rgb)
    big = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=2)
    track = audio.transpose(1, 0, 2).reshape(2, -1)  # (2, T * n): frame t's audio plays while frame t shows
    stem = f"traj_{traj}"
    paths = {"video": out / f"{stem}.mp4", "topdown": out / f"{stem}_topdown.png",
             "frames": out / f"{stem}_frames.png", "plot": out / f"{stem}_distance.png", "html": out / f"{stem}.html"}
    _video_writer()(paths["video"], big, track, data.sample_rate_hz, fps=1.0 / data.step_s)

    scene = load_scene_spec(meta["scene"])
    nav = NavGrid.build(scene, NavConfig())
    img = map_figure(scene, nav, 40.0, sources=[meta["source_position"]], path=arrays["pose"],
                      goal=meta["goal_xy"], agent=arrays["pose"][-1])
    Image.fromarray(img).save(paths["topdown"])
    picks = np.unique(np.linspace(0, T - 1, min(8, T)).round().astype(int))
    Image.fromarray(np.concatenate([rgb[k] for k in picks], axis=1)).save(paths["frames"])
    steps = np.arange(T)
    plot = line_plot([Series(steps, arrays["geodesic_m"], "geodesic distance to source (m)"),
                      Series(steps, np.cumsum(arrays["reward"]), "cumulative reward")],
                     title=f"trajectory {traj}", xlabel="frame")
    Image.fromarray(plot).save(paths["plot"])

    report = HtmlReport(f"AVW trajectory {traj} ({meta['pattern']}, {meta['scene']})")
    report.paragraph(f"{T} frames ({T * data.step_s:.2f} s), split {meta['split']}, shard {meta['shard']}; "
                     f"the video plays the binaural recording (left/right ears) at the frame rate of the steps.")
    report.video(paths["video"].name, "egocentric RGB with binaural sound", width=rgb.shape[2] * scale * 2)
    report.figures([(paths["topdown"].name, "path (start to end), source (red), goal (green), final pose"),
                    (paths["plot"].name, "geodesic distance to the source and cumulative reward")])
    report.figures([(paths["frames"].name, f"frames {picks.tolist()}")])
    report.table(["field", "value"], [[k, v if not isinstance(v, float) else round(v, 4)] for k, v in meta.items()])
    report.write(paths["html"])
    data.close()
    return paths
