"""The HTML report of ``avworld separation eval active --out DIR``: ``DIR/index.html`` and ``DIR/report/``.

At the top, the metrics table of all the episodes evaluated (means with 95 % Student-t intervals,
as ``metrics.json``). Then, for the first few episodes (``--report-episodes``, default 4):

* the agent's path on the house's top-down map (:func:`avworld.viz.map_figure.map_figure`: start
  arrow at the target, every source a red dot);
* three audio players, each over the whole episode (its T steps of 1 s one after the other): the
  binaural mixture the agent heard, the final monaural estimate (the separator's magnitudes after
  the memory's last refinement of each step, with the target's STFT phase: exactly the waveform
  SI-SDR was computed on) and the dry monaural target;
* the spectrogram (dB) of each, on one colour scale per episode.

WAVs are 16-bit PCM; the three clips of an episode share one gain (the loudest's peak at
-1 dBFS, so their levels compare), written to ``report/episodes.json`` with the files' names.
Built on :class:`avworld.viz.html.HtmlReport`; every link is relative.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from avworld.eval.audio_metrics import stft

SAMPLE_RATE = 16000
PLAY_PEAK_DBFS = -1.0
SPEC_FFT, SPEC_HOP, SPEC_DB_RANGE = 512, 256, 80.0
PATH_COLOUR = (40, 90, 220)
#: metrics table rows: aggregate key -> label
METRIC_LABELS = {
    "si_sdr": "SI-SDR of the final estimates (dB)",
    "si_sdri": "SI-SDRi over the mixture (dB)",
    "si_sdr_mixture": "SI-SDR of the mixture, mean of the ears (dB)",
    "si_sdri_tp": "SI-SDRi over the mixture's magnitudes with the true phase (dB)",
    "si_sdr_mixture_tp": "SI-SDR of the mixture's magnitudes with the true phase (dB)",
    "stft_distance": "STFT distance of the final estimates",
}


def episode_waveforms(example: dict) -> dict[str, np.ndarray]:
    """One kept episode -> whole-episode float64 clips: ``mixture`` (2, T n), ``estimate`` (1, T n) and
    ``target`` (1, T n). The estimate is the final magnitudes with the target's phase, step by step."""
    import torch

    from avworld.eval.separation_metrics import waveforms
    from avworld.models.separation.spectrogram import phases

    target = np.asarray(example["target_mono"], dtype=np.float32)  # (T, n)
    est = waveforms(example["estimates"], phases(torch.as_tensor(target).unsqueeze(1)))  # (T, 1, n)
    audio = np.asarray(example["audio"], dtype=np.float64)  # (T, 2, n)
    return {"mixture": np.concatenate(list(audio), axis=-1), "estimate": np.concatenate(list(est), axis=-1),
            "target": target.astype(np.float64).reshape(1, -1)}


