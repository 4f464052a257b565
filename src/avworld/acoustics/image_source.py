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


def validate_all(rc: RayCaster, planes: Planes, source, listener, seqs: np.ndarray, k: np.ndarray):
    """Validate sequences of mixed orders at once: ``seqs`` (N, K) padded with -1, ``k`` (N,).

    Back-tracing step i (from the listener) handles every sequence with k > i in one
    batched Embree call, so the number of calls is K + 1 instead of one per order and step.
    Returns (valid, faces (N, K), path_m, doa).
    """
    n, K = seqs.shape
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    images = np.empty((K + 1, n, 3))
    images[0] = S
    for j in range(K):
        use = k > j
        images[j + 1] = images[j]
        images[j + 1][use] = planes.mirror(images[j][use], seqs[use, j])
    final = images[k, np.arange(n)]
    valid = np.ones(n, bool)
    faces = np.full((n, K), -1, np.int64)
    P = np.broadcast_to(L, (n, 3)).copy()
    doa = final - L
    for i in range(K):
        act = np.flatnonzero(valid & (k > i))
        if len(act) == 0:
            break
        j = k[act] - 1 - i  # plane index within each sequence for this step
        p = seqs[act, j]
        target = images[j + 1, act]
        nrm, off = planes.normal[p], planes.offset[p]
        Pa = P[act]
        sP = np.einsum("ij,ij->i", Pa, nrm) - off
        sT = np.einsum("ij,ij->i", target, nrm) - off
        ok = (sP * sT) < 0
        t = np.where(ok, sP / np.where(ok, sP - sT, 1.0), 0.0)
        Q = Pa + t[:, None] * (target - Pa)
        seg = Q - Pa
        dist = np.linalg.norm(seg, axis=1)
        ok &= dist > 2 * _EPS_M
        d = seg / np.maximum(dist, 1e-12)[:, None]
        c = np.flatnonzero(ok)
        if len(c):
            hits = rc.cast(Pa[c] + d[c] * _EPS_M, d[c])
            good = (hits.face >= 0) & (np.abs(hits.distance - (dist[c] - _EPS_M)) < 1e-3 + 1e-5 * dist[c])
            good &= planes.face_plane[np.maximum(hits.face, 0)] == p[c]
            ok[c] = good
            faces[act[c], j[c]] = hits.face
        valid[act[~ok]] = False
        if i == 0:
            doa[act] = seg
        P[act] = Q
    idx = np.flatnonzero(valid)
    if len(idx):
        valid[idx[rc.occluded(P[idx], np.broadcast_to(S, (len(idx), 3)), eps=_EPS_M)]] = False
    path = np.linalg.norm(final - L, axis=1)
    doa /= np.maximum(np.linalg.norm(doa, axis=1, keepdims=True), 1e-12)
    return valid, faces, path, doa


def image_source_arrivals(scene: Scene, rc: RayCaster, planes: Planes, source, listener, max_order: int,
                          discovered: dict[int, np.ndarray] | None = None,
                          max_exhaustive: int = MAX_EXHAUSTIVE) -> Arrivals:
    """All valid specular paths up to ``max_order`` plus the direct (or transmitted) path."""
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    K = max(max_order, 1)
    blocks, orders = [np.full((1, K), -1, np.int64)], [np.zeros(1, np.int64)]
    for k in range(1, max_order + 1):
        if count_sequences(planes.count, k) <= max_exhaustive:
            seqs = enumerate_sequences(planes.count, k)
        elif discovered is not None and k in discovered:
            seqs = discovered[k]
        else:
            continue
        if len(seqs):
            blocks.append(np.pad(seqs, ((0, 0), (0, K - k)), constant_values=-1))
            orders.append(np.full(len(seqs), k, np.int64))
    seqs, k = np.concatenate(blocks), np.concatenate(orders)
    valid, faces, path, doa = validate_all(rc, planes, S, L, seqs, k)
    order = k.copy()
    if not valid[0]:  # no line of sight: the direct sound passes through walls
        crossed = transmission_crossings(rc, S, L)
        if len(crossed) > K:
            faces = np.pad(faces, ((0, 0), (0, len(crossed) - K)), constant_values=-1)
        faces[0, :] = -1
        faces[0, : len(crossed)] = crossed
        valid[0] = True
        order[0] = -1
    return Arrivals(path[valid], order[valid], faces[valid], doa[valid])
