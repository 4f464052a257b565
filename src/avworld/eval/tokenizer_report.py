"""Metric tables and the HTML page of a tokenizer evaluation (issue 17, item 6); no torch.

* :func:`image_metrics_table` / :func:`audio_metrics_table` - per reconstruction (a tokenizer, a
  baseline of :mod:`avworld.eval.tokenizer_baselines`), the mean of each metric of
  :mod:`avworld.eval.image_metrics` / :mod:`avworld.eval.audio_metrics` over the items with a 95%
  percentile-bootstrap interval (2,000 resamples, seeded), e.g.
  ``{"copy": {"n": 71, "psnr": {"mean": 100.0, "ci95": [100.0, 100.0], "n": 71}, ...}}``.
* :func:`format_metrics_table` - the same as aligned text for a terminal.
* :func:`write_html_report` - a self-contained folder: ``index.html`` (originals vs reconstructions,
  audio players, spectrograms, the tables), PNG/WAV files and ``metrics.json``; written by
  :mod:`avworld.eval.tokenizer_page` (matplotlib and soundfile are imported only there).

Conventions: PSNR and SI-SDR are capped at :data:`CAP_DB` = 100 dB, so an exact copy scores 100
(not ``inf``) and the JSON stays finite. A metric that is undefined for an item (NaN: ITD/IPD/SI-SDR
of a silent clip) is left out of that metric's mean; its ``n`` says how many items counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avworld.eval import audio_metrics as am
from avworld.eval import image_metrics as im
from avworld.eval.nav_metrics import MetricError

CAP_DB = 100.0
N_BOOT = 2000
CI_LEVEL = 0.95
IMAGE_METRICS = ("psnr", "ssim", "ms_ssim")
AUDIO_METRICS = ("lsd", "spectral_ssim", "mr_stft", "si_sdr", "ild_error", "itd_error", "ipd_error")
UNITS = {"psnr": "dB", "ssim": "", "ms_ssim": "", "lsd": "dB", "spectral_ssim": "", "mr_stft": "",
         "si_sdr": "dB", "ild_error": "dB", "itd_error": "ms", "ipd_error": "rad"}
CHUNK = 256  # items per metric call: 256 frames of 128 x 128 px keep each float64 array under 100 MB
HIGHER_IS_BETTER = {"psnr", "ssim", "ms_ssim", "spectral_ssim", "si_sdr"}


class ReportError(MetricError):
    """Input to a tokenizer report (tables, sections, output folder) is malformed."""


def summarize(values, seed: int = 0, n_boot: int = N_BOOT, level: float = CI_LEVEL) -> dict:
    """Mean of the finite ``values`` and its percentile-bootstrap interval: ``{mean, ci95, n}``.

    Resamples are drawn with ``numpy.random.default_rng(seed)`` in chunks (memory stays small for
    tens of thousands of items). No finite value gives ``mean`` NaN, ``ci95`` [NaN, NaN], ``n`` 0.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"mean": math.nan, "ci95": [math.nan, math.nan], "n": 0}
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2_000_000 // n))
    means = []
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        means.append(v[idx].mean(axis=1))
    boot = np.concatenate(means)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(v.mean()), "ci95": [float(lo), float(hi)], "n": n}


def chunked(fn, preds, target, chunk: int = CHUNK, **kwargs) -> np.ndarray:
    """``fn(preds, target, **kwargs)`` over ``chunk`` items at a time, concatenated (bounded memory)."""
    return np.concatenate([fn(preds[i:i + chunk], target[i:i + chunk], **kwargs)
                           for i in range(0, len(target), chunk)])


def _check_names(reconstructions) -> None:
    if not isinstance(reconstructions, dict):
        raise ReportError(f"reconstructions must be a dict name -> array, got {type(reconstructions).__name__}")
    for name in reconstructions:
        if not isinstance(name, str) or not name.strip():
            raise ReportError(f"reconstruction names must be non-empty strings, got {name!r}")


