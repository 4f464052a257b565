"""North-up top-down maps of a scene: rooms, walls, doors, furniture, navigable area,
agent, sound sources, goal and path.

The image has +x to the right and +y up (north-up). :class:`MapTransform` converts
between world (x, y) metres and pixel (column, row) coordinates so callers can draw
more on a map (``transform.world_to_pixel``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from avworld.geometry.scene import Scene
from avworld.geometry.semantics import SEMANTIC_CLASSES, SEMANTIC_ID, STRUCTURAL_CLASSES

#: Max image side (pixels) :func:`topdown_map` will produce.
MAX_MAP_SIDE = 8192

_SEMANTIC_COLOURS = {
    "void": (0, 0, 0),
    "wall": (70, 70, 75),
    "floor": (205, 195, 175),
    "ceiling": (235, 235, 235),
    "door_frame": (165, 110, 55),
    "window": (130, 195, 230),
    "bed": (70, 105, 200),
    "nightstand": (150, 105, 60),
    "wardrobe": (115, 75, 45),
    "sofa": (200, 75, 75),
    "armchair": (225, 125, 90),
    "coffee_table": (175, 130, 80),
    "tv_stand": (95, 95, 120),
    "bookshelf": (130, 90, 160),
    "table": (190, 150, 60),
    "chair": (230, 190, 70),
    "desk": (150, 160, 70),
    "counter": (120, 150, 150),
    "fridge": (170, 215, 225),
    "stove": (205, 95, 40),
    "toilet": (235, 235, 250),
    "sink": (150, 200, 210),
    "bathtub": (100, 170, 220),
    "plant": (60, 150, 60),
    "cabinet": (150, 120, 95),
    "curtain": (180, 70, 90),
    "object": (200, 100, 170),
}


def _hashed_colour(name: str, lo: int = 70, hi: int = 220) -> tuple[int, int, int]:
    h = zlib.crc32(name.encode())
    return tuple(lo + ((h >> s) & 0xFF) * (hi - lo) // 255 for s in (0, 8, 16))


#: (num classes, 3) uint8 colour per semantic id (id 0 "void" is black).
SEMANTIC_PALETTE = np.array(
    [_SEMANTIC_COLOURS.get(n, _hashed_colour(n)) for n in SEMANTIC_CLASSES], dtype=np.uint8
)
SEMANTIC_PALETTE.setflags(write=False)

#: Floor tint per room type (other types get a hashed pastel colour).
ROOM_COLOURS = {
    "living_room": (238, 222, 190),
    "kitchen": (214, 236, 206),
    "bedroom": (214, 222, 244),
    "bathroom": (204, 236, 240),
    "dining_room": (244, 214, 204),
    "office": (230, 220, 240),
    "hallway": (226, 226, 216),
    "corridor": (226, 226, 216),
    "laundry": (216, 234, 234),
    "garage": (210, 210, 210),
    "room": (232, 228, 220),
}

BACKGROUND = (250, 250, 250)
NAV_COLOUR = (120, 205, 125)
WALL_COLOUR = (55, 55, 60)
WINDOW_COLOUR = (120, 185, 225)
DOOR_COLOUR = (225, 150, 50)
CLOSED_DOOR_COLOUR = (150, 80, 30)
PATH_COLOUR = (40, 90, 230)
SOURCE_COLOUR = (230, 40, 40)
GOAL_COLOUR = (20, 160, 60)
AGENT_COLOUR = (250, 120, 0)


def room_colour(room_type: str) -> tuple[int, int, int]:
    """Floor tint of a room type."""
    return ROOM_COLOURS.get(room_type, _hashed_colour(room_type, 190, 245))


def colorize_semantic(semantic) -> np.ndarray:
    """Colour a semantic id image (..., H, W) with :data:`SEMANTIC_PALETTE` -> (..., H, W, 3) uint8."""
    ids = np.asarray(semantic)
    return np.take(SEMANTIC_PALETTE, np.clip(ids, 0, len(SEMANTIC_PALETTE) - 1).astype(np.intp), axis=0)


@dataclass(frozen=True)
class MapTransform:
    """World (x, y) metres <-> map pixel (column, row); +y is up in the image.

    Pixel ``(col, row)`` covers ``[col, col + 1) x [row, row + 1)`` in continuous pixel
    coordinates; the top-left corner of the image is world ``(x_min, y_max)``.
    """

    x_min: float
    y_max: float
    px_per_m: float
    width: int
    height: int

    @classmethod
    def for_bounds(cls, lo_xy, hi_xy, px_per_m: float = 40.0, margin_m: float = 0.5) -> MapTransform:
        """A transform covering the box ``[lo_xy, hi_xy]`` plus ``margin_m`` on each side."""
        if not (isinstance(px_per_m, (int, float)) and math.isfinite(px_per_m) and px_per_m > 0):
            raise ValueError(f"px_per_m must be a positive number, got {px_per_m!r}")
        lo = np.asarray(lo_xy, float).reshape(2) - margin_m
        hi = np.asarray(hi_xy, float).reshape(2) + margin_m
        if not np.all(np.isfinite(lo)) or not np.all(np.isfinite(hi)) or np.any(hi <= lo):
            raise ValueError(f"invalid map bounds {lo} .. {hi}")
        w = int(math.ceil((hi[0] - lo[0]) * px_per_m))
        h = int(math.ceil((hi[1] - lo[1]) * px_per_m))
        if max(w, h) > MAX_MAP_SIDE:
            raise ValueError(
                f"top-down map would be {w}x{h} pixels (> {MAX_MAP_SIDE}); lower px_per_m (now {px_per_m})"
            )
        return cls(float(lo[0]), float(hi[1]), float(px_per_m), max(w, 1), max(h, 1))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def world_to_pixel(self, xy) -> np.ndarray:
        """(..., 2) world (x, y) -> (..., 2) continuous pixel (col, row)."""
        p = np.asarray(xy, float)[..., :2]
        col = (p[..., 0] - self.x_min) * self.px_per_m
        row = (self.y_max - p[..., 1]) * self.px_per_m
        return np.stack([col, row], axis=-1)

    def pixel_to_world(self, colrow) -> np.ndarray:
        """(..., 2) continuous pixel (col, row) -> (..., 2) world (x, y)."""
        c = np.asarray(colrow, float)
        x = self.x_min + c[..., 0] / self.px_per_m
        y = self.y_max - c[..., 1] / self.px_per_m
        return np.stack([x, y], axis=-1)

    def pixel_centres_world(self) -> np.ndarray:
        """(H, W, 2) world (x, y) of every pixel centre."""
        cols, rows = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        return self.pixel_to_world(np.stack([cols, rows], axis=-1))


def map_transform(scene: Scene, navgrid=None, px_per_m: float = 40.0, margin_m: float = 0.5) -> MapTransform:
    """The transform :func:`topdown_map` uses: rooms (or the mesh, without rooms) and the
    navigation grid's extent, plus a margin."""
    if scene.rooms:
        pts = np.concatenate([r.polygon_array for r in scene.rooms])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        wall_lo, wall_hi = _wall_bounds(scene)
        if wall_lo is not None:
            lo, hi = np.minimum(lo, wall_lo), np.maximum(hi, wall_hi)
    else:
        b = scene.bounds
        lo, hi = b[0, :2], b[1, :2]
    if navgrid is not None:
        free = np.asarray(navgrid.free)
        origin = np.asarray(navgrid.origin_xy, float)
        res = float(navgrid.resolution_m)
        ext = origin - res / 2, origin + res * (np.array(free.shape[::-1]) - 0.5)
        lo, hi = np.minimum(lo, ext[0]), np.maximum(hi, ext[1])
    return MapTransform.for_bounds(lo, hi, px_per_m, margin_m)


