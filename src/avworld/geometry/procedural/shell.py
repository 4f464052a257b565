"""The building shell: floors, ceilings, walls of real thickness with door and window
openings, glass panes and curtains, rugs on hard floors, optional outdoor ground.

Curtains and rugs are the shell's soft furnishings (issue 16): their materials and the
sources of their absorption are listed in :mod:`avworld.geometry.materials`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.geometry.builder import SceneBuilder
from avworld.geometry.procedural.config import HouseConfig
from avworld.geometry.procedural.layout import FloorPlan, Opening, Rect
from avworld.geometry.scene import Door, Room

FLOOR_MATERIALS = {
    "living_room": ("wood_floor", "carpet_underlay"),
    "bedroom": ("carpet_underlay", "wood_floor"),
    "kitchen": ("tile", "marble"),
    "bathroom": ("tile",),
    "dining_room": ("wood_floor", "tile"),
    "office": ("carpet_underlay", "wood_floor"),
    "hallway": ("wood_floor", "tile"),
    "laundry": ("concrete", "tile"),
}
WALL_MATERIALS = {
    "bathroom": ("wall_tile",),
    "kitchen": ("plaster", "wall_tile", "painted_plaster_warm"),
    "laundry": ("concrete", "plaster"),
}
DEFAULT_WALLS = ("plaster", "painted_plaster_blue", "painted_plaster_green", "painted_plaster_warm")
CEILING_MATERIALS = {"office": ("acoustic_tile", "ceiling_plaster")}
EXTERIOR_MATERIALS = ("brick", "concrete")
#: curtains at a window: room type -> (probability per window, materials to pick from)
CURTAINS = {
    "living_room": (0.9, ("drape", "curtain")),
    "bedroom": (0.9, ("drape", "curtain")),
    "dining_room": (0.7, ("drape", "curtain")),
    "office": (0.6, ("drape", "sheer_curtain")),
    "kitchen": (0.6, ("sheer_curtain",)),
    "bathroom": (0.4, ("sheer_curtain",)),
}
#: rugs on floors that are not carpeted: room type -> (probability, width range, length
#: range) in metres, the length along the room's longer side; hallway and kitchen rugs are
#: runners, the bathroom's a bath mat. None with ``furniture_density == 0``.
RUGS = {
    "living_room": (0.9, (1.6, 2.5), (2.3, 3.4)),
    "bedroom": (0.8, (1.4, 2.0), (2.0, 2.8)),
    "dining_room": (0.6, (1.6, 2.2), (2.2, 3.0)),
    "office": (0.5, (1.2, 1.8), (1.6, 2.4)),
    "hallway": (0.5, (0.7, 0.9), (1.8, 3.0)),
    "kitchen": (0.4, (0.6, 0.8), (1.4, 2.2)),
    "bathroom": (0.8, (0.5, 0.6), (0.8, 0.9)),
}
RUG_MATERIALS = ("rug", "rug_blue", "rug_beige")
RUG_THICKNESS_M = 0.012


@dataclass
class RoomStyle:
    floor: str
    wall: str
    ceiling: str


@dataclass
class Window:
    room: int
    axis: str
    coord: float
    lo: float
    hi: float
    sill_m: float
    top_m: float


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def choose_styles(plan: FloorPlan, rng: np.random.Generator) -> tuple[list[RoomStyle], str]:
    styles = [
        RoomStyle(
            _pick(rng, FLOOR_MATERIALS[t]),
            _pick(rng, WALL_MATERIALS.get(t, DEFAULT_WALLS)),
            _pick(rng, CEILING_MATERIALS.get(t, ("ceiling_plaster",))),
        )
        for t in plan.room_types
    ]
    return styles, _pick(rng, EXTERIOR_MATERIALS)


def _wall_pieces(rects: list[Rect]):
    """Yield (axis, coord, lo, hi, neg_room, pos_room) for every wall stretch with one
    room (or the outside, -1) on each side; neighbouring stretches with the same rooms
    are merged. ``neg`` is the room on the smaller-coordinate side of the line."""
    lines: dict[tuple[str, float], list[tuple[float, float, int, int]]] = {}
    for k, r in enumerate(rects):
        lines.setdefault(("x", r.x0), []).append((r.y0, r.y1, k, +1))
        lines.setdefault(("x", r.x1), []).append((r.y0, r.y1, k, -1))
        lines.setdefault(("y", r.y0), []).append((r.x0, r.x1, k, +1))
        lines.setdefault(("y", r.y1), []).append((r.x0, r.x1, k, -1))
    for (axis, coord) in sorted(lines):
        edges = lines[(axis, coord)]
        cuts = sorted({v for e in edges for v in e[:2]})
        merged: list[list] = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            mid = 0.5 * (a + b)
            neg = pos = -1
            for lo, hi, k, side in edges:
                if lo < mid < hi:
                    if side > 0:
                        pos = k
                    else:
                        neg = k
            if neg == -1 and pos == -1:
                continue
            if merged and merged[-1][3] == a and merged[-1][4:] == [neg, pos]:
                merged[-1][3] = b
            else:
                merged.append([axis, coord, a, b, neg, pos])
        for m in merged:
            yield tuple(m)


def _subtract(lo: float, hi: float, holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, cur = [], lo
    for a, b in sorted(holes):
        if a > cur:
            out.append((cur, min(a, hi)))
        cur = max(cur, b)
    if cur < hi:
        out.append((cur, hi))
    return [(a, b) for a, b in out if b - a > 1e-6]


class ShellBuilder:
    """Adds the shell of a :class:`FloorPlan` to a :class:`SceneBuilder`."""

    def __init__(self, b: SceneBuilder, plan: FloorPlan, cfg: HouseConfig, rng: np.random.Generator) -> None:
        self.b, self.plan, self.cfg, self.rng = b, plan, cfg, rng
        self.styles, self.exterior = choose_styles(plan, rng)
        self.windows: list[Window] = []
        self.t = cfg.wall_thickness_m
        self.H = cfg.wall_height_m

    def _box_along(self, axis, coord, a, b, z0, z1, neg, pos, material=None, semantic="wall", depth=None):
        d = (self.t if depth is None else depth) / 2
        mat_neg = self.styles[neg].wall if neg >= 0 else self.exterior
        mat_pos = self.styles[pos].wall if pos >= 0 else self.exterior
        if axis == "x":
            lo, hi, sides = (coord - d, a, z0), (coord + d, b, z1), {"-x": mat_neg, "+x": mat_pos}
        else:
            lo, hi, sides = (a, coord - d, z0), (b, coord + d, z1), {"-y": mat_neg, "+y": mat_pos}
        if material is not None:
            sides = {}
        self.b.add_box(lo, hi, material or mat_neg, semantic, side_materials=sides)

    def build(self) -> None:
        self._floors_and_ceilings()
        self._rugs()
        self._walls()
        self._rooms_and_doors()
        if self.cfg.outdoor:
            self._ground()

    def _floors_and_ceilings(self) -> None:
        for k, r in enumerate(self.plan.rects):
            st = self.styles[k]
            self.b.add_box((r.x0, r.y0, -0.1), (r.x1, r.y1, 0.0), st.floor, "floor")
            self.b.add_box((r.x0, r.y0, self.H), (r.x1, r.y1, self.H + 0.1), st.ceiling, "ceiling")

    def _walls(self) -> None:
        t, H, cfg, rng = self.t, self.H, self.cfg, self.rng
        pieces = list(_wall_pieces(self.plan.rects))
        # run ends (where no collinear piece continues) are extended to close corners
        ends = {}
        for axis, coord, lo, hi, _, _ in pieces:
            for v in (lo, hi):
                ends[(axis, coord, v)] = ends.get((axis, coord, v), 0) + 1
        for axis, coord, lo, hi, neg, pos in pieces:
            holes = [
                (o.lo, o.hi, o)
                for o in self.plan.openings
                if o.axis == axis and abs(o.coord - coord) < 1e-6 and o.lo < hi and o.hi > lo
            ]
            ext_lo = t / 2 if ends[(axis, coord, lo)] == 1 else 0.0
            ext_hi = t / 2 if ends[(axis, coord, hi)] == 1 else 0.0
            solids = _subtract(lo, hi, [(a, b) for a, b, _ in holes])
            for a, b in solids:
                a2 = a - ext_lo if abs(a - lo) < 1e-9 else a
                b2 = b + ext_hi if abs(b - hi) < 1e-9 else b
                if (neg == -1) != (pos == -1) and cfg.windows and b - a >= 2.0 and rng.random() < 0.7:
                    self._wall_with_window(axis, coord, a, b, a2, b2, neg, pos)
                else:
                    self._box_along(axis, coord, a2, b2, 0.0, H, neg, pos)
            for a, b, o in holes:  # lintel above each door
                if o.height_m < H - 1e-6:
                    self._box_along(axis, coord, a, b, o.height_m, H, neg, pos)

    def _wall_with_window(self, axis, coord, a, b, a2, b2, neg, pos) -> None:
        rng, H = self.rng, self.H
        width = float(rng.uniform(0.8, min(2.2, b - a - 1.0)))
        c = float(rng.uniform(a + 0.5 + width / 2, b - 0.5 - width / 2))
        w0, w1 = round((c - width / 2) * 20) / 20, round((c + width / 2) * 20) / 20
        sill, top = 0.9, min(2.1, H - 0.3)
        self._box_along(axis, coord, a2, w0, 0.0, H, neg, pos)
        self._box_along(axis, coord, w1, b2, 0.0, H, neg, pos)
        self._box_along(axis, coord, w0, w1, 0.0, sill, neg, pos)
        self._box_along(axis, coord, w0, w1, top, H, neg, pos)
        self._box_along(axis, coord, w0, w1, sill, top, neg, pos, material="glass", semantic="window", depth=0.02)
        room = neg if neg >= 0 else pos
        self.windows.append(Window(room, axis, coord, w0, w1, sill, top))
        prob, materials = CURTAINS.get(self.plan.room_types[room], (0.0, ()))
        if prob > 0 and rng.random() < prob:
            self._curtains(axis, coord, w0, w1, top, +1 if room == pos else -1, _pick(rng, materials))

    def _curtains(self, axis, coord, w0, w1, top, inward, material: str) -> None:
        # two floor-length panels drawn open beside the window (0.5 m stacks, 0.2 m of them
        # over the glass), hanging just inside the room
        d0 = coord + inward * self.t / 2
        d1 = d0 + inward * 0.08
        lo_d, hi_d = min(d0, d1), max(d0, d1)
        for a, b in ((w0 - 0.3, w0 + 0.2), (w1 - 0.2, w1 + 0.3)):
            if axis == "x":
                lo, hi = (lo_d, a, 0.02), (hi_d, b, top + 0.15)
            else:
                lo, hi = (a, lo_d, 0.02), (b, hi_d, top + 0.15)
            self.b.add_box(lo, hi, material, "curtain")

    def _rugs(self) -> None:
        """A rug near the middle of rooms whose floor is hard (:data:`RUGS`).

        A thin slab on the floor (walkable: far below ``NavConfig.max_climb_m``); furniture
        placed later may stand on it. Semantic class ``floor``.
        """
        if self.cfg.furniture_density == 0:
            return
        rng, m = self.rng, self.t / 2 + 0.3
        for k, r in enumerate(self.plan.rects):
            spec = RUGS.get(self.plan.room_types[k])
            if spec is None or self.styles[k].floor.startswith("carpet") or rng.random() >= spec[0]:
                continue
            _, width, length = spec
            w, ln = float(rng.uniform(*width)), float(rng.uniform(*length))
            material = _pick(rng, RUG_MATERIALS)
            jitter = rng.uniform(-1.0, 1.0, 2)
            size = np.array([ln, w] if r.w >= r.h else [w, ln])
            room_lo, room_hi = np.array([r.x0 + m, r.y0 + m]), np.array([r.x1 - m, r.y1 - m])
            size = np.minimum(size, room_hi - room_lo)
            if np.any(size < 0.5):
                continue
            slack = room_hi - room_lo - size
            lo = room_lo + slack / 2 + jitter * np.minimum(slack / 2, 0.3)
            self.b.add_box((lo[0], lo[1], 0.0), (lo[0] + size[0], lo[1] + size[1], RUG_THICKNESS_M),
                           material, "floor", skip=("bottom",))

    def _rooms_and_doors(self) -> None:
        t, H = self.t, self.H
        for k, r in enumerate(self.plan.rects):
            poly = ((r.x0 + t / 2, r.y0 + t / 2), (r.x1 - t / 2, r.y0 + t / 2),
                    (r.x1 - t / 2, r.y1 - t / 2), (r.x0 + t / 2, r.y1 - t / 2))
            self.b.rooms.append(Room(k, self.plan.room_types[k], poly, 0.0, H))
        for i, o in enumerate(self.plan.openings):
            self.b.doors.append(door_from_opening(i, o, self.plan.rects, t))

    def _ground(self) -> None:
        fp = self.plan.footprint
        m = 4.0
        for lo, hi in (
            ((fp.x0 - m, fp.y0 - m), (fp.x1 + m, fp.y0)),
            ((fp.x0 - m, fp.y1), (fp.x1 + m, fp.y1 + m)),
            ((fp.x0 - m, fp.y0), (fp.x0, fp.y1)),
            ((fp.x1, fp.y0), (fp.x1 + m, fp.y1)),
        ):
            self.b.add_box((*lo, -0.1), (*hi, 0.0), "grass", "floor")


def door_from_opening(index: int, o: Opening, rects: list[Rect], t: float) -> Door:
    ra = rects[o.a]
    mid = 0.5 * (o.lo + o.hi)
    if o.axis == "x":
        sign = 1.0 if abs(ra.x1 - o.coord) < 1e-6 else -1.0
        center, normal = (o.coord, mid), (sign, 0.0)
    else:
        sign = 1.0 if abs(ra.y1 - o.coord) < 1e-6 else -1.0
        center, normal = (mid, o.coord), (0.0, sign)
    return Door(index, center, normal, o.hi - o.lo, o.height_m, t, (o.a, o.b), True, 0.0)
