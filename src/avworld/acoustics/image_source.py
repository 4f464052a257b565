"""Early arrivals from image sources on the scene's planes, validated by ray casting.

For a sequence of planes (p1..pk) the image of the source S is mirrored across p1,
then p2, ... A path is valid when, tracing back from the listener L toward each image,
every segment reaches the expected plane *on a real face* first (checked with one
batched Embree query per reflection order and step) and the last segment reaches S
unobstructed. Candidate sequences are enumerated exhaustively when the scene has few
planes (shoeboxes, L-shapes) and otherwise discovered by specular rays from the source
(every plane sequence a ray bounces through is a candidate), so cost stays bounded in
multi-room houses with hundreds of planes.

Candidates that cannot be paths are dropped before any ray is cast (:class:`PlaneGraph`,
built once per scene). A face of a closed, outward-oriented solid (a wall box, a piece
of furniture) reflects only on its front side, since sound travels in air, outside the
solids; every other face (open sheets, imported meshes) counts as two-sided. Plane j can
follow plane i in a path only if some face of i has a point strictly on a reflecting side
of some face of j and vice versa; the first plane must reflect on the source's side and
the last on the listener's. In a room with thick walls this removes every sequence
through the walls' outer faces (about 90 % of the exhaustive candidates of order 3).
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


def solid_faces(scene: Scene, weld_m: float = 1e-6) -> np.ndarray:
    """(F,) bool: faces of closed, consistently wound components of positive volume (outward solids).

    Vertices are welded by position first; a component is closed and consistently wound
    when every directed edge a->b is matched by as many edges b->a.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    F = scene.num_faces
    key = np.round(scene.vertices / weld_m).astype(np.int64)
    _, vid = np.unique(key, axis=0, return_inverse=True)
    tri = vid.reshape(-1)[scene.faces]  # (F, 3) welded vertex ids
    a = tri.reshape(-1)
    b = tri[:, [1, 2, 0]].reshape(-1)
    face_of_edge = np.repeat(np.arange(F), 3)
    nv = int(tri.max()) + 1
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    undirected = lo * nv + hi
    _, edge_id = np.unique(undirected, return_inverse=True)
    edge_id = edge_id.reshape(-1)
    balance = np.bincount(edge_id, np.where(a < b, 1, -1), edge_id.max() + 1)  # (E,) forward - backward
    degenerate = a == b
    # faces sharing an edge are connected
    order = np.argsort(edge_id, kind="stable")
    e_sorted = edge_id[order]
    same = e_sorted[1:] == e_sorted[:-1]
    graph = coo_matrix((np.ones(int(same.sum())), (face_of_edge[order][1:][same], face_of_edge[order][:-1][same])),
                       shape=(F, F))
    n_comp, comp = connected_components(graph, directed=False)
    bad_edge = (balance[edge_id] != 0) | degenerate
    comp_bad = np.bincount(comp[face_of_edge], bad_edge, n_comp) > 0
    t = scene.triangles
    vol = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])) / 6.0
    comp_vol = np.bincount(comp, vol, n_comp)
    return ~comp_bad[comp] & (comp_vol[comp] > 0)


