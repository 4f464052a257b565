"""Planar surfaces of a scene for image sources.

Faces are grouped into planes (unoriented: the two faces of a zero-thickness sheet and
coplanar faces of neighbouring boxes share one plane). A mirror image only depends on
the plane; which face (and material) reflects is decided per path by ray casting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.geometry.scene import Scene


@dataclass(frozen=True)
class Planes:
    """``normal`` (P, 3) unit, ``offset`` (P,): points x with n.x = d; ``face_plane`` (F,)."""

    normal: np.ndarray
    offset: np.ndarray
    face_plane: np.ndarray

    @property
    def count(self) -> int:
        return len(self.offset)

    def mirror(self, points: np.ndarray, plane: np.ndarray) -> np.ndarray:
        """Mirror (N, 3) points across planes ``plane`` (N,)."""
        n = self.normal[plane]
        s = np.einsum("ij,ij->i", points, n) - self.offset[plane]
        return points - 2.0 * s[:, None] * n


def extract_planes(scene: Scene, angle_tol: float = 1e-4, offset_tol_m: float = 1e-4,
                   min_area_m2: float = 1e-6) -> Planes:
    """Group the scene's faces by plane (normals and offsets quantized to the tolerances).

    Degenerate faces (area below ``min_area_m2``) get plane -1 and never reflect.
    """
    n = scene.face_normals.copy()
    # canonical orientation: first clearly non-zero component positive
    sign = np.sign(n[:, 0])
    sign = np.where(np.abs(n[:, 0]) < 1e-9, np.sign(n[:, 1]), sign)
    sign = np.where((np.abs(n[:, 0]) < 1e-9) & (np.abs(n[:, 1]) < 1e-9), np.sign(n[:, 2]), sign)
    sign = np.where(sign == 0, 1.0, sign)
    n = n * sign[:, None]
    d = np.einsum("ij,ij->i", n, scene.triangles[:, 0])
    key = np.column_stack([np.round(n / angle_tol), np.round(d / offset_tol_m)]).astype(np.int64)
    valid = scene.face_areas > min_area_m2
    face_plane = np.full(scene.num_faces, -1, np.int64)
    uniq, inverse = np.unique(key[valid], axis=0, return_inverse=True)
    face_plane[valid] = inverse.reshape(-1)
    normal = np.zeros((len(uniq), 3))
    offset = np.zeros(len(uniq))
    # area-weighted mean normal / offset per plane (then renormalized)
    w = scene.face_areas[valid]
    np.add.at(normal, inverse.reshape(-1), n[valid] * w[:, None])
    np.add.at(offset, inverse.reshape(-1), d[valid] * w)
    area = np.bincount(inverse.reshape(-1), weights=w, minlength=len(uniq))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    offset /= area
    return Planes(normal, offset, face_plane)