def ms_ssim_scales(height: int, width: int) -> int:
    """5 MS-SSIM scales from 176 px (the standard), 3 from 44 px (64 and 128 px frames), else 0 (left out)."""
    side = min(height, width)
    return 5 if side >= im.SSIM_WINDOW * 16 else 3 if side >= im.SSIM_WINDOW * 4 else 0


def image_metrics_table(originals, reconstructions: dict, seed: int = 0) -> dict:
    """Per reconstruction: PSNR (capped at 100 dB), SSIM and MS-SSIM means with 95% intervals.

    ``originals`` uint8 ``(N, H, W, 3)``; ``reconstructions`` name -> uint8 array of the same shape.
    MS-SSIM uses :func:`ms_ssim_scales` scales (recorded as ``ms_ssim_scales``); below 44 px it is
    left out (``None``). Images below 11 px raise (SSIM's window).
    """
    _check_names(reconstructions)
    orig = np.asarray(originals)
    if orig.ndim != 4 or orig.dtype != np.uint8:
        raise ReportError(f"originals must be uint8 (N, H, W, C), got {orig.dtype} {orig.shape}; "
                          "pass the frames as stored (uint8, channels last)")
    scales = ms_ssim_scales(orig.shape[1], orig.shape[2])
    table = {}
    for name, rec in reconstructions.items():
        rec = np.asarray(rec)
        if rec.shape != orig.shape or rec.dtype != np.uint8:
            raise ReportError(f"reconstruction {name!r} is {rec.dtype} {rec.shape}, originals are uint8 {orig.shape}; "
                              "decode to the original size and convert with np.clip(x * 255, 0, 255).round()"
                              ".astype(np.uint8)")
        w = im.MS_SSIM_WEIGHTS[:scales]
        ms = summarize(chunked(im.ms_ssim, rec, orig, weights=w), seed) if scales else None
        row = {"n": int(orig.shape[0]),
               "psnr": summarize(chunked(im.psnr, rec, orig, max_db=CAP_DB), seed),
               "ssim": summarize(chunked(im.ssim, rec, orig), seed),
               "ms_ssim": ms,
               "ms_ssim_scales": scales}
        table[name] = row
    return table


def _mask(mask, n: int) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != (n,):
        raise ReportError(f"mask must be a boolean array of shape ({n},) (one flag per clip), got {m.dtype} {m.shape}; "
                          "e.g. np.asarray(line_of_sight, dtype=bool)")
    if not m.any():
        raise ReportError("mask selects no clip; pass mask=None to use all clips, or a mask with at least one True")
    return m


def audio_metrics_table(originals, reconstructions: dict, sample_rate: int = am.SAMPLE_RATE, mask=None,
                        seed: int = 0) -> dict:
    """Per reconstruction: LSD, spectral SSIM, MR-STFT, SI-SDR (capped 100 dB), ILD/ITD/IPD errors.

    ``originals`` float ``(N, 2, S)``; ``reconstructions`` name -> array of that shape. ``mask``
    (bool ``(N,)``, e.g. the clips with line of sight to the source) selects the clips that count;
    each row records ``n`` (selected) and ``n_total``. ``ild_error`` is the mean over the octave
    bands of each clip (the per-band means are in ``ild_error_bands``, keyed by centre Hz);
    ``itd_error`` is in ms, ``ipd_error`` in radians.
    """
    _check_names(reconstructions)
    if np.ndim(originals) != 3:
        raise ReportError(f"originals must be float (N, 2, S) clips, got shape {np.shape(originals)}; "
                          "stack clips on axis 0 (x[None] for a single clip)")
    orig = np.asarray(originals)
    if orig.shape[1] != 2 or not np.issubdtype(orig.dtype, np.floating):
        raise ReportError(f"originals must be float binaural clips (N, 2, S), got {orig.dtype} {orig.shape}; "
                          "left and right on axis 1, e.g. x.astype(np.float32) / 32768 for int16 PCM")
    sel = _mask(mask, orig.shape[0])
    target = orig[sel]
    bands = [int(fc) for fc, _, _ in am.octave_bands(sample_rate)]
    table = {}
    for name, rec in reconstructions.items():
        rec = np.asarray(rec)
        if rec.shape != orig.shape:
            raise ReportError(f"reconstruction {name!r} has shape {rec.shape}, originals {orig.shape}; "
                              "decode to the original clip length (trim or pad the tail)")
        pred = rec[sel]  # dtype and finiteness are checked by the metrics, chunk by chunk
        ild = chunked(am.ild_error, pred, target, sample_rate=sample_rate)
        row = {"n": int(sel.sum()), "n_total": int(orig.shape[0]),
               "lsd": summarize(chunked(am.lsd, pred, target), seed),
               "spectral_ssim": summarize(chunked(am.spectral_ssim, pred, target), seed),
               "mr_stft": summarize(chunked(am.mr_stft_distance, pred, target), seed),
               "si_sdr": summarize(chunked(am.si_sdr, pred, target, max_db=CAP_DB), seed),
               "ild_error": summarize(ild.mean(axis=1), seed),
               "ild_error_bands": {str(fc): _finite_or_none(float(ild[:, k].mean())) for k, fc in enumerate(bands)},
               "itd_error": summarize(chunked(am.itd_error, pred, target, sample_rate=sample_rate), seed),
               "ipd_error": summarize(chunked(am.ipd_error, pred, target, sample_rate=sample_rate), seed)}
        table[name] = row
    return table


