"""Floor plans: rectangular rooms from a binary space partition, doors and room types.

Coordinates here are wall centre lines; the interior of a room is its rectangle
shrunk by half a wall thickness on every side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avworld.geometry.procedural.config import HouseConfig

# Order in which room types are handed out after the living room (largest) and the
# bathroom (smallest); bedrooms repeat for large houses.
_TYPE_SEQUENCE = (
    "kitchen", "bedroom", "dining_room", "bedroom", "office", "bedroom", "bathroom",
    "hallway", "laundry", "bedroom", "office",
)
#: every room type the generator can produce
ROOM_TYPES = ("living_room", "kitchen", "bedroom", "bathroom", "dining_room", "office", "hallway", "laundry")
OPEN_PLAN_TYPES = frozenset({"living_room", "kitchen", "dining_room"})


@dataclass
class Rect:
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return self.w * self.h


@dataclass
class Opening:
    """A door (or open-plan gap) between rooms ``a`` and ``b`` (``b == -1``: outside).

    It lies on the axis-aligned wall line ``axis == "x"`` (the line x = ``coord``) or
    ``"y"`` (y = ``coord``), spanning ``[lo, hi]`` along that line.
    """

    a: int
    b: int
    axis: str
    coord: float
    lo: float
    hi: float
    height_m: float


@dataclass
class FloorPlan:
    rects: list[Rect]
    room_types: list[str]
    openings: list[Opening] = field(default_factory=list)

    @property
    def footprint(self) -> Rect:
        return Rect(
            min(r.x0 for r in self.rects), min(r.y0 for r in self.rects),
            max(r.x1 for r in self.rects), max(r.y1 for r in self.rects),
        )


def _snap(v: float) -> float:
    # Keep wall lines on a 5 cm lattice: exact shared coordinates, readable numbers.
    return round(v * 20.0) / 20.0


def _door_centre(rng: np.random.Generator, lo: float, hi: float, half_width: float, margin: float) -> float:
    """A door centre on [lo, hi] keeping ``margin`` to both ends (snapped to the lattice)."""
    low, high = lo + margin + half_width, hi - margin - half_width
    high = max(low, high)  # a wall exactly one door (plus margins) long
    return float(min(max(_snap(rng.uniform(low, high)), low), high))


def partition(cfg: HouseConfig, rng: np.random.Generator) -> list[Rect]:
    """Split a rectangular footprint into ``cfg.num_rooms`` rooms with sides >= min size."""
    lo, hi = cfg.room_size_m
    n = cfg.num_rooms
    mean_side = 0.5 * (lo + hi)
    area = n * mean_side**2 * rng.uniform(0.85, 1.15)
    aspect = rng.uniform(1.0, 1.6)
    w = _snap(max(lo, np.sqrt(area * aspect)))
    h = _snap(max(lo, area / w))
    rects = [Rect(0.0, 0.0, w, h)]
    while len(rects) < n:
        # split the room with the longest side that can still be split
        order = sorted(range(len(rects)), key=lambda i: -max(rects[i].w, rects[i].h))
        for i in order:
            r = rects[i]
            along_x = r.w >= r.h
            length = r.w if along_x else r.h
            if length >= 2 * lo:
                break
        else:  # nothing splittable: enlarge the footprint and start over
            return partition(HouseConfig(**{**cfg.__dict__, "room_size_m": (lo, hi * 1.1)}), rng)
        cut = _snap(rng.uniform(max(lo, 0.35 * length), min(length - lo, 0.65 * length)))
        if along_x:
            a, b = Rect(r.x0, r.y0, r.x0 + cut, r.y1), Rect(r.x0 + cut, r.y0, r.x1, r.y1)
        else:
            a, b = Rect(r.x0, r.y0, r.x1, r.y0 + cut), Rect(r.x0, r.y0 + cut, r.x1, r.y1)
        rects[i : i + 1] = [a, b]
    return rects


def shared_edge(a: Rect, b: Rect, eps: float = 1e-6):
    """(axis, coord, lo, hi) of the wall segment two rooms share, or None."""
    for axis, (ca, cb) in (("x", (a.x1, b.x0)), ("x", (a.x0, b.x1)), ("y", (a.y1, b.y0)), ("y", (a.y0, b.y1))):
        if abs(ca - cb) > eps:
            continue
        if axis == "x":
            lo, hi = max(a.y0, b.y0), min(a.y1, b.y1)
        else:
            lo, hi = max(a.x0, b.x0), min(a.x1, b.x1)
        if hi - lo > eps:
            return axis, ca, lo, hi
    return None


def assign_types(rects: list[Rect], rng: np.random.Generator) -> list[str]:
    n = len(rects)
    order = sorted(range(n), key=lambda i: -rects[i].area)
    types = [""] * n
    types[order[0]] = "living_room"
    rest = order[1:]
    if n >= 3:
        types[rest[-1]] = "bathroom"
        rest = rest[:-1]
    seq = list(_TYPE_SEQUENCE)
    # shuffle the order among the non-kitchen types so houses differ
    head, tail = seq[:1], seq[1:]
    rng.shuffle(tail)
    seq = head + tail
    for k, i in enumerate(rest):
        types[i] = seq[k % len(seq)]
    return types


def connect(rects: list[Rect], types: list[str], cfg: HouseConfig, rng: np.random.Generator) -> list[Opening]:
    """Doors: a random spanning tree over adjacent rooms plus optional extra doors."""
    margin = cfg.wall_thickness_m / 2 + 0.15  # keep door jambs away from corners
    edges = []
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            e = shared_edge(rects[i], rects[j])
            if e is not None and e[3] - e[2] >= cfg.door_width_m + 2 * margin:
                edges.append((i, j, e))
    perm = rng.permutation(len(edges))
    parent = list(range(len(rects)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    chosen: list[tuple[int, int, tuple]] = []
    extras = []
    for k in perm:
        i, j, e = edges[k]
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[ri] = rj
            chosen.append(edges[k])
        else:
            extras.append(edges[k])
    roots = {find(k) for k in range(len(rects))}
    if len(roots) != 1:  # cannot happen for a partition with door-wide walls; fail loudly if it does
        raise RuntimeError("floor plan is not connected; please report the seed and config")
    for e in extras:
        open_pair = cfg.open_plan and types[e[0]] in OPEN_PLAN_TYPES and types[e[1]] in OPEN_PLAN_TYPES
        if open_pair or rng.random() < cfg.extra_door_prob:
            chosen.append(e)
    openings = []
    for i, j, (axis, coord, lo, hi) in chosen:
        if cfg.open_plan and types[i] in OPEN_PLAN_TYPES and types[j] in OPEN_PLAN_TYPES:
            # open plan: a wide opening almost as long as the shared wall
            openings.append(Opening(i, j, axis, coord, lo + margin, hi - margin, cfg.wall_height_m - 0.3))
            continue
        c = _door_centre(rng, lo, hi, cfg.door_width_m / 2, margin)
        openings.append(Opening(i, j, axis, coord, c - cfg.door_width_m / 2, c + cfg.door_width_m / 2,
                                cfg.door_height_m))
    if cfg.outdoor:
        openings.append(_front_door(rects, types, cfg, rng, margin))
    return openings


def _front_door(rects, types, cfg, rng, margin) -> Opening:
    fp = Rect(min(r.x0 for r in rects), min(r.y0 for r in rects), max(r.x1 for r in rects), max(r.y1 for r in rects))
    # the living room if it touches the outside, else the first room that does
    order = [types.index("living_room")] + [k for k in range(len(rects)) if types[k] != "living_room"]
    for living in order:
        sides = _outer_sides(rects[living], fp)
        if sides:
            break
    axis, coord, lo, hi = sides[int(rng.integers(len(sides)))]
    c = _door_centre(rng, lo, hi, cfg.door_width_m / 2, margin)
    return Opening(living, -1, axis, coord, c - cfg.door_width_m / 2, c + cfg.door_width_m / 2, cfg.door_height_m)


def _outer_sides(r: Rect, fp: Rect) -> list:
    sides = []
    if abs(r.y0 - fp.y0) < 1e-6:
        sides.append(("y", r.y0, r.x0, r.x1))
    if abs(r.y1 - fp.y1) < 1e-6:
        sides.append(("y", r.y1, r.x0, r.x1))
    if abs(r.x0 - fp.x0) < 1e-6:
        sides.append(("x", r.x0, r.y0, r.y1))
    if abs(r.x1 - fp.x1) < 1e-6:
        sides.append(("x", r.x1, r.y0, r.y1))
    return sides


def make_floor_plan(cfg: HouseConfig, rng: np.random.Generator) -> FloorPlan:
    rects = partition(cfg, rng)
    types = assign_types(rects, rng)
    return FloorPlan(rects, types, connect(rects, types, cfg, rng))