def _wall_bounds(scene: Scene):
    sel = np.isin(scene.face_semantic, [SEMANTIC_ID["wall"], SEMANTIC_ID["window"], SEMANTIC_ID["door_frame"]])
    if not np.any(sel):
        return None, None
    v = scene.triangles[sel].reshape(-1, 3)[:, :2]
    return v.min(axis=0), v.max(axis=0)


def _poly(tf: MapTransform, xy) -> list[tuple[float, float]]:
    return [tuple(p) for p in tf.world_to_pixel(np.asarray(xy, float)[:, :2]).tolist()]


def _draw_faces(draw: ImageDraw.ImageDraw, tf: MapTransform, tris: np.ndarray, normals: np.ndarray, colour, width):
    """Fill the xy projection of horizontal-ish triangles; draw vertical ones as segments."""
    flat = np.abs(normals[:, 2]) > 0.5
    for tri in tris[flat]:
        draw.polygon(_poly(tf, tri), fill=colour)
    for tri in tris[~flat]:
        p = tf.world_to_pixel(tri[:, :2])
        # the projection of a vertical triangle is a segment: its two most distant points
        d = np.linalg.norm(p[:, None] - p[None], axis=-1)
        i, j = np.unravel_index(np.argmax(d), d.shape)
        draw.line([tuple(p[i]), tuple(p[j])], fill=colour, width=width)


