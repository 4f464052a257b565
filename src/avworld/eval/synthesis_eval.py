"""``avworld synthesis eval``: raw x_sim, the refined output, the pure neural baseline and the ground truth.

On the held-out source placements (the seed's protocol) of a π-AVAS data folder, every method is
scored against x_rx with :mod:`avworld.eval.synthesis_metrics`; the report (``report.html``) has the
metrics table with 95 % intervals, paired differences, audio players and spectrograms of a few test
poses, and optionally the NFE sweep (error against NFE 1..10 for Euler, Midpoint and Heun) as a PNG.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from avworld.eval.synthesis_metrics import HIGHER_IS_BETTER, METRICS, UNITS, all_metrics, mean_ci, paired_ci

METHODS = ("x_sim", "refined", "neural")


def add_eval_command(sub) -> None:
    ev = sub.add_parser("eval", help="score x_sim, the refiner and the pure neural baseline on held-out placements",
                        description="Writes metrics.json and report.html (table with 95%% intervals, audio players "
                                    "and spectrograms) to --out. --nfe-sweep adds the error-vs-NFE plot of Euler, "
                                    "Midpoint and Heun (NFE 1..10) on one environment.")
    ev.add_argument("--data", required=True, help="data folder of `avworld synthesis data`")
    ev.add_argument("--refiner", required=True, help="run folder or refiner.pt of `synthesis train --start refine`")
    ev.add_argument("--neural", default=None, help="run folder of `synthesis train --start neural` (the baseline)")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--solver", default="euler", choices=("euler", "midpoint", "heun"), help="default euler")
    ev.add_argument("--nfe", type=int, default=4, help="network calls per output, default 4")
    ev.add_argument("--max-examples", type=int, default=0,
                    help="evaluate this many held-out poses spread evenly over the split (0 = all)")
    ev.add_argument("--players", type=int, default=4, help="test poses shown with audio players, default 4")
    ev.add_argument("--nfe-sweep", action="store_true", help="also measure error against NFE for every solver")
    ev.add_argument("--sweep-env", type=int, default=0, help="environment of the NFE sweep, default 0")
    ev.add_argument("--sweep-examples", type=int, default=16, help="held-out poses of the NFE sweep, default 16")
    ev.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ev.add_argument("--device", default="cpu", help="cpu or cuda")
    ev.set_defaults(func=_cmd_eval)


def run_flow(model, x_tx, x_start, pose, solver: str = "euler", nfe: int = 4, batch: int = 16,
             device: str = "cpu", domain: str = "wave", phase_from=None, power: float = 0.3) -> tuple[np.ndarray, int]:
    """psi_1 from psi_0 = ``x_start`` (N, 2, T) for every example; returns (waveforms, network calls per batch).

    ``domain="mag"``: the flow runs on STFT magnitudes ** ``power`` (psi_0 = those of ``x_start``, or
    exactly 0 where ``x_start`` is all zeros: the neural baseline), and the result takes the phase of
    ``phase_from`` (N, 2, T) or (N, T) (default: ``x_start``).
    """
    import torch

    from avworld.models.synthesis import tf
    from avworld.models.synthesis.solvers import CountingField, solve

    outs, calls = [], 0
    phase_from = x_start if phase_from is None else phase_from
    with torch.no_grad():
        for i in range(0, len(x_tx), batch):
            tx = torch.as_tensor(x_tx[i:i + batch], device=device)
            p = torch.as_tensor(pose[i:i + batch], dtype=torch.float32, device=device)
            x0 = torch.as_tensor(x_start[i:i + batch], device=device)
            if domain == "mag":
                tx = tf.encode(tx, power)
                x0 = (tf.encode(x0, power) if x0.any()
                      else torch.zeros(len(x0), 2 * tf.BINS, tx.shape[-1], device=device))
            field = CountingField(lambda psi, t, tx=tx, p=p: model(psi, tx, p, t))
            y = solve(field, x0, solver, nfe)
            if domain == "mag":
                ph = torch.as_tensor(phase_from[i:i + batch], device=device)
                ph = ph[:, None].expand(-1, 2, -1) if ph.ndim == 2 else ph
                y = tf.decode(y, ph, x_tx.shape[-1], power)
            outs.append(y.cpu().numpy())
            calls = field.nfe
    return np.concatenate(outs), calls


def _subset(n: int, k: int) -> np.ndarray:
    return np.arange(n) if k <= 0 or k >= n else np.linspace(0, n - 1, k).round().astype(int)


def summarize(per_clip: dict[str, dict[str, np.ndarray]]) -> dict:
    """Means with 95 % intervals per method and metric, and paired differences of the refined output."""
    out: dict = {"methods": {}, "paired": {}}
    for m, vals in per_clip.items():
        out["methods"][m] = {k: dict(zip(("mean", "ci95", "n"), mean_ci(v))) for k, v in vals.items()}
    if "refined" in per_clip:
        for other in per_clip:
            if other != "refined":
                out["paired"][f"refined-{other}"] = {
                    k: dict(zip(("mean", "ci95", "n"), paired_ci(per_clip["refined"][k], per_clip[other][k])))
                    for k in METRICS}
    return out


def nfe_sweep(model, data: dict, sel: np.ndarray, nfes=range(1, 11), device: str = "cpu") -> dict:
    """{solver: {metric: [mean per NFE]}} on the examples ``sel`` (MAG, ENV, LRE)."""
    from avworld.eval.synthesis_metrics import envelope_distance, lre, mag_distance

    pose = np.concatenate([data["poses"], data["source"]], axis=1)[sel]
    res: dict = {"nfe": list(nfes)}
    for solver in ("euler", "midpoint", "heun"):
        rows = {"mag": [], "env": [], "lre": []}
        for n in nfes:
            cfg = getattr(model, "config", None)
            y, _ = run_flow(model, data["x_tx"][sel], data["x_sim"][sel], pose, solver, n, device=device,
                            domain=getattr(cfg, "domain", "wave"), power=getattr(cfg, "mag_power", 0.3))
            t = data["x_rx"][sel]
            rows["mag"].append(float(np.mean(mag_distance(y, t))))
            rows["env"].append(float(np.mean(envelope_distance(y, t))))
            rows["lre"].append(float(np.mean(lre(y, t))))
        res[solver] = rows
    return res


def sweep_plot(sweep: dict, path: Path, metric: str = "mag", raw: float | None = None) -> Path:
    from PIL import Image

    from avworld.viz.plots import Series, line_plot

    x = np.asarray(sweep["nfe"], float)
    series = [Series(x, np.asarray(sweep[s][metric]), s) for s in ("euler", "midpoint", "heun")]
    if raw is not None:
        series.append(Series(x, np.full(len(x), raw), "raw x_sim", (120, 120, 120)))
    img = line_plot(series, title=f"{metric.upper()} vs NFE", xlabel="NFE", ylabel=metric.upper())
    Image.fromarray(img).save(path)
    return path


def spectrogram_png(audio: np.ndarray, path: Path) -> Path:
    """Both ears' STFT magnitude in dB (left on top), 70 dB range, as a PNG."""
    from PIL import Image

    from avworld.eval.audio_metrics import stft
    from avworld.viz.colorize import _RAMP

    rows = []
    for ch in audio:
        db = 20 * np.log10(np.abs(stft(ch[None].astype(np.float64), 512, 128))[0] + 1e-6)
        x = np.clip((db - (db.max() - 70.0)) / 70.0, 0, 1)[::-1] * (len(_RAMP) - 1)
        i = np.minimum(x.astype(int), len(_RAMP) - 2)
        f = (x - i)[..., None]
        rows += [(_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8), np.full((3, x.shape[1], 3), 255, np.uint8)]
    img = np.concatenate(rows[:-1], axis=0)
    Image.fromarray(img).resize((img.shape[1] * 4, img.shape[0])).save(path)
    return path


