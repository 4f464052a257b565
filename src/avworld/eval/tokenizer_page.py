"""The HTML page of a tokenizer evaluation: one self-contained folder, no external URLs.

Layout of ``out_dir`` (written by :func:`write_page`, called as
:func:`avworld.eval.tokenizer_report.write_html_report`)::

    index.html     title, notes, metric tables with their caption, the image grid, the audio clips
    metrics.json   {"title", "image": table, "audio": table, "notes"} (strict JSON: NaN -> null)
    images/        ex{k}_{version}.png  frame k of each version, nearest-neighbour upscaled to >= 128 px
    audio/         clip{k}_{version}.wav  16-bit PCM; clip{k}_{version}_spec.png  left/right spectrograms

Versions are ``original`` and each reconstruction, in the order given (names are turned into safe
file names). Every version of a clip gets the same playback gain (the original's peak -> -1 dBFS,
AVW clips are quiet) and the same spectrogram colour scale (the original's peak down to -80 dB),
so what you hear and see compares like with like. Output is deterministic: the same input gives
the same bytes (PNG without a timestamp or software tag, WAV, JSON).
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path

import numpy as np

from avworld.eval.audio_metrics import stft
from avworld.eval.tokenizer_report import AudioSection, ImageSection, ReportError, jsonable, table_rows

MIN_DISPLAY_PX = 128
PLAY_PEAK_DBFS = -1.0
SPEC_DB_RANGE = 80.0
SPEC_FFT = 256

METRICS_CAPTION = (
    "Each cell is the mean over the items and its 95% bootstrap interval [low, high]. Images: PSNR (dB, capped at "
    "100 dB so an exact copy scores 100), SSIM and MS-SSIM (3 scales below 176 px, 5 from 176 px) on frames scaled "
    "to [0, 1]; higher is better. Audio: log-spectral distance LSD (dB), spectral SSIM of the dB spectrograms, "
    "multi-resolution STFT distance (spectral convergence + log-magnitude L1, 3 resolutions), SI-SDR (dB, capped at "
    "100 dB); and the binaural cues: ILD error (dB, mean over octave bands 125 Hz - 8 kHz), ITD error (ms, from the "
    "cross-correlation of the ears below 1.5 kHz) and IPD error (rad, below 1.5 kHz); lower is better except "
    "spectral SSIM and SI-SDR. LPIPS and FAD are not computed: they need pretrained networks, and avworld downloads "
    "no weights. Definitions: docs/metrics.md."
)


def _slugs(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower() or "version"
        slug, k = base, 2
        while slug in out:
            slug, k = f"{base}-{k}", k + 1
        out.append(slug)
    return out


def _versions(section, kind: str, max_items: int) -> tuple[list[str], list[np.ndarray]]:
    orig = np.asarray(section.originals)
    if not isinstance(section.reconstructions, dict):
        raise ReportError(f"{kind} section: reconstructions must be a dict name -> array")
    names, arrays = ["original"], [orig]
    for name, rec in section.reconstructions.items():
        rec = np.asarray(rec)
        if rec.shape != orig.shape:
            raise ReportError(f"{kind} section: reconstruction {name!r} has shape {rec.shape}, originals {orig.shape}; "
                              "pass the same items for every version")
        names.append(str(name))
        arrays.append(rec)
    k = min(len(orig), int(max_items))
    return names, [a[:k] for a in arrays]


def _captions(section, k: int, prefix: str) -> list[str]:
    caps = list(section.captions) if section.captions is not None else []
    return [str(caps[i]) if i < len(caps) else f"{prefix} {i}" for i in range(k)]


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(rgb)).save(path, format="PNG", optimize=False)


def _image_grid(out: Path, section: ImageSection, max_items: int) -> str:
    names, arrays = _versions(section, "image", max_items)
    orig = arrays[0]
    if orig.ndim != 4 or orig.shape[-1] != 3 or any(a.dtype != np.uint8 for a in arrays):
        raise ReportError(f"image section: frames must be uint8 (K, H, W, 3), got {orig.dtype} {orig.shape}")
    k, h, w = orig.shape[:3]
    f = max(1, math.ceil(MIN_DISPLAY_PX / max(1, min(h, w))))
    (out / "images").mkdir(parents=True, exist_ok=True)
    slugs = _slugs(names)
    head = "<th>#</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for i, cap in enumerate(_captions(section, k, "frame")):
        cells = []
        for slug, arr in zip(slugs, arrays):
            rel = f"images/ex{i}_{slug}.png"
            _save_png(out / rel, np.repeat(np.repeat(arr[i], f, axis=0), f, axis=1))
            cells.append(f'<td><img src="{rel}" width="{w * f}" height="{h * f}" alt="{html.escape(slug)} {i}"></td>')
        rows.append(f"<tr><th>{html.escape(cap)}</th>{''.join(cells)}</tr>")
    return (f"<p>{k} frame(s), {h} x {w} px shown at {f}x (nearest neighbour); columns: original, then each "
            f"reconstruction.</p><table><tr>{head}</tr>{''.join(rows)}</table>")


def _spectrogram_png(path: Path, clip: np.ndarray, sample_rate: int, vmax: float, title: str) -> None:
    from matplotlib.figure import Figure

    n = clip.shape[-1]
    n_fft = min(SPEC_FFT, 1 << max(3, int(math.log2(max(n, 8)))))
    hop = max(8, n_fft // 8, n // 400)
    db = 20 * np.log10(np.abs(stft(clip.astype(np.float64), n_fft, hop)) + 1e-12)  # (2, F, frames)
    fig = Figure(figsize=(3.2, 2.8), dpi=100, layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    extent = (0.0, 1e3 * n / sample_rate, 0.0, sample_rate / 2e3)
    for ax, ear, label in zip(axes, db, ("left", "right")):
        im = ax.imshow(ear, origin="lower", aspect="auto", extent=extent, cmap="magma",
                       vmin=vmax - SPEC_DB_RANGE, vmax=vmax, interpolation="nearest")
        ax.set_ylabel(f"{label}\nkHz", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_title(title, fontsize=8)
    axes[1].set_xlabel("ms", fontsize=7)
    cbar = fig.colorbar(im, ax=list(axes), shrink=0.8)
    cbar.ax.tick_params(labelsize=6)
    cbar.set_label("dB", fontsize=7)
    fig.savefig(path, format="png", metadata={"Software": None})


def _write_wav(path: Path, clip: np.ndarray, sample_rate: int, gain: float) -> None:
    import soundfile as sf

    data = np.clip(clip.T.astype(np.float64) * gain, -1.0, 1.0)
    sf.write(str(path), data, int(sample_rate), subtype="PCM_16", format="WAV")


def _audio_clips(out: Path, section: AudioSection, max_items: int) -> str:
    names, arrays = _versions(section, "audio", max_items)
    orig = arrays[0]
    if orig.ndim != 3 or orig.shape[1] != 2 or not all(np.issubdtype(a.dtype, np.floating) for a in arrays):
        raise ReportError(f"audio section: clips must be float (K, 2, S), got {orig.dtype} {orig.shape}")
    sr = int(section.sample_rate)
    if sr <= 0:
        raise ReportError(f"audio section: sample_rate must be a positive number of Hz, got {section.sample_rate!r}")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    slugs = _slugs(names)
    parts = [f"<p>{len(orig)} clip(s) of {orig.shape[-1]} samples ({1e3 * orig.shape[-1] / sr:.0f} ms) at {sr} Hz. "
             f"All versions of a clip play with the same gain (the original's peak at {PLAY_PEAK_DBFS:g} dBFS) and "
             f"share the spectrogram colour scale (the original's peak down to -{SPEC_DB_RANGE:g} dB).</p>"]
    for i, cap in enumerate(_captions(section, len(orig), "clip")):
        peak = float(np.abs(orig[i]).max())
        gain = 10 ** (PLAY_PEAK_DBFS / 20) / peak if peak > 0 else 1.0
        vmax = 20 * math.log10(float(np.abs(stft(orig[i].astype(np.float64), SPEC_FFT, SPEC_FFT // 8)).max()) + 1e-12)
        cols = []
        for name, slug, arr in zip(names, slugs, arrays):
            wav, png = f"audio/clip{i}_{slug}.wav", f"audio/clip{i}_{slug}_spec.png"
            _write_wav(out / wav, arr[i], sr, gain)
            _spectrogram_png(out / png, arr[i], sr, vmax, name)
            cols.append(f'<figure><figcaption>{html.escape(name)}</figcaption>'
                        f'<audio controls preload="none" src="{wav}"></audio>'
                        f'<img src="{png}" alt="spectrogram of {html.escape(name)}, left and right"></figure>')
        parts.append(f"<h3>{html.escape(cap)}</h3><div class=\"row\">{''.join(cols)}</div>")
    return "".join(parts)


def _table_html(table: dict) -> str:
    header, rows = table_rows(table)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_page(out_dir, title: str, image_section: ImageSection | None = None,
               audio_section: AudioSection | None = None, image_table: dict | None = None,
               audio_table: dict | None = None, notes=(), max_items: int = 8) -> Path:
    """Write the folder described in the module docstring; return the path of ``index.html``."""
    from avworld.viz.html import HtmlReport

    if isinstance(notes, str):
        notes = [notes]
    notes = [str(n) for n in notes]
    if int(max_items) < 1:
        raise ReportError(f"max_items must be at least 1, got {max_items!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} exists and is not a directory; pass a folder for the report")
    out.mkdir(parents=True, exist_ok=True)
    report = HtmlReport(title)
    for line in notes:
        report.paragraph(line)
    if image_table or audio_table:
        report.heading("Metrics")
        report.paragraph(METRICS_CAPTION)
        for label, table in (("Images", image_table), ("Audio", audio_table)):
            if table:
                report.heading(label, level=3)
                n = next(iter(table.values()))
                if "n_total" in n:
                    report.paragraph(f"{n['n']} of {n['n_total']} clips selected.")
                report.parts.append(_table_html(table))
    if image_section is not None:
        report.heading("Images: originals vs reconstructions")
        report.parts.append(_image_grid(out, image_section, max_items))
    if audio_section is not None:
        report.heading("Audio: originals vs reconstructions")
        report.parts.append(_audio_clips(out, audio_section, max_items))
    metrics = {"title": title, "image": image_table or {}, "audio": audio_table or {}, "notes": notes}
    (out / "metrics.json").write_text(json.dumps(jsonable(metrics), indent=2, allow_nan=False) + "\n",
                                      encoding="utf-8")
    return report.write(out / "index.html")