def _blend(img: np.ndarray, mask: np.ndarray, colour, alpha: float) -> None:
    if np.any(mask):
        c = np.asarray(colour, np.float32)
        img[mask] = np.round(img[mask] * (1.0 - alpha) + c * alpha).astype(np.uint8)


def _navigable_mask(tf: MapTransform, navgrid) -> np.ndarray:
    free = np.asarray(navgrid.free, bool)
    origin = np.asarray(navgrid.origin_xy, float).reshape(2)
    res = float(navgrid.resolution_m)
    xy = tf.pixel_centres_world()
    ix = np.floor((xy[..., 0] - origin[0]) / res + 0.5).astype(np.int64)
    iy = np.floor((xy[..., 1] - origin[1]) / res + 0.5).astype(np.int64)
    inside = (ix >= 0) & (iy >= 0) & (ix < free.shape[1]) & (iy < free.shape[0])
    out = np.zeros(tf.shape, bool)
    out[inside] = free[iy[inside], ix[inside]]
    return out


def topdown_map(
    scene: Scene,
    navgrid=None,
    px_per_m: float = 40.0,
    agent=None,
    sources=(),
    path=None,
    goal=None,
    *,
    margin_m: float = 0.5,
    transform: MapTransform | None = None,
    return_transform: bool = False,
):
    """Draw a north-up (+y up) top-down map of ``scene`` -> (H, W, 3) uint8.

    * floors: each room's polygon tinted by room type (:data:`ROOM_COLOURS`);
    * ``navgrid``: any object with ``free`` (rows = y, cols = x, bool), ``origin_xy``
      (centre of cell [0, 0]) and ``resolution_m``; free cells get a light green overlay;
    * furniture: ``scene.objects`` bounding boxes (or, without objects, the up-facing
      faces of non-structural classes) in :data:`SEMANTIC_PALETTE` colours;
    * walls dark, windows light blue, doors orange (closed doors brown);
    * ``path`` (M, 2+) polyline, ``sources`` iterable of (x, y[, z]) red dots,
      ``goal`` (x, y) green ring, ``agent`` (x, y, yaw) orange arrow.

    ``transform`` overrides the extent (default :func:`map_transform`); with
    ``return_transform`` the result is ``(image, transform)``.
    """
    tf = transform if transform is not None else map_transform(scene, navgrid, px_per_m, margin_m)
    ppm = tf.px_per_m
    img = Image.new("RGB", (tf.width, tf.height), BACKGROUND)
    draw = ImageDraw.Draw(img)

    # floors
    for room in scene.rooms:
        draw.polygon(_poly(tf, room.polygon_array), fill=room_colour(room.room_type))
    if not scene.rooms:
        sel = (scene.face_semantic == SEMANTIC_ID["floor"]) & (scene.face_normals[:, 2] > 0.5)
        for tri in scene.triangles[sel]:
            draw.polygon(_poly(tf, tri), fill=room_colour("room"))

    # navigable overlay
    if navgrid is not None:
        arr = np.array(img)
        _blend(arr, _navigable_mask(tf, navgrid), NAV_COLOUR, 0.4)
        img = Image.fromarray(arr)
        draw = ImageDraw.Draw(img)

    # furniture
    line_w = max(1, int(round(0.02 * ppm)))
    if scene.objects:
        for obj in sorted(scene.objects, key=lambda o: o.bbox_max[2]):
            sid = SEMANTIC_ID.get(obj.category, SEMANTIC_ID["object"])
            col = tuple(int(c) for c in SEMANTIC_PALETTE[sid])
            (c0, r1), (c1, r0) = tf.world_to_pixel(np.array([obj.bbox_min[:2], obj.bbox_max[:2]]))
            outline = tuple(int(c * 0.6) for c in col)
            draw.rectangle([c0, r0, c1, r1], fill=col, outline=outline, width=line_w)
    else:
        structural = [SEMANTIC_ID[n] for n in STRUCTURAL_CLASSES]
        floor_z = scene.floor_z
        sel = (
            ~np.isin(scene.face_semantic, structural)
            & (scene.face_normals[:, 2] > 0.5)
            & (scene.triangles[:, :, 2].mean(axis=1) > floor_z + 0.02)
        )
        idx = np.flatnonzero(sel)
        idx = idx[np.argsort(scene.triangles[idx, :, 2].mean(axis=1), kind="stable")]
        for f in idx:
            col = tuple(int(c) for c in SEMANTIC_PALETTE[scene.face_semantic[f]])
            draw.polygon(_poly(tf, scene.triangles[f]), fill=col)

    # walls, windows, doors
    wall_w = max(1, int(round(0.05 * ppm)))
    for name, colour in (("wall", WALL_COLOUR), ("door_frame", WALL_COLOUR), ("window", WINDOW_COLOUR)):
        sel = scene.face_semantic == SEMANTIC_ID[name]
        if np.any(sel):
            _draw_faces(draw, tf, scene.triangles[sel], scene.face_normals[sel], colour, wall_w)
    for door in scene.doors:
        colour = DOOR_COLOUR if door.is_open else CLOSED_DOOR_COLOUR
        draw.polygon(_poly(tf, door.footprint(0.0)), fill=colour)

    # annotations
    if path is not None:
        p = np.asarray(path, float)
        if p.ndim != 2 or p.shape[1] < 2:
            raise ValueError(f"path must be an (M, 2) or (M, 3) array, got shape {p.shape}")
        if len(p) >= 2:
            draw.line([tuple(q) for q in tf.world_to_pixel(p[:, :2]).tolist()], fill=PATH_COLOUR,
                      width=max(2, int(round(0.06 * ppm))), joint="curve")
    rad = max(3.0, 0.15 * ppm)
    for src in sources if sources is not None else ():
        c, r = tf.world_to_pixel(np.asarray(src, float)[:2])
        draw.ellipse([c - rad, r - rad, c + rad, r + rad], fill=SOURCE_COLOUR, outline=(90, 0, 0),
                     width=max(1, int(rad / 4)))
    if goal is not None:
        c, r = tf.world_to_pixel(np.asarray(goal, float)[:2])
        draw.ellipse([c - rad * 1.3, r - rad * 1.3, c + rad * 1.3, r + rad * 1.3], outline=GOAL_COLOUR,
                     width=max(2, int(rad / 2.5)))
        draw.ellipse([c - rad / 3, r - rad / 3, c + rad / 3, r + rad / 3], fill=GOAL_COLOUR)
    if agent is not None:
        a = np.asarray(agent, float).reshape(-1)
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f"agent must be a pose (x, y, yaw_rad), got {agent!r}")
        fwd = np.array([math.cos(a[2]), math.sin(a[2])])
        left = np.array([-fwd[1], fwd[0]])
        size = max(0.3, 8.0 / ppm)  # metres; at least 8 px long
        pts = np.array([a[:2] + fwd * size, a[:2] - fwd * size * 0.5 + left * size * 0.5,
                        a[:2] - fwd * size * 0.2, a[:2] - fwd * size * 0.5 - left * size * 0.5])
        draw.polygon(_poly(tf, pts), fill=AGENT_COLOUR, outline=(90, 40, 0))

    out = np.asarray(img, dtype=np.uint8).copy()
    return (out, tf) if return_transform else out


def save_png(img, path) -> Path:
    """Save an image array as PNG: uint8 (H, W), (H, W, 3) or (H, W, 4); bool; or float
    in [0, 1] (scaled to 0..255). Parent directories are created."""
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ValueError(f"save_png needs an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 255.0).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.min() < 0 or a.max() > 255:
            raise ValueError(f"integer images must lie in 0..255, got {a.min()}..{a.max()}")
        a = a.astype(np.uint8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(p, format="PNG")
    return p