@dataclass
class PlaneGraph:
    """Which planes can follow which in a specular path, and from which side each reflects.

    ``follows`` (P, P) bool: plane j may come right after plane i; ``reflects_pos`` /
    ``reflects_neg`` (P,) bool: some face of the plane reflects on the side its (canonical)
    normal points to / the other side. ``sequences[k]``: the order-k candidates that obey
    ``follows`` (only for orders enumerated exhaustively).
    """

    follows: np.ndarray | None
    reflects_pos: np.ndarray
    reflects_neg: np.ndarray
    sequences: dict[int, np.ndarray]

    @classmethod
    def build(cls, scene: Scene, planes: Planes, max_order: int, max_exhaustive: int = MAX_EXHAUSTIVE,
              tol_m: float = 1e-4) -> PlaneGraph:
        P = planes.count
        fp = planes.face_plane
        solid = solid_faces(scene)
        on = fp >= 0
        # face orientation relative to its plane's canonical normal
        s = np.einsum("ij,ij->i", scene.face_normals, planes.normal[np.maximum(fp, 0)])
        pos_face = on & (~solid | (s > 0))
        neg_face = on & (~solid | (s < 0))
        reflects_pos = np.bincount(fp[pos_face], minlength=P) > 0
        reflects_neg = np.bincount(fp[neg_face], minlength=P) > 0
        orders = [k for k in range(1, max_order + 1) if count_sequences(P, k) <= max_exhaustive]
        follows = None
        sequences: dict[int, np.ndarray] = {}
        if orders:
            follows = np.zeros((P, P), bool)
            if max(orders) >= 2:
                follows = cls._follows(scene, planes, solid, tol_m)
            seqs = np.arange(P)[:, None]
            for k in range(1, max(orders) + 1):
                if k > 1:
                    allowed = follows[seqs[:, -1]]  # (N, P)
                    nxt = np.nonzero(allowed)
                    seqs = np.concatenate([seqs[nxt[0]], nxt[1][:, None]], axis=1)
                if k in orders:
                    sequences[k] = seqs
        return cls(follows, reflects_pos, reflects_neg, sequences)

    @staticmethod
    def _follows(scene: Scene, planes: Planes, solid: np.ndarray, tol_m: float) -> np.ndarray:
        P = planes.count
        fp = planes.face_plane
        idx = np.flatnonzero(fp >= 0)
        tri = scene.triangles[idx]  # (G, 3, 3)
        n = scene.face_normals[idx]
        off = np.einsum("ij,ij->i", n, tri[:, 0])
        sb = solid[idx]
        G = len(idx)
        reach = np.empty((G, G), bool)
        for a0 in range(0, G, 256):  # blocks keep the (faces, faces, 3) distances small
            # dist[a, b, v]: signed distance of vertex v of face a to the plane of face b (front positive)
            dist = np.einsum("avk,bk->abv", tri[a0 : a0 + 256], n) - off[None, :, None]
            front = (dist > tol_m).any(axis=2)
            back = (dist < -tol_m).any(axis=2)
            # a has a point on a reflecting side of b (b's front if b is solid, either side otherwise)
            reach[a0 : a0 + 256] = front | (back & ~sb[None, :])
        pair = reach & reach.T
        g = fp[idx]
        out = np.zeros((P, P), bool)
        ia, ib = np.nonzero(pair)
        out[g[ia], g[ib]] = True
        np.fill_diagonal(out, False)
        return out

    def padded(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """All of :attr:`sequences` as one (N, width) array padded with -1, and their orders (N,)."""
        key = ("padded", width)
        hit = self.__dict__.get("_padded")
        if hit is None or hit[0] != key:
            blocks = [np.full((0, width), -1, np.int64)]
            orders = [np.zeros(0, np.int64)]
            for k in sorted(self.sequences):
                seqs = self.sequences[k]
                p = np.full((len(seqs), width), -1, np.int64)
                p[:, :k] = seqs
                blocks.append(p)
                orders.append(np.full(len(seqs), k, np.int64))
            hit = self._padded = (key, (np.concatenate(blocks), np.concatenate(orders)))
        return hit[1]

    def side_ok(self, planes: Planes, point, tol_m: float = 1e-6) -> np.ndarray:
        """(P,) bool: the plane has a face reflecting on the side ``point`` lies on."""
        sd = planes.normal @ np.asarray(point, float) - planes.offset
        return ((sd > tol_m) & self.reflects_pos) | ((sd < -tol_m) & self.reflects_neg)


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


@dataclass
class SourceImages:
    """Listener-independent part of the image-source model for one source.

    ``seqs`` (N, K) candidate plane sequences (-1 padded; row 0 is the direct path),
    ``k`` (N,) their orders, ``images`` (K + 1, N, 3) the source mirrored across the
    first j planes of each sequence (rows beyond a sequence's order repeat its image),
    ``last_plane`` (N,) the plane of the last reflection (-1 for the direct path).
    """

    seqs: np.ndarray
    k: np.ndarray
    images: np.ndarray
    last_plane: np.ndarray
    source: np.ndarray


def source_images(planes: Planes, source, max_order: int, discovered: dict[int, np.ndarray] | None = None,
                  max_exhaustive: int = MAX_EXHAUSTIVE, graph: PlaneGraph | None = None) -> SourceImages:
    """Candidate sequences up to ``max_order`` (exhaustive or discovered) and their images."""
    S = np.asarray(source, float)
    K = max(max_order, 1)
    blocks, orders = [np.full((1, K), -1, np.int64)], [np.zeros(1, np.int64)]
    src_ok = graph.side_ok(planes, S) if graph is not None else None
    if graph is not None and max_order >= 1:
        # every exhaustively enumerated order at once (padded and concatenated once per scene)
        seqs_x, k_x = graph.padded(K)
        if len(k_x):
            keep = src_ok[seqs_x[:, 0]]
            blocks.append(seqs_x[keep])
            orders.append(k_x[keep])
    for k in range(1, max_order + 1):
        if count_sequences(planes.count, k) <= max_exhaustive:
            if graph is not None:
                continue  # in graph.padded(K) above
            seqs = enumerate_sequences(planes.count, k)
        elif discovered is not None and k in discovered:
            seqs = discovered[k]
        else:
            continue
        if src_ok is not None and len(seqs):
            seqs = seqs[src_ok[seqs[:, 0]]]
        if len(seqs):
            padded = np.full((len(seqs), K), -1, np.int64)
            padded[:, :k] = seqs
            blocks.append(padded)
            orders.append(np.full(len(seqs), k, np.int64))
    return _mirror_chains(planes, S, np.concatenate(blocks), np.concatenate(orders))


def _mirror_chains(planes: Planes, S: np.ndarray, seqs: np.ndarray, k: np.ndarray) -> SourceImages:
    """Images of source ``S`` after each reflection of the plane sequences ``seqs`` (N, K), -1 padded, orders ``k``."""
    n, K = seqs.shape
    images = np.empty((K + 1, n, 3))
    images[0] = S
    for j in range(K):
        images[j + 1] = images[j]
        use = np.flatnonzero(k > j)
        images[j + 1, use] = planes.mirror(images[j, use], seqs[use, j])
    last = seqs[np.arange(n), np.maximum(k - 1, 0)]
    last[k == 0] = -1
    return SourceImages(seqs, k, images, last, S)


def _cast(rc: RayCaster, origins: np.ndarray, dirs: np.ndarray, max_dist: np.ndarray | None = None):
    """(face, distance) of the closest hits; ``dirs`` unit vectors (float32 Embree call, no checks)."""
    o = np.ascontiguousarray(origins, dtype=np.float32)
    d = np.ascontiguousarray(dirs, dtype=np.float32)
    dists = None if max_dist is None else np.ascontiguousarray(max_dist, dtype=np.float32)
    res = rc.embree.run(o, d, dists=dists, output=1)
    return res["primID"], res["tfar"]


def validate_images(rc: RayCaster, planes: Planes, imgs: SourceImages, listener, graph: PlaneGraph | None = None):
    """Validate the candidates of ``imgs`` for ``listener``.

    Back-tracing step i (from the listener) handles every sequence with k > i in one
    batched Embree call, so the number of calls is K + 1 instead of one per order and step.
    Returns (valid, faces (n, K), path_m, doa, order) for the rows kept (the direct path first).
    """
    L = np.asarray(listener, float)
    rows = np.arange(len(imgs.k))
    if graph is not None:  # the last plane must reflect on the listener's side
        lis_ok = np.append(graph.side_ok(planes, L), True)  # index -1: the direct path
        rows = np.flatnonzero(lis_ok[imgs.last_plane])
    seqs, k = imgs.seqs[rows], imgs.k[rows]
    images = imgs.images[:, rows]
    n, K = seqs.shape
    final = images[k, np.arange(n)]
    valid = np.ones(n, bool)
    faces = np.full((n, K), -1, np.int64)
    P = np.empty((n, 3))
    P[:] = L
    doa = final - L
    act = np.arange(n)
    for i in range(K):
        act = act[k[act] > i]
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
        t = sP / np.where(ok, sP - sT, 1.0)
        seg = t[:, None] * (target - Pa)
        Q = Pa + seg
        dist = np.sqrt(np.einsum("ij,ij->i", seg, seg))
        ok &= dist > 2 * _EPS_M
        c = np.flatnonzero(ok)
        if len(c):
            d = seg[c] / dist[c, None]
            face, tfar = _cast(rc, Pa[c] + d * _EPS_M, d)
            good = (face >= 0) & (np.abs(tfar - (dist[c] - _EPS_M)) < 1e-3 + 1e-5 * dist[c])
            good &= planes.face_plane[face] == p[c]  # (face -1 reads the last entry; it is not good anyway)
            ok[c] = good
            faces[act[c], j[c]] = face
        valid[act[~ok]] = False
        if i == 0:
            doa[act] = seg
        P[act] = Q
        act = act[ok]
    idx = np.flatnonzero(valid)
    if len(idx):  # the last segment must reach the source unobstructed
        seg = imgs.source - P[idx]
        length = np.sqrt(np.einsum("ij,ij->i", seg, seg))
        far = length > 2 * _EPS_M
        d = seg / np.maximum(length, 1e-12)[:, None]
        face, _ = _cast(rc, P[idx] + d * _EPS_M, d, np.maximum(length - 2 * _EPS_M, _EPS_M))
        valid[idx[far & (face >= 0)]] = False
    path = np.linalg.norm(final - L, axis=1)
    doa /= np.maximum(np.linalg.norm(doa, axis=1, keepdims=True), 1e-12)
    return valid, faces, path, doa, k


def validate_all(rc: RayCaster, planes: Planes, source, listener, seqs: np.ndarray, k: np.ndarray):
    """Validate sequences of mixed orders at once: ``seqs`` (N, K) padded with -1, ``k`` (N,).

    Returns (valid, faces (N, K), path_m, doa).
    """
    images = _mirror_chains(planes, np.asarray(source, float), seqs, k)
    valid, faces, path, doa, _ = validate_images(rc, planes, images, listener)
    return valid, faces, path, doa


def image_source_arrivals(scene: Scene, rc: RayCaster, planes: Planes, source, listener, max_order: int,
                          discovered: dict[int, np.ndarray] | None = None,
                          max_exhaustive: int = MAX_EXHAUSTIVE, graph: PlaneGraph | None = None,
                          images: SourceImages | None = None) -> Arrivals:
    """All valid specular paths up to ``max_order`` plus the direct (or transmitted) path.

    ``graph`` (built once per scene, :class:`PlaneGraph`) drops impossible candidates
    before validation; the result is the same with or without it. ``images`` (from
    :func:`source_images` for this source, e.g. cached) skips the mirroring.
    """
    S = np.asarray(source, float)
    L = np.asarray(listener, float)
    K = max(max_order, 1)
    if images is None:
        images = source_images(planes, S, max_order, discovered, max_exhaustive, graph)
    valid, faces, path, doa, order = validate_images(rc, planes, images, L, graph)
    order = order.copy()
    if not valid[0]:  # no line of sight: the direct sound passes through walls
        crossed = transmission_crossings(rc, S, L)
        if len(crossed) > K:
            faces = np.pad(faces, ((0, 0), (0, len(crossed) - K)), constant_values=-1)
        faces[0, :] = -1
        faces[0, : len(crossed)] = crossed
        valid[0] = True
        order[0] = -1
    return Arrivals(path[valid], order[valid], faces[valid], doa[valid])
