"""Top-down maps people can read: axis ticks in metres, a scale bar, room labels and a
legend, all outside the map area except the room labels.

:func:`map_figure` draws :func:`~avworld.vision.topdown.topdown_map` (plus named paths)
and frames it: tick marks and metre labels on the left and bottom edges, a legend panel
on the right holding a metric scale bar and one entry per thing drawn. Room names are
written inside their rooms, at the interior point farthest from the walls, on a pale box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avworld.vision.topdown import (
    AGENT_COLOUR,
    DOOR_COLOUR,
    GOAL_COLOUR,
    NAV_COLOUR,
    PATH_COLOUR,
    SOURCE_COLOUR,
    WALL_COLOUR,
    WINDOW_COLOUR,
    MapTransform,
    topdown_map,
)
from avworld.viz.plots import _ticks

TEXT = (30, 30, 30)
FRAME = (90, 90, 90)


@dataclass(frozen=True)
class Layout:
    """Margins (pixels) around the map: ``left``/``bottom`` hold the axis labels, ``right`` the legend."""

    left: int
    top: int
    right: int
    bottom: int


def font(size: int = 13) -> ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` pixels (the bitmap default where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _text_w(f, text: str) -> float:
    return float(f.getlength(text)) if hasattr(f, "getlength") else 6.0 * len(text)


def nice_length_m(max_m: float) -> float:
    """The largest 1-2-5 x 10^k length not above ``max_m`` (a scale bar length)."""
    if max_m <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(max_m))
    return max(m * mag for m in (1, 2, 5) if m * mag <= max_m + 1e-12)


def label_point(polygon) -> np.ndarray:
    """An interior point of ``polygon`` (N, 2) far from its edges (where a label fits best)."""
    from avworld.geometry.scene import Room

    poly = np.asarray(polygon, float)
    lo, hi = poly.min(axis=0), poly.max(axis=0)
    xs, ys = np.linspace(lo[0], hi[0], 24), np.linspace(lo[1], hi[1], 24)
    pts = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    inside = Room(0, "room", tuple(map(tuple, poly))).contains(pts)
    if not np.any(inside):
        return poly.mean(axis=0)
    pts = pts[inside]
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    t = np.clip(np.einsum("pkd,kd->pk", pts[:, None] - a[None], ab) / np.maximum((ab**2).sum(1), 1e-12), 0, 1)
    d = np.linalg.norm(pts[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1).min(axis=1)
    centre = poly.mean(axis=0)
    # the farthest from the walls, ties broken towards the centre
    score = d - 1e-3 * np.linalg.norm(pts - centre, axis=1)
    return pts[int(np.argmax(score))]


def draw_room_labels(img: Image.Image, tf: MapTransform, scene, size: int = 12) -> None:
    """Write each room's type (``living room``...) inside it on a pale box."""
    draw = ImageDraw.Draw(img, "RGBA")
    f = font(size)
    for room in scene.rooms:
        text = room.room_type.replace("_", " ")
        c, r = tf.world_to_pixel(label_point(room.polygon_array))
        w = _text_w(f, text)
        box = [c - w / 2 - 3, r - size / 2 - 3, c + w / 2 + 3, r + size / 2 + 3]
        draw.rectangle(box, fill=(255, 255, 255, 190))
        draw.text((c, r), text, fill=TEXT, font=f, anchor="mm")


def _legend_entries(navgrid, sources, goal, agent, path, paths, doors: bool) -> list[tuple[str, str, tuple]]:
    """(label, kind, colour) per thing drawn; kind is swatch / line / dot / ring / arrow."""
    items = []
    if navgrid is not None:
        items.append(("navigable", "swatch", NAV_COLOUR))
    items.append(("wall", "swatch", WALL_COLOUR))
    items.append(("window", "swatch", WINDOW_COLOUR))
    if doors:
        items.append(("door", "swatch", DOOR_COLOUR))
    if sources is not None and len(sources):
        items.append(("sound source", "dot", SOURCE_COLOUR))
    if goal is not None:
        items.append(("goal", "ring", GOAL_COLOUR))
    if agent is not None:
        items.append(("agent start", "arrow", AGENT_COLOUR))
    if path is not None:
        items.append(("path", "line", PATH_COLOUR))
    for name, (_, colour) in (paths or {}).items():
        items.append((f"{name} path", "line", tuple(colour)))
    return items


def _draw_symbol(draw: ImageDraw.ImageDraw, kind: str, colour, x: float, y: float) -> None:
    if kind == "swatch":
        draw.rectangle([x, y - 6, x + 18, y + 6], fill=colour, outline=FRAME)
    elif kind == "line":
        draw.line([(x, y), (x + 18, y)], fill=colour, width=4)
    elif kind == "dot":
        draw.ellipse([x + 3, y - 6, x + 15, y + 6], fill=colour, outline=(90, 0, 0))
    elif kind == "ring":
        draw.ellipse([x + 2, y - 7, x + 16, y + 7], outline=colour, width=3)
        draw.ellipse([x + 7, y - 2, x + 11, y + 2], fill=colour)
    elif kind == "arrow":
        draw.polygon([(x + 18, y), (x + 2, y - 7), (x + 6, y), (x + 2, y + 7)], fill=colour, outline=(90, 40, 0))