def _finite_or_none(x: float):
    return x if math.isfinite(x) else None


def jsonable(obj):
    """Replace NaN / inf by ``None`` and numpy scalars by Python ones (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, bool)):
        return obj if isinstance(obj, bool) else int(obj)
    if isinstance(obj, (float, np.floating)):
        return _finite_or_none(float(obj))
    return obj


def metric_columns(table: dict) -> list[str]:
    """The metrics present in a table, in the canonical order."""
    keys = [k for row in table.values() for k, v in row.items() if isinstance(v, dict) and "mean" in v]
    return [m for m in IMAGE_METRICS + AUDIO_METRICS if m in keys]


def format_cell(stat: dict | None, digits: int = 3) -> str:
    """``mean [lo, hi]`` of a summary (``-`` when missing or undefined)."""
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "-"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table_rows(table: dict, digits: int = 3) -> tuple[list[str], list[list[str]]]:
    """Header and rows (name, n, one ``mean [95% CI]`` cell per metric) for text or HTML output."""
    cols = metric_columns(table)
    header = ["name", "n"] + [f"{c} ({UNITS[c]})" if UNITS[c] else c for c in cols]
    rows = [[name, str(row["n"])] + [format_cell(row.get(c), digits) for c in cols] for name, row in table.items()]
    return header, rows


def format_metrics_table(table: dict, digits: int = 3) -> str:
    """Aligned plain-text table of :func:`image_metrics_table` / :func:`audio_metrics_table` output."""
    if not table:
        return "(no reconstructions)"
    header, rows = table_rows(table, digits)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join(lines)


@dataclass
class ImageSection:
    """Frames shown on the page: ``originals`` uint8 ``(K, H, W, 3)``, ``reconstructions`` name -> same shape.

    Keep K small (the page shows at most ``max_items`` of them); ``captions`` label the rows.
    """

    originals: np.ndarray
    reconstructions: dict
    captions: list[str] | None = None


@dataclass
class AudioSection:
    """Clips played on the page: ``originals`` float ``(K, 2, S)``, ``reconstructions`` name -> same shape."""

    originals: np.ndarray
    reconstructions: dict
    sample_rate: int = am.SAMPLE_RATE
    captions: list[str] | None = None


def write_html_report(out_dir: str | Path, title: str, image_section: ImageSection | None = None,
                      audio_section: AudioSection | None = None, image_table: dict | None = None,
                      audio_table: dict | None = None, notes=(), max_items: int = 8) -> Path:
    """Write ``out_dir/index.html`` with its PNG/WAV files and ``metrics.json``; return the HTML path.

    See :func:`avworld.eval.tokenizer_page.write_page` for the layout.
    """
    from avworld.eval.tokenizer_page import write_page

    return write_page(out_dir, title, image_section, audio_section, image_table, audio_table, notes, max_items)
