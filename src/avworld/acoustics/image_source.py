"""Early arrivals from image sources on the scene's planes, validated by ray casting.

For a sequence of planes (p1..pk) the image of the source S is mirrored across p1,
then p2, ... A path is valid when, tracing back from the listener L toward each image,
every segment reaches the expected plane *on a real face* first (checked with one
batched Embree query per reflection order and step) and the last segment reaches S
unobstructed. Candidate sequences are enumerated exhaustively when the scene has few
planes (shoeboxes, L-shapes) and otherwise discovered by specular rays from the source
(every plane sequence a ray bounces through is a candidate), so cost stays bounded in
multi-room houses with hundreds of planes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avworld.acoustics.surfaces import Planes
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene

_EPS_M = 1e-4
#: Orders with at most this many plane sequences are enumerated exhaustively.
MAX_EXHAUSTIVE = 4000


@dataclass
class Arrivals:
    """Discrete arrivals at the listener.

    ``path_m`` (A,) path length; ``order`` (A,) reflections (0 = direct, -1 = direct
    through walls); ``faces`` (A, K) reflecting faces (-1 padded); ``doa`` (A, 3) unit
    vector from the listener toward where the sound arrives from (world frame).
    """

    path_m: np.ndarray
    order: np.ndarray
    faces: np.ndarray
    doa: np.ndarray


def enumerate_sequences(num_planes: int, order: int) -> np.ndarray:
    """All plane sequences of length ``order`` with no plane twice in a row: (N, order)."""
    if order == 0:
        return np.zeros((1, 0), np.int64)
    seqs = np.arange(num_planes)[:, None]
    for _ in range(order - 1):
        nxt = np.arange(num_planes)
        a = np.repeat(seqs, num_planes, axis=0)
        b = np.tile(nxt, len(seqs))[:, None]
        keep = a[:, -1] != b[:, 0]
        seqs = np.concatenate([a[keep], b[keep]], axis=1)
    return seqs


def count_sequences(num_planes: int, order: int) -> int:
    return 1 if order == 0 else num_planes * (num_planes - 1) ** (order - 1)


def validate_paths(rc: RayCaster, planes: Planes, source: np.ndarray, listener: np.ndarray,
                   seqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate sequences (N, k) of one order; returns (valid, faces (N,k), path_m, doa)."""
    n, k = seqs.shape
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    images = [np.broadcast_to(S, (n, 3)).copy()]
    for j in range(k):
        images.append(planes.mirror(images[-1], seqs[:, j]))
    valid = np.ones(n, bool)
    faces = np.full((n, k), -1, np.int64)
    P = np.broadcast_to(L, (n, 3)).copy()
    first_dir = None
    for j in range(k, 0, -1):
        p = seqs[:, j - 1]
        target = images[j]
        nrm, off = planes.normal[p], planes.offset[p]
        sP = np.einsum("ij,ij->i", P, nrm) - off
        sT = np.einsum("ij,ij->i", target, nrm) - off
        valid &= (sP * sT) < 0
        t = np.where(valid, sP / np.where(valid, sP - sT, 1.0), 0.0)
        Q = P + t[:, None] * (target - P)
        seg = Q - P
        dist = np.linalg.norm(seg, axis=1)
        valid &= dist > 2 * _EPS_M
        idx = np.flatnonzero(valid)
        if len(idx) == 0:
            break
        d = seg[idx] / dist[idx, None]
        hits = rc.cast(P[idx] + d * _EPS_M, d)
        hit_face = hits.face
        ok = (hit_face >= 0) & (np.abs(hits.distance - (dist[idx] - _EPS_M)) < 1e-3 + 1e-5 * dist[idx])
        ok &= planes.face_plane[np.maximum(hit_face, 0)] == p[idx]
        valid[idx[~ok]] = False
        faces[idx, j - 1] = hit_face
        if first_dir is None:
            first_dir = np.zeros((n, 3))
            first_dir[idx] = d
        P = Q
    if k == 0:
        first_dir = np.zeros((n, 3))
    idx = np.flatnonzero(valid)
    if len(idx):
        valid[idx[rc.occluded(P[idx], np.broadcast_to(S, (len(idx), 3)), eps=_EPS_M)]] = False
    path = np.linalg.norm(images[-1] - L, axis=1)
    if k == 0:
        diff = S - L
        first_dir = np.broadcast_to(diff / max(np.linalg.norm(diff), 1e-12), (n, 3)).copy()
    return valid, faces, path, first_dir


def transmission_crossings(rc: RayCaster, source, listener, max_crossings: int = 16) -> np.ndarray:
    """Faces entered (front side) along the straight segment source -> listener."""
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    seg = L - S
    length = float(np.linalg.norm(seg))
    d = seg / length
    pos, travelled, faces = S.copy(), 0.0, []
    for _ in range(max_crossings):
        h = rc.cast(pos[None] + d * _EPS_M, d[None], max_distance=max(length - travelled - 2 * _EPS_M, _EPS_M))
        if not h.hit[0]:
            break
        if float(np.dot(h.normal[0], d)) < 0:  # entering a solid (or crossing a sheet's front)
            faces.append(int(h.face[0]))
        step = float(h.distance[0]) + _EPS_M
        pos = pos + d * step
        travelled += step
    return np.asarray(faces, np.int64)


def image_source_arrivals(scene: Scene, rc: RayCaster, planes: Planes, source, listener, max_order: int,
                          discovered: dict[int, np.ndarray] | None = None,
                          max_exhaustive: int = MAX_EXHAUSTIVE) -> Arrivals:
    """All valid specular paths up to ``max_order`` plus the direct (or transmitted) path."""
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    paths, orders, face_rows, doas = [], [], [], []
    K = max(max_order, 1)
    # direct sound
    valid, _, path, doa = validate_paths(rc, planes, S, L, np.zeros((1, 0), np.int64))
    if valid[0]:
        paths.append(path)
        orders.append(np.zeros(1, np.int64))
        face_rows.append(np.full((1, K), -1, np.int64))
        doas.append(doa)
    else:
        crossed = transmission_crossings(rc, S, L)
        row = np.full((1, max(K, len(crossed))), -1, np.int64)
        row[0, : len(crossed)] = crossed
        paths.append(path)
        orders.append(np.full(1, -1, np.int64))
        face_rows.append(row[:, :K] if len(crossed) <= K else row)
        doas.append(doa)
    for k in range(1, max_order + 1):
        if count_sequences(planes.count, k) <= max_exhaustive:
            seqs = enumerate_sequences(planes.count, k)
        elif discovered is not None and k in discovered:
            seqs = discovered[k]
        else:
            continue
        if len(seqs) == 0:
            continue
        valid, faces, path, doa = validate_paths(rc, planes, S, L, seqs)
        if not valid.any():
            continue
        row = np.full((int(valid.sum()), K), -1, np.int64)
        row[:, :k] = faces[valid]
        paths.append(path[valid])
        orders.append(np.full(int(valid.sum()), k, np.int64))
        face_rows.append(row)
        doas.append(doa[valid])
    width = max(r.shape[1] for r in face_rows)
    face_rows = [np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=-1) for r in face_rows]
    return Arrivals(np.concatenate(paths), np.concatenate(orders), np.concatenate(face_rows), np.concatenate(doas))
