"""Metric tables of a world-model evaluation (issue 18, item 6); numpy/scipy, no torch.

Per generation mode (fixed, rollout) and offset Δ, one row per predictor, each metric the mean
over the evaluated items with a 95 % percentile-bootstrap interval
(:func:`avworld.eval.tokenizer_report.summarize`):

* ``world model`` - decoded predicted frame vs the dataset's frame at t + Δ (PSNR, SSIM), decoded
  predicted clip vs the dataset's clip (LSD, spectral SSIM, ILD error averaged over octave bands,
  ITD error), squared error of the predicted cumulative reward from t to t + Δ (``reward_mse``).
* ``copy-last`` - the context's last frame and clip (frame t) as the prediction.
* ``tokenizer round-trip`` - the true latents of t + Δ decoded: what a perfect latent prediction scores.
* ``reward: train mean per Δ`` / ``reward: train mean per Δ and action`` - the mean cumulative reward
  of each Δ (and of each bucket of the aggregated action) over the training split.

``frechet`` holds Fréchet distances between predicted and true latents over the evaluated items,
per modality, labelled "avworld encoder FD, not comparable to FID/FAD" (image latents flattened;
audio latents as per-channel mean and std over time). LPIPS, DreamSim, FID and FAD are not computed
unless weights are passed (:func:`check_perceptual_weights`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from avworld.data.poses import relative_pose
from avworld.eval import audio_metrics as am
from avworld.eval import image_metrics as im
from avworld.eval.nav_metrics import MetricError
from avworld.eval.tokenizer_report import CAP_DB, format_cell, jsonable, summarize

METRICS = ("psnr", "ssim", "lpips", "lsd", "spectral_ssim", "ild_error", "itd_error", "reward_mse")
UNITS = {"psnr": "dB", "ssim": "", "lpips": "", "lsd": "dB", "spectral_ssim": "", "ild_error": "dB",
         "itd_error": "ms", "reward_mse": ""}
FD_LABEL = "avworld encoder FD, not comparable to FID/FAD"
PERCEPTUAL = {"lpips": "LPIPS-alex (torchvision's AlexNet state dict and LPIPS v0.1 alex.pth: one merged file "
                       "or BACKBONE,LINEAR)", "dreamsim": "DreamSim (ensemble weights)",
              "fid": "FID (Inception-v3 pool3 weights)", "fad": "FAD (VGGish weights)"}
#: Action buckets of the reward baseline: 0.25 m in dx, dy; 15 degrees in dyaw.
BUCKET = (0.25, 0.25, math.radians(15.0))


class WorldModelEvalError(MetricError):
    """Bad input to a world-model evaluation."""


class MissingWeightsError(WorldModelEvalError):
    """A perceptual metric was asked for with a weights file that does not exist."""


class PerceptualMetricUnavailableError(WorldModelEvalError):
    """A perceptual metric whose network avworld does not implement yet."""


def check_perceptual_weights(paths: dict) -> dict:
    """``{metric: note}`` for the table. A given path that is missing: :class:`MissingWeightsError`
    naming what is needed; LPIPS with existing files: "computed" (:mod:`avworld.eval.lpips`, AlexNet
    variant; ``PATH`` or ``BACKBONE,LINEAR``); another metric with an existing file:
    :class:`PerceptualMetricUnavailableError` (avworld has no network for it yet, and nothing is
    downloaded); not given: "not computed"."""
    notes = {}
    for name, what in PERCEPTUAL.items():
        p = paths.get(name)
        parts = [x.strip() for x in str(p).split(",") if x.strip()] if p is not None else []
        if p is None:
            notes[name] = f"not computed (pass --{name}-weights PATH: {what}; nothing is downloaded)"
        elif not parts or not all(Path(x).is_file() for x in parts):
            raise MissingWeightsError(f"--{name}-weights {p}: no such file; {name.upper()} needs {what} as a local "
                                      "file (avworld downloads nothing); drop the option to skip the metric")
        elif name == "lpips":
            notes[name] = f"computed: LPIPS v0.1, AlexNet, weights {p}"
        else:
            raise PerceptualMetricUnavailableError(
                f"--{name}-weights {p}: avworld has no {name.upper()} network to load these weights into yet; drop "
                "the option (the table reports PSNR/SSIM/LSD/spectral SSIM/ILD/ITD and avworld encoder FDs)")
    return notes


def image_scores(pred, true) -> dict[str, np.ndarray]:
    """Per item PSNR (capped at 100 dB) and SSIM of uint8 frames (N, H, W, 3)."""
    return {"psnr": im.psnr(pred, true, max_db=CAP_DB), "ssim": im.ssim(pred, true)}


def audio_scores(pred, true, sample_rate: int = am.SAMPLE_RATE) -> dict[str, np.ndarray]:
    """Per item LSD, spectral SSIM, ILD error (mean over octave bands) and ITD error of (N, 2, S) clips."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ild = am.ild_error(pred, true, sample_rate)
        ild = np.where(np.isfinite(ild), ild, np.nan)
        ild_mean = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in ild])
        return {"lsd": am.lsd(pred, true), "spectral_ssim": am.spectral_ssim(pred, true),
                "ild_error": ild_mean, "itd_error": am.itd_error(pred, true, sample_rate)}