def map_figure(scene, navgrid=None, px_per_m: float = 40.0, *, agent=None, sources=(), path=None, goal=None,
               paths: dict | None = None, room_labels: bool = True, return_transform: bool = False):
    """A framed top-down map -> (H, W, 3) uint8 (with ``return_transform``: ``(image, transform, layout)``).

    ``agent``/``sources``/``path``/``goal`` as in :func:`~avworld.vision.topdown.topdown_map`;
    ``paths`` maps a name to ``(points (M, 2+), rgb colour)`` drawn on top (e.g. each agent's
    path). The map keeps its scale (``px_per_m``); the transform's pixels are shifted by
    ``(layout.left, layout.top)`` in the figure.
    """
    img, tf = topdown_map(scene, navgrid, px_per_m, agent=agent, sources=sources, path=path, goal=goal,
                          return_transform=True)
    mp = Image.fromarray(img)
    draw = ImageDraw.Draw(mp)
    for pts, colour in (paths or {}).values():
        p = np.asarray(pts, float)
        if len(p) > 1:
            draw.line([tuple(q) for q in tf.world_to_pixel(p[:, :2]).tolist()], fill=tuple(colour),
                      width=max(2, int(round(0.07 * px_per_m))), joint="curve")
    if room_labels:
        draw_room_labels(mp, tf, scene, size=max(11, min(16, int(0.3 * px_per_m))))

    f = font(13)
    entries = _legend_entries(navgrid, sources, goal, agent, path, paths, bool(scene.doors))
    legend_w = int(max([_text_w(f, e[0]) for e in entries] + [60.0]) + 48)
    lay = Layout(left=46, top=24, right=legend_w, bottom=40)
    legend_h = 46 + 20 * len(entries) + 8  # a short map with a long legend grows downwards
    fig = Image.new("RGB", (lay.left + tf.width + lay.right, lay.top + max(tf.height + lay.bottom, legend_h)), "white")
    fig.paste(mp, (lay.left, lay.top))
    d = ImageDraw.Draw(fig)
    x0, y0, x1, y1 = lay.left, lay.top, lay.left + tf.width, lay.top + tf.height
    d.rectangle([x0 - 1, y0 - 1, x1, y1], outline=FRAME)

    # axis ticks in metres
    (wx0, wy1), (wx1, wy0) = tf.pixel_to_world(np.array([[0, 0], [tf.width, tf.height]], float))
    step_px = 40.0  # about this many pixels or more between labels
    for t in _ticks(wx0, wx1, max(2, round(tf.width / step_px) + 1)):
        c = x0 + float(tf.world_to_pixel([t, 0.0])[0])
        d.line([(c, y1), (c, y1 + 5)], fill=FRAME)
        d.text((c, y1 + 7), f"{t + 0.0:g}", fill=TEXT, font=f, anchor="mt")
    for t in _ticks(wy0, wy1, max(2, round(tf.height / step_px) + 1)):
        r = y0 + float(tf.world_to_pixel([0.0, t])[1])
        d.line([(x0 - 6, r), (x0 - 1, r)], fill=FRAME)
        d.text((x0 - 8, r), f"{t + 0.0:g}", fill=TEXT, font=f, anchor="rm")
    d.text(((x0 + x1) / 2, y1 + 24), "x (m)", fill=TEXT, font=f, anchor="mt")
    d.text((x0 - 8, y0 - 6), "y (m)", fill=TEXT, font=f, anchor="rb")

    # legend panel: scale bar, then one entry per thing drawn
    lx, ly = x1 + 14, y0 + 4
    bar_m = nice_length_m((legend_w - 30) / px_per_m)
    bar_px = bar_m * px_per_m
    d.line([(lx, ly + 10), (lx + bar_px, ly + 10)], fill=TEXT, width=3)
    for c in (lx, lx + bar_px):
        d.line([(c, ly + 4), (c, ly + 16)], fill=TEXT, width=2)
    d.text((lx, ly + 20), f"{bar_m:g} m", fill=TEXT, font=f, anchor="lt")
    ly += 46
    for label, kind, colour in entries:
        _draw_symbol(d, kind, colour, lx, ly + 7)
        d.text((lx + 26, ly + 7), label, fill=TEXT, font=f, anchor="lm")
        ly += 20
    out = np.asarray(fig, dtype=np.uint8).copy()
    return (out, tf, lay) if return_transform else out