def _write_wav(path: Path, clip: np.ndarray, gain: float) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(clip.T * gain, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _spectrogram_db(clip: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.abs(stft(clip, SPEC_FFT, SPEC_HOP)) + 1e-12)  # (C, F, frames)


def _spectrogram_png(path: Path, db: np.ndarray, vmax: float, title: str, steps: int) -> None:
    from matplotlib.figure import Figure

    channels = len(db)
    fig = Figure(figsize=(6.4, 0.6 + 1.5 * channels), dpi=80, layout="constrained")
    axes = np.atleast_1d(fig.subplots(channels, 1, sharex=True))
    extent = (0.0, float(steps), 0.0, SAMPLE_RATE / 2e3)
    labels = ("left", "right") if channels == 2 else ("mono",)
    for ax, ch, label in zip(axes, db, labels):
        im = ax.imshow(ch, origin="lower", aspect="auto", extent=extent, cmap="magma", vmin=vmax - SPEC_DB_RANGE,
                       vmax=vmax, interpolation="nearest")
        ax.set_ylabel(f"{label}\nkHz", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_title(title, fontsize=8)
    axes[-1].set_xlabel("episode step (s)", fontsize=7)
    cbar = fig.colorbar(im, ax=list(axes), shrink=0.9)
    cbar.ax.tick_params(labelsize=6)
    cbar.set_label("dB", fontsize=7)
    fig.savefig(path, format="png", metadata={"Software": None})


def _map_png(path: Path, example: dict, world_of) -> bool:
    from PIL import Image

    from avworld.viz.map_figure import map_figure

    if world_of is None:
        return False
    scene, nav = world_of(example["record"]["scene"])
    poses = np.asarray(example["poses"], dtype=np.float64)
    img = map_figure(scene, nav, 30.0, agent=poses[0], sources=[p for p, _ in example["sources"]],
                     paths={"agent": (poses[:, :2], PATH_COLOUR)})
    Image.fromarray(img).save(path)
    return True


def _cell(a: dict) -> list[str]:
    return [f"{a['mean']:.3f}", f"[{a['ci_low']:.3f}, {a['ci_high']:.3f}]", str(a["n"])]


def _player(wav: str, png: str, caption: str) -> str:
    c = html.escape(caption)
    return (f"<figure><figcaption>{c}</figcaption><audio controls preload=\"none\" src=\"{html.escape(wav)}\">"
            f"</audio><img src=\"{html.escape(png)}\" alt=\"spectrogram: {c}\"></figure>")


def write_separation_report(out_dir: str | Path, result: dict, examples: list[dict], world_of=None) -> Path:
    """Write ``out_dir/index.html`` (+ ``out_dir/report/``) for an :func:`~avworld.eval.separation_eval.evaluate`
    ``result`` and its kept ``examples``; ``world_of(scene) -> (Scene, NavGrid)`` draws the maps (None: no maps)."""
    from avworld.viz.html import HtmlReport

    out = Path(out_dir)
    sub = out / "report"
    sub.mkdir(parents=True, exist_ok=True)
    agent = result.get("agent", "?")
    rep = HtmlReport(f"Active separation: {agent}")
    reward = result.get("reward")
    rep.paragraph(f"Agent {agent} (motion reward: {reward or 'none, a fixed baseline'}), memory "
                  f"{result.get('memory', '?')}, separator {result.get('passive', '?')}, checkpoint "
                  f"{result.get('checkpoint')}; {result.get('num_episodes', len(result['per_episode']))} episodes of "
                  f"{result.get('episodes', '?')}. Each episode's number is the mean over its steps of the final "
                  "estimates (after the memory's last refinement of each step, with the target's phase); means over "
                  "episodes with 95% Student-t intervals.")
    rep.heading("Metrics")
    rows = [[METRIC_LABELS.get(k, k), *_cell(a)] for k, a in result["aggregate"].items()]
    rep.table(["metric", "mean", "95% CI", "episodes"], rows)
    rep.heading(f"Episodes ({len(examples)} shown)")
    rep.paragraph("Audio: the whole episode, its 1 s steps one after the other. The mixture (binaural) is what the "
                  "agent heard; the estimate (monaural) is the waveform the metrics scored; the target (monaural) is "
                  "the dry clip. The three players of an episode share one gain and its spectrograms one colour "
                  f"scale (the mixture's peak down to -{SPEC_DB_RANGE:g} dB).")
    index = []
    for k, ex in enumerate(examples):
        rec = ex["record"]
        clips = episode_waveforms(ex)
        steps = int(len(ex["audio"]))
        peak = max(float(np.abs(c).max()) for c in clips.values())
        gain = 10 ** (PLAY_PEAK_DBFS / 20) / peak if peak > 0 else 1.0
        dbs = {name: _spectrogram_db(c) for name, c in clips.items()}
        vmax = float(dbs["mixture"].max())
        stem = f"ep{k:02d}"
        files = {}
        cols = []
        captions = {"mixture": "mixture (binaural)", "estimate": "final estimate (monaural)",
                    "target": "ground-truth target (monaural)"}
        for name, clip in clips.items():
            wav, png = f"report/{stem}_{name}.wav", f"report/{stem}_{name}_spec.png"
            _write_wav(out / wav, clip, gain)
            _spectrogram_png(out / png, dbs[name], vmax, captions[name], steps)
            files[name] = wav
            cols.append(_player(wav, png, captions[name]))
        rep.heading(f"Episode {rec['episode_id']} (scene {rec['scene']})", level=3)
        types = ", ".join(s for _, s in ex["sources"]) or "?"
        rep.paragraph(f"{steps} steps; sources {types} (the first is the target); SI-SDR {rec['si_sdr']:.2f} dB "
                      f"(mixture {rec['si_sdr_mixture']:.2f} dB, SI-SDRi {rec['si_sdri']:.2f} dB), STFT distance "
                      f"{rec['stft_distance']:.3f}; mean distance to the target {rec['mean_target_distance_m']:.2f} m; "
                      f"actions {' '.join(str(int(a)) for a in ex['actions'])} (0 forward, 1 left, 2 right, "
                      "3 stay).")
        map_rel = f"report/{stem}_map.png"
        left = []
        if _map_png(out / map_rel, ex, world_of):
            left.append(rep.figure_html(map_rel, f"episode {rec['episode_id']}: start (arrow, at the target), "
                                                 "sources (red), the agent's path (blue)"))
            files["map"] = map_rel
        if left:
            rep.row(left, cols)
        else:
            rep.row(cols)
        index.append({"episode_id": rec["episode_id"], "scene": rec["scene"], "steps": steps, "gain": gain,
                      "samples": int(clips["target"].shape[-1]), "sample_rate": SAMPLE_RATE, "files": files,
                      "record": rec})
    (sub / "episodes.json").write_text(json.dumps(index, indent=1, default=_finite) + "\n")
    return rep.write(out / "index.html")


def _finite(v):
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    return None if isinstance(v, float) and not math.isfinite(v) else v