def _write_report(out: Path, summary: dict, data: dict, outputs: dict, players: np.ndarray, sweep_png: str | None,
                  note: str) -> Path:
    import soundfile as sf

    from avworld.viz.html import HtmlReport

    rep = HtmlReport("π-AVAS: physics-integrated binaural synthesis")
    rep.paragraph(note)
    rep.heading("Held-out source placements: error against x_rx (mean ± 95 % interval)")
    header = ["method"] + [f"{k} ({UNITS[k]})" if UNITS[k] else k for k in METRICS]
    rows = []
    for m, vals in summary["methods"].items():
        rows.append([m] + [f"{vals[k]['mean']:.4g} ± {vals[k]['ci95']:.2g}" for k in METRICS])
    rep.table(header, rows)
    if summary["paired"]:
        rep.heading("Paired differences (refined minus other; negative is better except sisdr)")
        rows = [[name] + [f"{v[k]['mean']:.3g} ± {v[k]['ci95']:.2g}" for k in METRICS]
                for name, v in summary["paired"].items()]
        rep.table(header, rows)
    if sweep_png:
        rep.heading("Error against NFE (Euler, Midpoint, Heun)")
        rep.figures([(sweep_png, "MAG against the number of network calls on one environment's held-out poses")])
    rep.heading("Test poses: listen (headphones) and compare")
    sr = int(data["sample_rate_hz"])
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    for j in players:
        cols = []
        clips = {"x_tx (source, mono)": np.stack([data["x_tx"][j]] * 2), **{m: outputs[m][j] for m in outputs},
                 "x_rx (ground truth)": data["x_rx"][j]}
        for name, audio in clips.items():
            stem = f"pose{j}_{name.split()[0]}"
            sf.write(media / f"{stem}.wav", np.clip(audio.T, -1, 1), sr)
            spectrogram_png(audio, media / f"{stem}.png")
            cols.append([f'<figure><img src="media/{stem}.png" width="256" alt="{name}"><figcaption>{name}'
                         f'</figcaption><audio controls preload="none" src="media/{stem}.wav"></audio></figure>'])
        x, y, _, yaw = data["poses"][j]
        rep.paragraph(f"pose {j}: env {int(data['env'][j])}, placement {int(data['placement'][j])}, listener "
                      f"({x:.2f}, {y:.2f}) yaw {np.degrees(yaw):.0f} deg, source {np.round(data['source'][j], 2)}")
        rep.row(*cols)
    return rep.write(out / "report.html")


