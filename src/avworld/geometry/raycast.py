"""Batched ray casting against a scene with Intel Embree (via ``embreex``).

One :class:`RayCaster` per scene; every query takes any number of rays in one call.
It is shared by the vision renderer, navigation-grid construction and the acoustic
engine. Embree works in float32: distances are accurate to about 1e-6 relative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.geometry.scene import Scene


@dataclass
class RayHits:
    """Result of :meth:`RayCaster.cast` for N rays.

    ``distance`` (N,) float32 along the (normalized) ray, ``inf`` for a miss;
    ``face`` (N,) int32 face index or -1; ``normal`` (N, 3) float32 unit geometric
    normal of the hit face (from its winding; zeros for a miss).
    """

    distance: np.ndarray
    face: np.ndarray
    normal: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        return self.face >= 0

    def points(self, origins, directions) -> np.ndarray:
        """(N, 3) world hit points (NaN for misses)."""
        d = np.where(self.hit, self.distance, np.nan).astype(np.float64)
        return np.asarray(origins, float) + np.asarray(directions, float) * d[:, None]


class RayCaster:
    """Embree acceleration structure over a :class:`Scene` (picklable: rebuilt lazily)."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._embree = None
        self._normals32 = scene.face_normals.astype(np.float32)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_embree"] = None
        return state

    @property
    def embree(self):
        if self._embree is None:
            from embreex import rtcore_scene as rtcs
            from embreex.mesh_construction import TriangleMesh

            sc = rtcs.EmbreeScene()
            TriangleMesh(sc, np.ascontiguousarray(self.scene.triangles, dtype=np.float32))
            self._embree = sc
        return self._embree

    @staticmethod
    def _prep(origins, directions):
        o = np.ascontiguousarray(np.asarray(origins, dtype=np.float32).reshape(-1, 3))
        d = np.asarray(directions, dtype=np.float32).reshape(-1, 3)
        if o.shape[0] != d.shape[0]:
            if o.shape[0] == 1:
                o = np.ascontiguousarray(np.broadcast_to(o, d.shape))
            else:
                raise ValueError(f"origins ({o.shape[0]}) and directions ({d.shape[0]}) differ in count")
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("ray directions must be non-zero")
        d = np.ascontiguousarray(d / norm)
        return o, d

    def cast_raw(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Closest-hit face ids only (the raw Embree call; inputs already float32, unit)."""
        return self.embree.run(origins, directions)

    def cast(self, origins, directions, max_distance: float | np.ndarray = np.inf) -> RayHits:
        """Closest hit for every ray. Origins may be (1, 3) to share one origin."""
        o, d = self._prep(origins, directions)
        n = len(d)
        if n == 0:
            return RayHits(np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros((0, 3), np.float32))
        dists = None
        if np.ndim(max_distance) > 0 or np.isfinite(max_distance):
            dists = np.array(np.broadcast_to(np.asarray(max_distance, np.float32), (n,)), dtype=np.float32)
        res = self.embree.run(o, d, dists=dists, output=1)
        face = np.asarray(res["primID"], dtype=np.int32)
        hit = face >= 0
        dist = np.where(hit, np.asarray(res["tfar"], dtype=np.float32), np.float32(np.inf))
        normal = np.zeros((n, 3), np.float32)
        normal[hit] = self._normals32[face[hit]]
        return RayHits(dist, face, normal)

    def occluded(self, origins, targets, eps: float = 1e-4) -> np.ndarray:
        """(N,) bool: is anything between each origin and its target point?

        The segment is shortened by ``eps`` metres at both ends so that surfaces the
        points lie on do not count.
        """
        o = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
        t = np.asarray(targets, dtype=np.float64).reshape(-1, 3)
        o, t = np.broadcast_arrays(o, t)
        seg = t - o
        length = np.linalg.norm(seg, axis=1)
        out = np.zeros(len(length), bool)
        ok = length > 2 * eps
        if not np.any(ok):
            return out
        d = seg[ok] / length[ok, None]
        start = o[ok] + d * eps
        hits = self.cast(start, d, max_distance=(length[ok] - 2 * eps).astype(np.float32))
        out[ok] = hits.hit
        return out
