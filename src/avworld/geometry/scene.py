"""The scene model: a triangle mesh with per-face material and semantics, plus rooms,
doors and objects.

World frame: right-handed, z up, metres. Yaw is measured counter-clockwise from +x.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from avworld.geometry.materials import Material
from avworld.geometry.semantics import SEMANTIC_CLASSES


class SceneError(ValueError):
    """A scene is malformed (bad indices, empty mesh, inconsistent arrays...)."""


@dataclass(frozen=True)
class Room:
    """A room: interior outline ``polygon`` (N, 2) counter-clockwise, metres."""

    index: int
    room_type: str
    polygon: tuple[tuple[float, float], ...]
    floor_z: float = 0.0
    ceiling_z: float = 2.7

    @property
    def polygon_array(self) -> np.ndarray:
        return np.asarray(self.polygon, dtype=float)

    @property
    def area_m2(self) -> float:
        p = self.polygon_array
        x, y = p[:, 0], p[:, 1]
        return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))

    @property
    def centroid(self) -> np.ndarray:
        return self.polygon_array.mean(axis=0)

    def contains(self, xy) -> np.ndarray:
        """Point-in-polygon test for points (..., 2) (even-odd rule)."""
        pts = np.asarray(xy, dtype=float)
        poly = self.polygon_array
        x, y = pts[..., 0], pts[..., 1]
        inside = np.zeros(pts.shape[:-1], dtype=bool)
        n = len(poly)
        for i in range(n):
            x0, y0 = poly[i]
            x1, y1 = poly[(i + 1) % n]
            cond = (y0 > y) != (y1 > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
            inside ^= cond & (x < xint)
        return inside


@dataclass(frozen=True)
class Door:
    """An opening in a wall between two rooms (``rooms[1] == -1``: to the outside).

    ``center`` is the (x, y) of the opening's middle on the wall's centre line,
    ``normal`` the unit (x, y) direction crossing the wall (from ``rooms[0]`` toward
    ``rooms[1]``), ``width_m`` the clear width, ``thickness_m`` the wall thickness.
    """

    index: int
    center: tuple[float, float]
    normal: tuple[float, float]
    width_m: float
    height_m: float
    thickness_m: float
    rooms: tuple[int, int]
    is_open: bool = True
    floor_z: float = 0.0

    @property
    def tangent(self) -> np.ndarray:
        n = np.asarray(self.normal, dtype=float)
        return np.array([-n[1], n[0]])

    def footprint(self, depth_m: float = 0.0) -> np.ndarray:
        """Corners (4, 2) of the opening's rectangle, extended ``depth_m`` into each room."""
        c = np.asarray(self.center, dtype=float)
        n = np.asarray(self.normal, dtype=float)
        t = self.tangent
        hw, hd = self.width_m / 2, self.thickness_m / 2 + depth_m
        return np.array([c - t * hw - n * hd, c + t * hw - n * hd, c + t * hw + n * hd, c - t * hw + n * hd])


@dataclass(frozen=True)
class SceneObject:
    """A piece of furniture (or any object): semantic class and axis-aligned bounding box."""

    index: int
    category: str
    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    room: int = -1
    yaw_deg: float = 0.0


def _as_tuple(obj):
    if isinstance(obj, np.ndarray):
        return tuple(_as_tuple(v) for v in obj.tolist())
    if isinstance(obj, (list, tuple)):
        return tuple(_as_tuple(v) for v in obj)
    return obj


