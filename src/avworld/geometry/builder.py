"""Incremental construction of a :class:`~avworld.geometry.scene.Scene` from boxes and quads."""

from __future__ import annotations

import numpy as np

from avworld.geometry.materials import Material, get_material
from avworld.geometry.scene import Door, Room, Scene, SceneObject
from avworld.geometry.semantics import semantic_id

# Unit cube corners and outward-facing (counter-clockwise seen from outside) triangles.
_BOX_CORNERS = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=float
)
_BOX_FACES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # bottom (-z)
        [4, 5, 6], [4, 6, 7],  # top (+z)
        [0, 1, 5], [0, 5, 4],  # -y
        [2, 3, 7], [2, 7, 6],  # +y
        [1, 2, 6], [1, 6, 5],  # +x
        [3, 0, 4], [3, 4, 7],  # -x
    ],
    dtype=np.int32,
)
_BOX_SIDES = ("bottom", "top", "-y", "+y", "+x", "-x")


class SceneBuilder:
    """Accumulates triangles with material / semantic / instance ids, then builds a Scene."""

    def __init__(self) -> None:
        self._verts: list[np.ndarray] = []
        self._faces: list[np.ndarray] = []
        self._mat: list[np.ndarray] = []
        self._sem: list[np.ndarray] = []
        self._inst: list[np.ndarray] = []
        self._nverts = 0
        self.materials: list[Material] = []
        self._mat_index: dict[str, int] = {}
        self.rooms: list[Room] = []
        self.doors: list[Door] = []
        self.objects: list[SceneObject] = []

    def material(self, mat: Material | str) -> int:
        """Index of a material in this scene's table, adding it on first use."""
        if isinstance(mat, str):
            mat = get_material(mat)
        if mat.name not in self._mat_index:
            self._mat_index[mat.name] = len(self.materials)
            self.materials.append(mat)
        return self._mat_index[mat.name]

    def add_triangles(self, vertices, faces, material, semantic: str, instance: int = -1) -> None:
        v = np.asarray(vertices, dtype=float).reshape(-1, 3)
        f = np.asarray(faces, dtype=np.int32).reshape(-1, 3)
        mi = self.material(material)
        self._verts.append(v)
        self._faces.append(f + self._nverts)
        self._nverts += len(v)
        n = len(f)
        self._mat.append(np.full(n, mi, np.int16))
        self._sem.append(np.full(n, semantic_id(semantic), np.int16))
        self._inst.append(np.full(n, instance, np.int32))

    def add_box(
        self,
        lo,
        hi,
        material,
        semantic: str,
        instance: int = -1,
        skip: tuple[str, ...] = (),
        side_materials: dict | None = None,
    ) -> None:
        """Axis-aligned box between corners ``lo`` and ``hi`` (outward normals).

        Sides are named ``"bottom"``, ``"top"``, ``"-y"``, ``"+y"``, ``"+x"``, ``"-x"``.
        ``skip`` drops sides (e.g. the hidden underside of furniture);
        ``side_materials`` gives some sides another material (e.g. the two faces of a
        wall that look into different rooms).
        """
        lo = np.asarray(lo, dtype=float)
        hi = np.asarray(hi, dtype=float)
        if np.any(hi <= lo):
            raise ValueError(f"box needs hi > lo on every axis, got lo={lo}, hi={hi}")
        verts = lo + _BOX_CORNERS * (hi - lo)
        side_materials = side_materials or {}
        by_material: dict = {}
        for i, name in enumerate(_BOX_SIDES):
            if name not in skip:
                by_material.setdefault(side_materials.get(name, material), []).append(i)
        for mat, sides in by_material.items():
            faces = _BOX_FACES.reshape(6, 2, 3)[sides].reshape(-1, 3)
            self.add_triangles(verts, faces, mat, semantic, instance)

    def add_quad(self, corners, material, semantic: str, instance: int = -1) -> None:
        """A planar quad from 4 corners in counter-clockwise order seen from the front."""
        self.add_triangles(corners, [[0, 1, 2], [0, 2, 3]], material, semantic, instance)

    def build(self, meta: dict | None = None) -> Scene:
        return Scene(
            vertices=np.concatenate(self._verts),
            faces=np.concatenate(self._faces),
            face_material=np.concatenate(self._mat),
            materials=tuple(self.materials),
            face_semantic=np.concatenate(self._sem),
            face_instance=np.concatenate(self._inst),
            rooms=tuple(self.rooms),
            doors=tuple(self.doors),
            objects=tuple(self.objects),
            meta=dict(meta or {}),
        )


