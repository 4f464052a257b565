"""Small line plots drawn with Pillow (no plotting library needed at run time)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194))


@dataclass
class Series:
    x: np.ndarray
    y: np.ndarray
    label: str = ""
    color: tuple[int, int, int] | None = None


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    return np.arange(np.ceil(lo / step) * step, hi + 1e-9 * step, step)


def line_plot(series: list[Series], title: str = "", xlabel: str = "", ylabel: str = "",
              size: tuple[int, int] = (640, 300), ylim: tuple[float, float] | None = None) -> np.ndarray:
    """Render series into an (H, W, 3) uint8 image with axes, ticks and a legend."""
    w, h = size
    img = Image.new("RGB", size, "white")
    dr = ImageDraw.Draw(img)
    left, right, top, bottom = 60, 10, 24, 36
    xs = np.concatenate([np.asarray(s.x, float) for s in series]) if series else np.array([0.0, 1.0])
    ys = np.concatenate([np.asarray(s.y, float) for s in series]) if series else np.array([0.0, 1.0])
    ys = ys[np.isfinite(ys)]
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = ylim if ylim is not None else (float(ys.min()) if len(ys) else 0.0, float(ys.max()) if len(ys) else 1.0)
    if y1 <= y0:
        y0, y1 = y0 - 1.0, y1 + 1.0
    if x1 <= x0:
        x1 = x0 + 1.0

    def px(x, y):
        u = left + (np.asarray(x, float) - x0) / (x1 - x0) * (w - left - right)
        v = top + (1 - (np.clip(np.asarray(y, float), y0, y1) - y0) / (y1 - y0)) * (h - top - bottom)
        return u, v

    dr.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for t in _ticks(x0, x1):
        u, _ = px(t, y0)
        dr.line([(u, h - bottom), (u, h - bottom + 4)], fill=(0, 0, 0))
        dr.text((u - 12, h - bottom + 6), f"{t:g}", fill=(0, 0, 0))
    for t in _ticks(y0, y1):
        _, v = px(x0, t)
        dr.line([(left - 4, v), (left, v)], fill=(0, 0, 0))
        dr.line([(left + 1, v), (w - right - 1, v)], fill=(235, 235, 235))
        dr.text((4, v - 6), f"{t:g}", fill=(0, 0, 0))
    for k, s in enumerate(series):
        color = s.color or PALETTE[k % len(PALETTE)]
        x, y = np.asarray(s.x, float), np.asarray(s.y, float)
        ok = np.isfinite(y)
        if len(x) > 4 * w:  # keep min/max per pixel column so peaks stay visible
            cols = ((x - x0) / (x1 - x0) * (w - left - right)).astype(int)
            pts = []
            for c in np.unique(cols[ok]):
                sel = ok & (cols == c)
                pts += [(x[sel][0], y[sel].min()), (x[sel][0], y[sel].max())]
            x, y = np.array(pts).T if pts else (x, y)
            ok = np.isfinite(y)
        u, v = px(x[ok], y[ok])
        if len(u) > 1:
            dr.line(list(zip(u.tolist(), v.tolist())), fill=color, width=1)
        if s.label:
            dr.text((left + 8 + 110 * k, 6), s.label, fill=color)
    dr.text((w // 2 - 4 * len(title), 6 if not any(s.label for s in series) else h - 14), title, fill=(0, 0, 0))
    dr.text((w - right - 8 * len(xlabel), h - 14), xlabel, fill=(80, 80, 80))
    dr.text((4, top - 14), ylabel, fill=(80, 80, 80))
    return np.asarray(img)