@dataclass(frozen=True, eq=False)
class Scene:
    """A static 3D scene.

    Arrays: ``vertices`` (V, 3) float64, ``faces`` (F, 3) int32, ``face_material``
    (F,) int16 indices into ``materials``, ``face_semantic`` (F,) int16 indices into
    :data:`~avworld.geometry.semantics.SEMANTIC_CLASSES`, ``face_instance`` (F,) int32
    (object index or -1 for the building shell).
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    materials: tuple[Material, ...]
    face_semantic: np.ndarray | None = None
    face_instance: np.ndarray | None = None
    rooms: tuple[Room, ...] = ()
    doors: tuple[Door, ...] = ()
    objects: tuple[SceneObject, ...] = ()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        v = np.ascontiguousarray(self.vertices, dtype=np.float64)
        f = np.ascontiguousarray(self.faces, dtype=np.int32)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise SceneError(f"vertices must be a non-empty (V, 3) array, got shape {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            raise SceneError(f"faces must be a non-empty (F, 3) array, got shape {f.shape}")
        if not np.all(np.isfinite(v)):
            raise SceneError("vertices contain NaN or infinite coordinates")
        if f.min() < 0 or f.max() >= len(v):
            raise SceneError(f"face indices must lie in [0, {len(v) - 1}], got [{f.min()}, {f.max()}]")
        nf = len(f)
        fm = np.ascontiguousarray(self.face_material, dtype=np.int16).reshape(-1)
        if fm.shape != (nf,):
            raise SceneError(f"face_material must have one entry per face ({nf}), got {fm.shape}")
        if len(self.materials) == 0:
            raise SceneError("a scene needs at least one material")
        if fm.min() < 0 or fm.max() >= len(self.materials):
            raise SceneError(f"face_material indices must lie in [0, {len(self.materials) - 1}]")
        fs = np.zeros(nf, np.int16) if self.face_semantic is None else self.face_semantic
        fs = np.ascontiguousarray(fs, dtype=np.int16).reshape(-1)
        if fs.shape != (nf,) or fs.min() < 0 or fs.max() >= len(SEMANTIC_CLASSES):
            raise SceneError("face_semantic must be (F,) with ids in SEMANTIC_CLASSES")
        fi = np.full(nf, -1, np.int32) if self.face_instance is None else self.face_instance
        fi = np.ascontiguousarray(fi, dtype=np.int32).reshape(-1)
        if fi.shape != (nf,):
            raise SceneError("face_instance must be (F,)")
        arrays = {"vertices": v, "faces": f, "face_material": fm, "face_semantic": fs, "face_instance": fi}
        for name, arr in arrays.items():
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "materials", tuple(self.materials))
        object.__setattr__(self, "rooms", tuple(self.rooms))
        object.__setattr__(self, "doors", tuple(self.doors))
        object.__setattr__(self, "objects", tuple(self.objects))

    # ------------------------------------------------------------------ derived
    @property
    def num_faces(self) -> int:
        return len(self.faces)

    @cached_property
    def triangles(self) -> np.ndarray:
        """(F, 3, 3) vertex coordinates of every face."""
        return self.vertices[self.faces]

    @cached_property
    def face_normals(self) -> np.ndarray:
        """(F, 3) unit normals from the winding (counter-clockwise = front)."""
        t = self.triangles
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        norm = np.linalg.norm(n, axis=1, keepdims=True)
        return n / np.where(norm > 0, norm, 1.0)

    @cached_property
    def face_areas(self) -> np.ndarray:
        t = self.triangles
        return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3): min and max corner of the mesh."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    @property
    def floor_z(self) -> float:
        if self.rooms:
            return float(min(r.floor_z for r in self.rooms))
        return float(self.meta.get("floor_z", self.bounds[0, 2]))

    def material_index(self, name: str) -> int:
        for i, m in enumerate(self.materials):
            if m.name == name:
                return i
        raise KeyError(f"scene has no material {name!r}; it has {[m.name for m in self.materials]}")

    def room_at(self, xy) -> int:
        """Index of the room containing point (x, y), or -1."""
        for room in self.rooms:
            if room.contains(np.asarray(xy, dtype=float)):
                return room.index
        return -1

    def metadata_dict(self) -> dict:
        """Everything but the arrays, as JSON-compatible data (used by I/O and hashing)."""
        from dataclasses import asdict

        return {
            "materials": [m.to_dict() for m in self.materials],
            "rooms": [asdict(r) for r in self.rooms],
            "doors": [asdict(d) for d in self.doors],
            "objects": [asdict(o) for o in self.objects],
            "meta": self.meta,
        }

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 over geometry, per-face attributes and metadata (hex, 16 chars)."""
        h = hashlib.sha256()
        for arr in (self.vertices, self.faces, self.face_material, self.face_semantic, self.face_instance):
            h.update(str(arr.dtype).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(json.dumps(_jsonable(self.metadata_dict()), sort_keys=True).encode())
        return h.hexdigest()[:16]

    def equals(self, other: Scene) -> bool:
        """Exact equality of arrays and metadata."""
        return self.content_hash == other.content_hash

    @staticmethod
    def rooms_from_dicts(items) -> tuple[Room, ...]:
        return tuple(Room(**{k: _as_tuple(v) for k, v in d.items()}) for d in items)

    @staticmethod
    def doors_from_dicts(items) -> tuple[Door, ...]:
        return tuple(Door(**{k: _as_tuple(v) for k, v in d.items()}) for d in items)

    @staticmethod
    def objects_from_dicts(items) -> tuple[SceneObject, ...]:
        return tuple(SceneObject(**{k: _as_tuple(v) for k, v in d.items()}) for d in items)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else str(f)
    return obj