def evaluate(data_dir, refiner, out_dir, neural=None, solver: str = "euler", nfe: int = 4, max_examples: int = 0,
             players: int = 4, sweep: bool = False, sweep_env: int = 0, sweep_examples: int = 16,
             device: str = "cpu") -> dict:
    """Score the methods on the held-out placements, write metrics.json / report.html; returns the summary."""
    from avworld.data.synthesis import load_split
    from avworld.train.synthesis import load_refiner

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = load_split(data_dir, "test")
    sel = _subset(len(full["x_tx"]), max_examples)
    data = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in full.items()}
    sr = int(data["sample_rate_hz"])
    pose = np.concatenate([data["poses"], data["source"]], axis=1)
    outputs = {"x_sim": data["x_sim"]}
    timing = {}
    model, head = load_refiner(refiner, device)
    t0 = time.perf_counter()
    outputs["refined"], _ = run_flow(model, data["x_tx"], data["x_sim"], pose, solver, nfe, device=device,
                                     domain=model.config.domain, power=model.config.mag_power)
    seconds_audio = len(sel) * data["x_tx"].shape[1] / sr
    timing["refined_s_per_audio_s_per_nfe"] = (time.perf_counter() - t0) / seconds_audio / nfe
    nhead = None
    if neural is not None:
        nmodel, nhead = load_refiner(neural, device)
        outputs["neural"], _ = run_flow(nmodel, data["x_tx"], np.zeros_like(data["x_sim"]), pose, solver, nfe,
                                        device=device, domain=nmodel.config.domain, phase_from=data["x_tx"],
                                        power=nmodel.config.mag_power)
    per_clip = {m: all_metrics(y, data["x_rx"], data["x_tx"], sr) for m, y in outputs.items()}
    summary = summarize(per_clip)
    summary.update({"examples": int(len(sel)), "solver": solver, "nfe": nfe, "timing": timing,
                    "refiner": {"path": str(refiner), "step": int(head["step"])},
                    "neural": None if nhead is None else {"path": str(neural), "step": int(nhead["step"])}})
    sweep_png = None
    if sweep:
        env_sel = np.flatnonzero(full["env"] == sweep_env)
        env_sel = env_sel[_subset(len(env_sel), sweep_examples)]
        res = nfe_sweep(model, full, env_sel, device=device)
        from avworld.eval.synthesis_metrics import mag_distance

        raw = float(np.mean(mag_distance(full["x_sim"][env_sel], full["x_rx"][env_sel])))
        res["raw_x_sim_mag"] = raw
        summary["nfe_sweep"] = {"env": sweep_env, "examples": int(len(env_sel)), **res}
        sweep_plot(res, out / "nfe_sweep.png", "mag", raw)
        sweep_png = "nfe_sweep.png"
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    np.savez(out / "per_clip.npz", **{f"{m}/{k}": v for m, vals in per_clip.items() for k, v in vals.items()})
    note = (f"{len(sel)} held-out poses (placements other than each environment's training placement) of "
            f"{data_dir}; solver {solver}, NFE {nfe}; refiner step {head['step']}"
            + (f", neural baseline step {nhead['step']}" if nhead else ", no neural baseline given")
            + ". x_rx is the full engine on the true scene, a stand-in for recordings.")
    _write_report(out, summary, data, outputs, _subset(len(sel), players) if players > 0 else [], sweep_png,
                  note)
    return summary


def format_summary(summary: dict) -> str:
    lines = ["method   " + " ".join(f"{k:>16}" for k in METRICS)]
    for m, vals in summary["methods"].items():
        lines.append(f"{m:8} " + " ".join(f"{vals[k]['mean']:>8.4g}±{vals[k]['ci95']:<7.2g}" for k in METRICS))
    for name, v in summary["paired"].items():
        lines.append(f"{name:8} " + " ".join(f"{v[k]['mean']:>8.3g}±{v[k]['ci95']:<7.2g}" for k in METRICS))
    better = ", ".join(k for k in METRICS if k in HIGHER_IS_BETTER)
    lines.append(f"(lower is better except {better})")
    return "\n".join(lines)


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    summary = evaluate(args.data, args.refiner, args.out, neural=args.neural, solver=args.solver, nfe=args.nfe,
                       max_examples=args.max_examples, players=args.players, sweep=args.nfe_sweep,
                       sweep_env=args.sweep_env, sweep_examples=args.sweep_examples, device=args.device)
    print(format_summary(summary))
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0
