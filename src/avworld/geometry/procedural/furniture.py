"""Furniture: a small catalogue per room type and a placer that keeps doorways free
and every room walkable.

Soft furnishings (issue 16): sofas, armchairs, beds, padded dining and office chairs,
filled bookshelves (a ``books`` front), towels and bathrobes, coats in the hallway and a
drying rack with laundry; their materials' sources are listed in
:mod:`avworld.geometry.materials`. After placing, :meth:`FurniturePlacer.place_all` applies
``HouseConfig.acoustic_damping`` and the contents allowance to the house's materials (the
shell's rugs, curtains, walls and floors included)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from avworld.geometry.builder import SceneBuilder
from avworld.geometry.materials import damped
from avworld.geometry.procedural.config import HouseConfig
from avworld.geometry.procedural.shell import Window
from avworld.geometry.scene import Door, Room, SceneObject
from avworld.geometry.semantics import SEMANTIC_ID


@dataclass(frozen=True)
class Item:
    category: str
    width: tuple[float, float]  # along the wall it backs onto (or x for free items)
    depth: tuple[float, float]
    height: tuple[float, float]
    material: str
    place: str = "wall"  # "wall": back against a wall; "free": anywhere with clearance
    shape: str = "box"  # box | table | chair | bed | sofa | shelf
    prob: float = 1.0
    #: bottom of the item above the floor (m): > 0 for things hanging on a wall (towels, coats)
    z0: float = 0.0
    #: kept in every room of its type whenever ``furniture_density > 0`` (a bedroom's bed)
    essential: bool = False


_BED = Item("bed", (1.4, 1.8), (2.0, 2.1), (0.5, 0.6), "bedding", shape="bed", essential=True)
_NIGHT = Item("nightstand", (0.4, 0.5), (0.35, 0.45), (0.5, 0.6), "wood_furniture", prob=0.8)
_WARDROBE = Item("wardrobe", (1.0, 1.8), (0.55, 0.65), (1.9, 2.2), "wood_furniture", prob=0.8)
_DESK = Item("desk", (1.0, 1.4), (0.55, 0.7), (0.72, 0.76), "wood_furniture", shape="table", prob=0.6)
_CHAIR = Item("chair", (0.42, 0.48), (0.42, 0.48), (0.85, 0.95), "dark_wood", "free", "chair", prob=0.6)
# chairs with an upholstered seat and back (the legs stay wooden)
_PADDED_CHAIR = Item("chair", (0.44, 0.5), (0.44, 0.5), (0.85, 0.95), "upholstery", "free", "chair", prob=0.7)
_PLANT = Item("plant", (0.3, 0.5), (0.3, 0.5), (0.6, 1.4), "plant", prob=0.5)
# a wooden case whose front is lined with books
_SHELF = Item("bookshelf", (0.8, 1.2), (0.3, 0.4), (1.6, 2.0), "dark_wood", shape="shelf", prob=0.6)
_CABINET = Item("cabinet", (0.8, 1.4), (0.4, 0.5), (0.8, 1.0), "wood_furniture", prob=0.7)


def _armchair(prob: float) -> Item:
    return Item("armchair", (0.75, 0.9), (0.75, 0.9), (0.8, 0.9), "upholstery", "free", "sofa", prob)


# towels on a rail, hanging from about 1.5 m down to 0.85 m
_TOWEL = Item("towel", (0.5, 0.7), (0.05, 0.07), (1.45, 1.6), "towel", prob=0.9, z0=0.85)

CATALOGUE: dict[str, tuple[Item, ...]] = {
    "bedroom": (_BED, _NIGHT, _NIGHT, _WARDROBE, _DESK, _CHAIR, _armchair(0.3), _PLANT),
    "living_room": (
        Item("sofa", (1.8, 2.4), (0.85, 0.95), (0.8, 0.9), "upholstery", shape="sofa", essential=True),
        Item("tv_stand", (1.2, 1.8), (0.4, 0.5), (0.45, 0.6), "dark_wood"),
        Item("coffee_table", (0.9, 1.2), (0.5, 0.7), (0.4, 0.48), "wood_furniture", "free", "table", 0.8),
        _armchair(0.8), _armchair(0.4),
        _SHELF, _PLANT, _PLANT,
    ),
    "kitchen": (
        Item("counter", (1.8, 3.0), (0.6, 0.65), (0.88, 0.92), "marble"),
        Item("fridge", (0.6, 0.75), (0.65, 0.75), (1.7, 1.9), "metal"),
        Item("stove", (0.6, 0.75), (0.6, 0.65), (0.88, 0.92), "metal", prob=0.8),
        Item("table", (1.0, 1.3), (0.7, 0.9), (0.72, 0.76), "wood_furniture", "free", "table", 0.8),
        _PADDED_CHAIR, _PADDED_CHAIR,
    ),
    "dining_room": (
        Item("table", (1.5, 2.0), (0.85, 1.0), (0.72, 0.76), "wood_furniture", "free", "table"),
        _PADDED_CHAIR, _PADDED_CHAIR, _PADDED_CHAIR, _CABINET, _PLANT,
    ),
    "bathroom": (
        Item("toilet", (0.38, 0.42), (0.6, 0.7), (0.7, 0.8), "ceramic"),
        Item("sink", (0.5, 0.7), (0.4, 0.5), (0.82, 0.88), "ceramic"),
        Item("bathtub", (1.5, 1.7), (0.7, 0.8), (0.5, 0.6), "ceramic", prob=0.7),
        _TOWEL, _TOWEL, Item("towel", (0.6, 0.8), (0.15, 0.25), (1.5, 1.7), "towel", prob=0.5, z0=0.7),  # bathrobes
    ),
    "office": (_DESK, Item("chair", (0.5, 0.6), (0.5, 0.6), (0.95, 1.1), "upholstery", "free", "chair", 0.9),
               _SHELF, _SHELF, _CABINET, _PLANT),
    "hallway": (_CABINET, _PLANT,
                # coats on hooks, hanging from about 1.75 m down to 0.8 m
                Item("coat_rack", (0.8, 1.4), (0.3, 0.4), (1.7, 1.8), "coats", prob=0.9, z0=0.8)),
    "laundry": (_CABINET, Item("counter", (1.2, 2.0), (0.6, 0.65), (0.88, 0.92), "metal"), _SHELF,
                # a drying rack with laundry
                Item("drying_rack", (0.8, 1.2), (0.5, 0.6), (1.0, 1.2), "towel", "free", prob=0.7, z0=0.4)),
}

_GRID = 0.1  # resolution (m) of the walkability check inside a room
#: furniture covers at most this share of a room's floor (a small bedroom's bed may exceed it alone)
MAX_COVER = 0.4


def _rect_cells(room_lo, shape, lo, hi):
    i0 = max(0, int(np.floor((lo[1] - room_lo[1]) / _GRID)))
    i1 = min(shape[0], int(np.ceil((hi[1] - room_lo[1]) / _GRID)))
    j0 = max(0, int(np.floor((lo[0] - room_lo[0]) / _GRID)))
    j1 = min(shape[1], int(np.ceil((hi[0] - room_lo[0]) / _GRID)))
    return slice(i0, i1), slice(j0, j1)


class FurniturePlacer:
    """Places furniture room by room, rejecting any item that would block a doorway,
    overlap another item, or split the room's walkable space."""

    def __init__(self, b: SceneBuilder, cfg: HouseConfig, rng: np.random.Generator,
                 doors: list[Door], windows: list[Window]) -> None:
        self.b, self.cfg, self.rng, self.doors, self.windows = b, cfg, rng, doors, windows

    def place_all(self, rooms: list[Room]) -> None:
        """Furnish every room, then turn the house's materials into furnished-home ones
        (:func:`~avworld.geometry.materials.damped`: soft materials scaled by
        ``HouseConfig.acoustic_damping``, walls and floors given the contents allowance
        unless ``furniture_density == 0``). No random numbers are drawn for that, so the
        geometry is the same for every ``acoustic_damping``."""
        for room in rooms:
            self._place_room(room)
        contents = self.cfg.furniture_density > 0
        self.b.materials[:] = [damped(m, self.cfg.acoustic_damping, contents) for m in self.b.materials]

    # ----------------------------------------------------------------- per room
    def _place_room(self, room: Room) -> None:
        poly = room.polygon_array
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        shape = (int(round((hi[1] - lo[1]) / _GRID)), int(round((hi[0] - lo[0]) / _GRID)))
        occupied = np.zeros(shape, bool)
        keep_free = np.zeros(shape, bool)  # door clearance zones
        anchors = []
        for d in self.doors:
            if room.index not in d.rooms:
                continue
            zone = d.footprint(depth_m=1.0)
            sl = _rect_cells(lo, shape, zone.min(axis=0), zone.max(axis=0))
            keep_free[sl] = True
            inward = np.asarray(d.normal) * (1.0 if d.rooms[1] == room.index else -1.0)
            a = np.asarray(d.center) + inward * (d.thickness_m / 2 + 0.5)
            anchors.append((int((a[1] - lo[1]) / _GRID), int((a[0] - lo[0]) / _GRID)))
        boxes: list[tuple[np.ndarray, np.ndarray]] = []
        for item in CATALOGUE.get(room.room_type, ()):
            keep_prob = 1.0 if item.essential else item.prob * (0.4 + 0.6 * self.cfg.furniture_density)
            if self.rng.random() > keep_prob or self.cfg.furniture_density == 0:
                continue
            for _ in range(40 if item.essential else 12):
                cand = self._propose(item, lo, hi)
                if cand is None:
                    continue
                blo, bhi, yaw = cand
                if not self._fits(blo, bhi, room, item, lo, shape, occupied, keep_free, boxes):
                    continue
                trial = occupied.copy()
                trial[_rect_cells(lo, shape, blo - 0.02, bhi + 0.02)] = True
                if not item.essential and trial.mean() > MAX_COVER:
                    continue
                if not self._walkable(trial, anchors):
                    continue
                occupied = trial
                boxes.append((blo, bhi))
                self._emit(item, blo, bhi, yaw, room.index)
                break

    def _propose(self, item: Item, lo, hi):
        rng = self.rng
        w = float(rng.uniform(*item.width))
        d = float(rng.uniform(*item.depth))
        h = float(rng.uniform(*item.height))
        if item.place == "free":
            m = 0.6
            if hi[0] - lo[0] < w + 2 * m or hi[1] - lo[1] < d + 2 * m:
                return None
            x = float(rng.uniform(lo[0] + m + w / 2, hi[0] - m - w / 2))
            y = float(rng.uniform(lo[1] + m + d / 2, hi[1] - m - d / 2))
            if rng.random() < 0.5:
                w, d = d, w
            return np.array([x - w / 2, y - d / 2, 0.0]), np.array([x + w / 2, y + d / 2, h]), 0.0
        side = int(rng.integers(4))  # 0: against -y wall (faces +y), 1: +x wall, 2: +y wall, 3: -x wall
        yaw = 90.0 * side + 90.0
        if side in (0, 2):
            if hi[0] - lo[0] < w + 0.1:
                return None
            x = float(rng.uniform(lo[0] + w / 2 + 0.02, hi[0] - w / 2 - 0.02))
            y0 = lo[1] + 0.02 if side == 0 else hi[1] - 0.02 - d
            return np.array([x - w / 2, y0, 0.0]), np.array([x + w / 2, y0 + d, h]), yaw % 360
        if hi[1] - lo[1] < w + 0.1:
            return None
        y = float(rng.uniform(lo[1] + w / 2 + 0.02, hi[1] - w / 2 - 0.02))
        x0 = hi[0] - 0.02 - d if side == 1 else lo[0] + 0.02
        return np.array([x0, y - w / 2, 0.0]), np.array([x0 + d, y + w / 2, h]), yaw % 360

    def _fits(self, blo, bhi, room, item, lo, shape, occupied, keep_free, boxes) -> bool:
        if keep_free[_rect_cells(lo, shape, blo, bhi)].any():
            return False
        for olo, ohi in boxes:
            if np.all(blo[:2] < ohi[:2] + 0.05) and np.all(bhi[:2] > olo[:2] - 0.05):
                return False
        for win in self.windows:  # nothing taller than the sill in front of a window
            if win.room != room.index or bhi[2] <= win.sill_m:
                continue
            ax = 0 if win.axis == "x" else 1
            along = 1 - ax
            near = min(abs(blo[ax] - win.coord), abs(bhi[ax] - win.coord)) < self.cfg.wall_thickness_m + 0.5
            if near and blo[along] < win.hi + 0.3 and bhi[along] > win.lo - 0.3:
                return False
        return True

    def _walkable(self, occupied: np.ndarray, anchors) -> bool:
        """All door approaches lie in one walkable region covering most of the room."""
        r = self.cfg.clearance_radius_m
        free = ~occupied
        free[0, :] = free[-1, :] = free[:, 0] = free[:, -1] = False  # the walls
        clear = ndimage.distance_transform_edt(free) * _GRID > r
        labels, n = ndimage.label(clear, structure=np.ones((3, 3)))
        if n == 0:
            return False
        if not anchors:
            return n == 1
        ids = {int(labels[min(max(i, 0), clear.shape[0] - 1), min(max(j, 0), clear.shape[1] - 1)])
               for i, j in anchors}
        if len(ids) != 1 or 0 in ids:
            return False
        main = ids.pop()
        return (labels == main).sum() >= 0.9 * clear.sum()

    # ----------------------------------------------------------------- geometry
    def _emit(self, item: Item, lo, hi, yaw: float, room: int) -> None:
        idx = len(self.b.objects)
        b, cat, mat = self.b, item.category, item.material
        sem = cat if cat in SEMANTIC_ID else "object"  # e.g. towels: object "towel", faces "object"
        x0, y0, z0 = lo
        x1, y1, z1 = hi
        if item.shape == "table":
            top = 0.04
            b.add_box((x0, y0, z1 - top), (x1, y1, z1), mat, cat, idx)
            leg = 0.05
            for lx, ly in ((x0, y0), (x1 - leg, y0), (x0, y1 - leg), (x1 - leg, y1 - leg)):
                b.add_box((lx, ly, 0.0), (lx + leg, ly + leg, z1 - top), mat, cat, idx, skip=("bottom", "top"))
        elif item.shape == "bed":
            b.add_box((x0, y0, 0.0), (x1, y1, 0.3), "dark_wood", cat, idx, skip=("bottom",))
            b.add_box((x0 + 0.03, y0 + 0.03, 0.3), (x1 - 0.03, y1 - 0.03, z1), mat, cat, idx, skip=("bottom",))
        elif item.shape == "sofa":
            seat = 0.45
            b.add_box((x0, y0, 0.0), (x1, y1, seat), mat, cat, idx, skip=("bottom",))
            back = _back_strip(lo, hi, yaw, 0.2)
            b.add_box((back[0], back[1], seat), (back[2], back[3], z1), mat, cat, idx, skip=("bottom",))
        elif item.shape == "chair":
            seat = 0.46
            b.add_box((x0, y0, seat - 0.05), (x1, y1, seat), mat, cat, idx)
            for lx, ly in ((x0, y0), (x1 - 0.04, y0), (x0, y1 - 0.04), (x1 - 0.04, y1 - 0.04)):
                b.add_box((lx, ly, 0.0), (lx + 0.04, ly + 0.04, seat - 0.05), "dark_wood", cat, idx,
                          skip=("bottom", "top"))
            back = _back_strip(lo, hi, 90.0 * int(self.rng.integers(4)), 0.05)
            b.add_box((back[0], back[1], seat), (back[2], back[3], z1), mat, cat, idx)
        elif item.shape == "shelf":
            front = ("+x", "+y", "-x", "-y")[int(round(yaw / 90.0)) % 4]
            b.add_box((x0, y0, 0.0), (x1, y1, z1), mat, cat, idx, skip=("bottom",), side_materials={front: "books"})
        elif item.z0 > 0:  # hanging: every side shows
            b.add_box((x0, y0, item.z0), (x1, y1, z1), mat, sem, idx)
        else:
            b.add_box((x0, y0, 0.0), (x1, y1, z1), mat, sem, idx, skip=("bottom",))
        b.objects.append(SceneObject(idx, cat, tuple(float(v) for v in lo), tuple(float(v) for v in hi), room, yaw))


def _back_strip(lo, hi, yaw: float, depth: float):
    """(x0, y0, x1, y1) of a strip of ``depth`` along the item's back side.

    ``yaw`` is the direction the item faces; its back is the opposite side.
    """
    x0, y0, x1, y1 = lo[0], lo[1], hi[0], hi[1]
    k = int(round(yaw / 90.0)) % 4  # 0: faces +x, 1: +y, 2: -x, 3: -y
    if k == 0:
        return x0, y0, x0 + depth, y1
    if k == 1:
        return x0, y0, x1, y0 + depth
    if k == 2:
        return x1 - depth, y0, x1, y1
    return x0, y1 - depth, x1, y1