def row(scores: dict, seed: int = 0) -> dict:
    """``{"n", metric: {mean, ci95, n}}`` of per-item score arrays."""
    n = max((len(v) for v in scores.values()), default=0)
    return {"n": n, **{k: summarize(v, seed=seed) for k, v in scores.items()}}


def action_bucket(action) -> tuple[int, int, int]:
    a = np.asarray(action, dtype=np.float64)
    return tuple(int(round(a[i] / BUCKET[i])) for i in range(3))


def reward_baselines(trajectories, deltas) -> dict:
    """Mean cumulative reward from t to t + Δ per Δ and per (Δ, action bucket) over ``trajectories``
    (an iterable of (reward (L,), pose (L, 3)) of the training split): ``{"delta": {Δ: mean},
    "bucket": {Δ: {bucket: mean}}}``."""
    sums = {int(d): [0.0, 0] for d in deltas}
    buckets: dict[int, dict] = {int(d): {} for d in deltas}
    for reward, pose in trajectories:
        cum = np.concatenate([[0.0], np.cumsum(np.asarray(reward, np.float64))])
        for d in sums:
            if len(reward) <= d:
                continue
            t = np.arange(0, len(reward) - d)
            r = cum[t + d] - cum[t]
            sums[d][0] += float(r.sum())
            sums[d][1] += len(r)
            acts = relative_pose(pose[t], pose[t + d])
            for a, v in zip(acts, r):
                s = buckets[d].setdefault(action_bucket(a), [0.0, 0])
                s[0] += float(v)
                s[1] += 1
    if any(n == 0 for _, n in sums.values()):
        raise WorldModelEvalError(f"the training split has no trajectory longer than Δ = "
                                  f"{[d for d, (_, n) in sums.items() if n == 0]} frames: no reward baseline")
    return {"delta": {d: s / n for d, (s, n) in sums.items()},
            "bucket": {d: {b: s / n for b, (s, n) in m.items()} for d, m in buckets.items()}}


def reward_baseline_predictions(base: dict, delta: int, actions) -> tuple[np.ndarray, np.ndarray]:
    """(per-Δ mean, per-(Δ, bucket) mean falling back to the per-Δ mean) for items with ``actions`` (N, 3)."""
    d = int(delta)
    mean = np.full(len(actions), base["delta"][d])
    per = np.array([base["bucket"][d].get(action_bucket(a), base["delta"][d]) for a in actions])
    return mean, per


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and ``b`` (N, dim)."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        off = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = np.real(covmean)
    return float(max(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean), 0.0))


def fd_features(name: str, latents) -> np.ndarray:
    """Rows for the Fréchet distance: image latents flattened; audio latents' per-channel mean and std."""
    x = np.asarray(latents, np.float64)
    if name == "audio":
        return np.concatenate([x.mean(-1), x.std(-1)], axis=1)
    return x.reshape(len(x), -1)


def format_table(table: dict, digits: int = 3) -> str:
    """Aligned text of one (mode, Δ) table: rows of ``mean [lo, hi]`` per metric."""
    cols = [m for m in METRICS if any(m in r for r in table.values())]
    header = ["row", "n"] + [f"{c} ({UNITS[c]})" if UNITS[c] else c for c in cols]
    rows = [[name, str(r["n"])] + [format_cell(r.get(c), digits) for c in cols] for name, r in table.items()]
    widths = [max(len(x[i]) for x in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(x, widths)))
                     for x in [header] + rows)


def write_csv(path: Path, table: dict) -> Path:
    """One line per row: name, n, then mean, ci_lo, ci_hi per metric (empty when absent)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "n"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "ci_lo", "ci_hi")])
        for name, r in table.items():
            cells = []
            for m in METRICS:
                st = r.get(m)
                ok = st is not None and st.get("mean") is not None and math.isfinite(st["mean"])
                cells += [st["mean"], st["ci95"][0], st["ci95"][1]] if ok else ["", "", ""]
            w.writerow([name, r["n"], *cells])
    return path


def write_results(out: str | Path, results: dict) -> dict[str, Path]:
    """``metrics.json`` (strict JSON), ``metrics_<mode>_d<Δ>.csv`` per table and ``index.html``."""
    from avworld.viz.html import HtmlReport

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "metrics.json"}
    paths["json"].write_text(json.dumps(jsonable(results), indent=1))
    page = HtmlReport("World-model evaluation")
    for note in results.get("notes", []):
        page.paragraph(note)
    for mode, per in results["tables"].items():
        for d, table in per.items():
            key = f"{mode}_d{d}"
            paths[key] = write_csv(out / f"metrics_{key}.csv", table)
            page.heading(f"{mode}, Δ = {d} ({paths[key].name})")
            cols = [m for m in METRICS if any(m in r for r in table.values())]
            page.table(["row", "n", *cols], [[n, r["n"], *(format_cell(r.get(c)) for c in cols)]
                                             for n, r in table.items()])
            fd = results.get("frechet", {}).get(mode, {}).get(str(d)) or results.get("frechet", {}).get(mode, {}).get(d)
            if fd:
                page.paragraph(f"{FD_LABEL}: " + ", ".join(f"{k} {v:.3f}" for k, v in fd.items()
                                                            if isinstance(v, float) and math.isfinite(v)))
    page.heading("Not computed")
    for name, note in results.get("perceptual", {}).items():
        page.paragraph(f"{name}: {note}")
    paths["html"] = page.write(out / "index.html")
    return paths