def box_room(size=(4.0, 3.0, 2.5), material: str = "plaster", floor: str = "wood_floor") -> Scene:
    """A closed empty box room with one corner at the origin: the simplest test scene.

    The interior spans ``[0, sx] x [0, sy] x [0, sz]``; walls are 0.1 m thick boxes
    outside it, so the interior surfaces lie exactly on those planes.
    """
    sx, sy, sz = (float(s) for s in size)
    t = 0.1
    b = SceneBuilder()
    b.add_box((-t, -t, -t), (sx + t, sy + t, 0.0), floor, "floor")
    b.add_box((-t, -t, sz), (sx + t, sy + t, sz + t), "ceiling_plaster", "ceiling")
    b.add_box((-t, -t, 0.0), (0.0, sy + t, sz), material, "wall")
    b.add_box((sx, -t, 0.0), (sx + t, sy + t, sz), material, "wall")
    b.add_box((0.0, -t, 0.0), (sx, 0.0, sz), material, "wall")
    b.add_box((0.0, sy, 0.0), (sx, sy + t, sz), material, "wall")
    b.rooms.append(Room(0, "room", ((0.0, 0.0), (sx, 0.0), (sx, sy), (0.0, sy)), 0.0, sz))
    return b.build(meta={"generator": "box_room", "size": [sx, sy, sz]})


def extruded_room(corners, height: float, material: Material | str = "plaster", thickness: float = 0.1,
                  floor: Material | str | None = None, ceiling: Material | str | None = None) -> Scene:
    """A closed room whose floor plan is the counter-clockwise polygon ``corners`` with
    axis-aligned edges (e.g. an L-shape), extruded to ``height``; walls are boxes of
    ``thickness`` outside the polygon, so interior surfaces lie exactly on its edges."""
    c = np.asarray(corners, dtype=float)
    if c.ndim != 2 or c.shape[1] != 2 or len(c) < 3:
        raise ValueError(f"corners must be (N >= 3, 2), got shape {c.shape}")
    edges = np.roll(c, -1, axis=0) - c
    if np.any(np.all(edges != 0, axis=1)):
        raise ValueError("extruded_room needs axis-aligned edges")
    if 0.5 * np.sum(c[:, 0] * np.roll(c[:, 1], -1) - np.roll(c[:, 0], -1) * c[:, 1]) <= 0:
        raise ValueError("corners must be counter-clockwise")
    t = float(thickness)
    lo, hi = c.min(axis=0) - t, c.max(axis=0) + t
    b = SceneBuilder()
    b.add_box((lo[0], lo[1], -t), (hi[0], hi[1], 0.0), floor or material, "floor")
    b.add_box((lo[0], lo[1], height), (hi[0], hi[1], height + t), ceiling or material, "ceiling")
    # a corner is convex when the turn from the incoming to the outgoing edge is to the left
    prev = np.roll(edges, 1, axis=0)
    turn = prev[:, 0] * edges[:, 1] - prev[:, 1] * edges[:, 0]
    convex = turn > 0
    for i, (p, d) in enumerate(zip(c, edges)):
        out = np.array([d[1], -d[0]]) / np.linalg.norm(d)  # outward normal of a CCW polygon
        q = p + d
        u = d / np.linalg.norm(d)
        # close convex corners by extending the wall past them; at concave corners the
        # neighbouring wall already covers the outside, and extending would poke inside
        p_ext = p - u * t * convex[i]
        q_ext = q + u * t * convex[(i + 1) % len(c)]
        a0 = np.minimum(p_ext, q_ext) + np.minimum(out, 0.0) * t
        a1 = np.maximum(p_ext, q_ext) + np.maximum(out, 0.0) * t
        b.add_box((a0[0], a0[1], 0.0), (a1[0], a1[1], height), material, "wall")
    poly = tuple((float(x), float(y)) for x, y in c)
    b.rooms.append(Room(0, "room", poly, 0.0, float(height)))
    return b.build(meta={"generator": "extruded_room", "corners": c.tolist(), "height": float(height)})
