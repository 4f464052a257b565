"""Geodesic distances and shortest paths on a 2D navigability grid.

Grid conventions (shared with :class:`avworld.geometry.navigation.NavGrid`): ``free``
is an (H, W) bool array indexed ``[iy, ix]``; cell ``[iy, ix]`` has its centre at
``origin_xy + resolution_m * (ix, iy)`` and covers a square of side ``resolution_m``
around it. Continuous points map to the cell whose centre is nearest.

Distances come from the fast marching method (scikit-fmm, second order) started
from a small circle around the exact continuous goal; shortest paths descend that
field over 8-neighbours and are then string-pulled into a polyline whose segments are
collision-free on the grid.
"""

from __future__ import annotations

import heapq
import math

import numpy as np
import skfmm

# 8-neighbourhood offsets (dy, dx) and their step lengths in cells.
_NEIGH_DY = np.array([-1, -1, -1, 0, 0, 1, 1, 1])
_NEIGH_DX = np.array([-1, 0, 1, -1, 1, -1, 0, 1])
_NEIGH_LEN = np.hypot(_NEIGH_DY, _NEIGH_DX)


def points_to_cells(xy: np.ndarray, origin_xy: np.ndarray, resolution_m: float) -> np.ndarray:
    """(N, 2) float world points -> (N, 2) int cells ``[iy, ix]`` (may lie outside the grid)."""
    f = (np.asarray(xy, dtype=float).reshape(-1, 2) - origin_xy) / resolution_m
    c = np.floor(f + 0.5).astype(np.int64)
    return c[:, ::-1]


def points_free(free: np.ndarray, origin_xy: np.ndarray, resolution_m: float, xy: np.ndarray) -> np.ndarray:
    """(N,) bool: does each point lie in a free cell (False outside the grid)?"""
    cells = points_to_cells(xy, origin_xy, resolution_m)
    h, w = free.shape
    inside = (cells[:, 0] >= 0) & (cells[:, 0] < h) & (cells[:, 1] >= 0) & (cells[:, 1] < w)
    out = np.zeros(len(cells), bool)
    out[inside] = free[cells[inside, 0], cells[inside, 1]]
    return out


#: Segments are checked at samples no farther apart than resolution / SAMPLES_PER_CELL.
SAMPLES_PER_CELL = 2
#: Line-of-sight tests first look at every COARSE_STRIDE-th sample (a subset of the
#: full set, so a coarse hit is a real hit): most blocked segments are rejected cheaply.
COARSE_STRIDE = 4


def segment_params(p0: np.ndarray, p1: np.ndarray, resolution_m: float, stride: int = 1):
    """Sample parameters along M segments p0->p1.

    Each segment is cut into ``n = max(1, ceil(length / (resolution / SAMPLES_PER_CELL)))``
    equal intervals; samples are at ``t = j / n`` for ``j = 0, stride, 2 * stride, ...``
    plus ``t = 1``. Returns ``(seg (S,), t (S,), starts (M,))``: the segment of each
    sample, its parameter, and the index of each segment's first sample.
    """
    length = np.hypot(p1[:, 0] - p0[:, 0], p1[:, 1] - p0[:, 1])
    n_int = np.maximum(np.ceil(length * (SAMPLES_PER_CELL / resolution_m)).astype(np.int64), 1)
    m = -(-n_int // stride) + 1  # samples per segment, both ends included
    starts = np.zeros(len(m), np.int64)
    np.cumsum(m[:-1], out=starts[1:])
    seg = np.repeat(np.arange(len(m)), m)
    j = (np.arange(int(m.sum())) - starts[seg]) * stride
    t = np.minimum(j, n_int[seg]) / n_int[seg]
    return seg, t, starts


def _samples_free(free, origin_xy, resolution_m, p0, p1, stride):
    """(S,) bool per sample of :func:`segment_params`, plus (seg, t, starts)."""
    seg, t, starts = segment_params(p0, p1, resolution_m, stride)
    g0 = (p0 - origin_xy) / resolution_m  # grid units: cell centres at integers
    gd = (p1 - p0) / resolution_m
    cx = np.floor(g0[seg, 0] + t * gd[seg, 0] + 0.5).astype(np.int64)
    cy = np.floor(g0[seg, 1] + t * gd[seg, 1] + 0.5).astype(np.int64)
    h, w = free.shape
    inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
    ok = free[np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)] & inside
    return ok, seg, t, starts


#: Segments with at most this many samples are walked in plain Python (a dozen numpy calls
#: on arrays of a few elements cost more than the loop).
_SCALAR_MAX_SAMPLES = 256


def _first_blocked_scalar(free, origin_xy, resolution_m: float, p0, p1, max_samples: int):
    """:func:`first_blocked_sample` of one segment, computed sample by sample with the same
    float operations as :func:`segment_params` / :func:`_samples_free` (so the same
    result); None when the segment has more than ``max_samples`` samples."""
    x0, y0 = float(p0[0]), float(p0[1])
    x1, y1 = float(p1[0]), float(p1[1])
    length = float(np.hypot(x1 - x0, y1 - y0))
    n = max(math.ceil(length * (SAMPLES_PER_CELL / resolution_m)), 1)
    if n + 1 > max_samples:
        return None
    ox, oy = float(origin_xy[0]), float(origin_xy[1])
    g0x, g0y = (x0 - ox) / resolution_m, (y0 - oy) / resolution_m
    gdx, gdy = (x1 - x0) / resolution_m, (y1 - y0) / resolution_m
    h, w = free.shape
    for j in range(n + 1):
        t = j / n
        cx = math.floor(g0x + t * gdx + 0.5)
        cy = math.floor(g0y + t * gdy + 0.5)
        if not (0 <= cx < w and 0 <= cy < h and free[cy, cx]):
            return j, t, (j - 1) / n if j > 0 else 0.0
    return -1, 1.0, 1.0


def segments_free(free: np.ndarray, origin_xy: np.ndarray, resolution_m: float, p0, p1) -> np.ndarray:
    """(M,) bool: is every sample (spacing <= resolution/2) of each segment p0->p1 free?"""
    p0 = np.asarray(p0, dtype=float).reshape(-1, 2)
    p1 = np.asarray(p1, dtype=float).reshape(-1, 2)
    p0, p1 = (np.ascontiguousarray(a) for a in np.broadcast_arrays(p0, p1))
    if len(p0) == 0:
        return np.zeros(0, bool)
    origin_xy = np.asarray(origin_xy, dtype=float)
    if len(p0) == 1:  # one short segment (the follower's and simulator's queries): a scalar walk
        k = _first_blocked_scalar(free, origin_xy, resolution_m, p0[0], p1[0], _SCALAR_MAX_SAMPLES)
        if k is not None:
            return np.array([k[0] < 0])
    ok, _, _, starts = _samples_free(free, origin_xy, resolution_m, p0, p1, COARSE_STRIDE)
    out = np.logical_and.reduceat(ok, starts)
    todo = np.flatnonzero(out)
    if len(todo):
        ok, _, _, starts = _samples_free(free, origin_xy, resolution_m, p0[todo], p1[todo], 1)
        out[todo] = np.logical_and.reduceat(ok, starts)
    return out


def first_blocked_sample(free: np.ndarray, origin_xy, resolution_m: float, p0, p1) -> tuple[int, float, float]:
    """Walk the samples of one segment p0->p1 (same samples as :func:`segments_free`).

    Returns ``(index of the first non-free sample or -1, its t, t of the sample before)``.
    """
    p0 = np.asarray(p0, dtype=float).reshape(1, 2)
    p1 = np.asarray(p1, dtype=float).reshape(1, 2)
    origin_xy = np.asarray(origin_xy, dtype=float)
    res = _first_blocked_scalar(free, origin_xy, resolution_m, p0[0], p1[0], _SCALAR_MAX_SAMPLES)
    if res is not None:
        return res
    ok, _, t, _ = _samples_free(free, origin_xy, resolution_m, p0, p1, 1)
    if ok.all():
        return -1, 1.0, 1.0
    k = int(np.argmin(ok))
    return k, float(t[k]), float(t[k - 1]) if k > 0 else 0.0


class GeodesicField:
    """Geodesic distance (metres) from every free cell centre to one continuous goal.

    ``distance`` is (H, W) float64 with ``inf`` for cells that are not free or not
    reachable from the goal. Build with :func:`compute_field` (or
    :meth:`NavGrid.geodesic_field <avworld.geometry.navigation.NavGrid.geodesic_field>`).
    """

    def __init__(self, distance, goal_xy, free, origin_xy, resolution_m: float) -> None:
        self.distance = distance
        self.goal_xy = np.asarray(goal_xy, dtype=float).reshape(2)
        self.free = free
        self.origin_xy = np.asarray(origin_xy, dtype=float)
        self.resolution_m = float(resolution_m)
        self.goal_cell = tuple(int(v) for v in points_to_cells(self.goal_xy, self.origin_xy, self.resolution_m)[0])
        self._next: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.distance.shape

    def distance_at(self, xy) -> np.ndarray | float:
        """Geodesic distance at continuous points (bilinear between cell centres).

        ``inf`` where the point is not navigable or unreachable. Accepts (2,) (returns
        a float) or (N, 2) (returns (N,)). Corners of the interpolation stencil that
        are not free are left out and the remaining weights renormalized, so values
        next to obstacles stay finite.
        """
        arr = np.asarray(xy, dtype=float)
        if arr.shape == (2,):
            return self._distance_at_point(float(arr[0]), float(arr[1]))
        pts = arr.reshape(-1, 2)
        h, w = self.distance.shape
        f = (pts - self.origin_xy) / self.resolution_m
        i0 = np.floor(f).astype(np.int64)  # lower-left stencil corner, (ix, iy)
        frac = f - i0
        total = np.zeros(len(pts))
        weight = np.zeros(len(pts))
        for dx in (0, 1):
            for dy in (0, 1):
                ix, iy = i0[:, 0] + dx, i0[:, 1] + dy
                wgt = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
                inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
                val = np.full(len(pts), np.inf)
                val[inside] = self.distance[iy[inside], ix[inside]]
                ok = np.isfinite(val) & (wgt > 0)
                total[ok] += wgt[ok] * val[ok]
                weight[ok] += wgt[ok]
        out = np.full(len(pts), np.inf)
        nav = points_free(self.free, self.origin_xy, self.resolution_m, pts) & (weight > 0)
        out[nav] = total[nav] / weight[nav]
        if arr.ndim == 1:
            return float(out[0])
        return out.reshape(arr.shape[:-1])

    def _distance_at_point(self, x: float, y: float) -> float:
        """:meth:`distance_at` of one point, with the same float operations in plain Python."""
        dist = self.distance
        h, w = dist.shape
        res = self.resolution_m
        fx, fy = (x - float(self.origin_xy[0])) / res, (y - float(self.origin_xy[1])) / res
        # navigable: the point's own cell (nearest centre) is free
        cx, cy = math.floor(fx + 0.5), math.floor(fy + 0.5)
        if not (0 <= cx < w and 0 <= cy < h and self.free[cy, cx]):
            return math.inf
        i0x, i0y = math.floor(fx), math.floor(fy)
        ax, ay = fx - i0x, fy - i0y
        total = weight = 0.0
        for dx in (0, 1):
            for dy in (0, 1):
                ix, iy = i0x + dx, i0y + dy
                wgt = (ax if dx else 1 - ax) * (ay if dy else 1 - ay)
                if not (0 <= ix < w and 0 <= iy < h) or not wgt > 0:
                    continue
                val = float(dist[iy, ix])
                if math.isfinite(val):
                    total += wgt * val
                    weight += wgt
        return total / weight if weight > 0 else math.inf

    @property
    def next_cell(self) -> np.ndarray:
        """(H*W,) int64: flat index of the steepest strictly-descending 8-neighbour, or -1."""
        if self._next is None:
            self._next = _descent_pointers(self.distance)
        return self._next

    def descend(self, start_cell) -> list[tuple[int, int]]:
        """Cells from ``start_cell`` down the field to the goal cell (inclusive).

        Values strictly decrease along the way, so this terminates. If it gets stuck in
        a spurious local minimum (rare FMM artefact), the rest is found with Dijkstra.
        """
        h, w = self.distance.shape
        goal = self.goal_cell[0] * w + self.goal_cell[1]
        i = int(start_cell[0]) * w + int(start_cell[1])
        nxt = self.next_cell
        flat = [i]
        while i != goal:
            j = int(nxt[i])
            if j < 0:
                rest = _dijkstra(self.free, i, goal)
                if rest is None:
                    return []
                flat.extend(rest[1:])
                break
            flat.append(j)
            i = j
        return [(k // w, k % w) for k in flat]


def _descent_pointers(dist: np.ndarray) -> np.ndarray:
    h, w = dist.shape
    pad = np.pad(dist, 1, constant_values=np.inf)
    best_slope = np.zeros((h, w))
    best_k = np.full((h, w), -1, np.int64)
    with np.errstate(invalid="ignore"):
        for k in range(8):
            dy, dx = _NEIGH_DY[k], _NEIGH_DX[k]
            nb = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            slope = (dist - nb) / _NEIGH_LEN[k]  # NaN for inf - inf: never "better"
            better = slope > best_slope
            best_slope = np.where(better, slope, best_slope)
            best_k = np.where(better, k, best_k)
    iy, ix = np.mgrid[0:h, 0:w]
    k = np.maximum(best_k, 0)
    nxt = (iy + _NEIGH_DY[k]) * w + (ix + _NEIGH_DX[k])
    return np.where(best_k >= 0, nxt, -1).reshape(-1)


def _dijkstra(free: np.ndarray, start: int, goal: int) -> list[int] | None:
    """8-connected shortest cell path between two flat indices (fallback only)."""
    h, w = free.shape
    flat_free = free.reshape(-1)
    dist = {start: 0.0}
    prev: dict[int, int] = {}
    heap = [(0.0, start)]
    gy, gx = divmod(goal, w)
    while heap:
        d, i = heapq.heappop(heap)
        if i == goal:
            path = [i]
            while path[-1] != start:
                path.append(prev[path[-1]])
            return path[::-1]
        if d > dist.get(i, math.inf):
            continue
        y, x = divmod(i, w)
        for k in range(8):
            ny, nx = y + int(_NEIGH_DY[k]), x + int(_NEIGH_DX[k])
            if 0 <= ny < h and 0 <= nx < w:
                j = ny * w + nx
                if not flat_free[j]:
                    continue
                nd = d + float(_NEIGH_LEN[k])
                if nd < dist.get(j, math.inf):
                    dist[j] = nd
                    prev[j] = i
                    heapq.heappush(heap, (nd + math.hypot(ny - gy, nx - gx), j))
    return None


def compute_field(free: np.ndarray, origin_xy, resolution_m: float, goal_xy) -> GeodesicField:
    """Fast-marching geodesic distance field to the continuous point ``goal_xy``.

    The level set starts as a circle of one cell radius around the exact goal (so the
    goal's sub-cell position matters and the goal cell is inside it); that radius is
    added back, so the field approximates the distance to the goal point itself.
    """
    h, w = free.shape
    origin_xy = np.asarray(origin_xy, dtype=float)
    g = np.asarray(goal_xy, dtype=float).reshape(2)
    r0 = float(resolution_m)
    xs = origin_xy[0] + resolution_m * np.arange(w)
    ys = origin_xy[1] + resolution_m * np.arange(h)
    euclid = np.hypot(xs[None, :] - g[0], ys[:, None] - g[1])
    phi = np.ma.MaskedArray(euclid - r0, mask=~free)
    try:
        d = skfmm.distance(phi, dx=resolution_m, order=2)
        dist = np.where(np.ma.getmaskarray(d), np.inf, np.ma.getdata(d) + r0)
    except ValueError:
        # No zero contour among free cells (e.g. a one-cell component): only the cells
        # inside the start circle get a (straight-line) value.
        dist = np.where(free & (euclid < r0), euclid, np.inf)
    # Inside the start circle the straight-line distance is exact.
    inner = free & (euclid < r0)
    dist[inner] = euclid[inner]
    return GeodesicField(dist, g, free, origin_xy, resolution_m)


def string_pull(free: np.ndarray, origin_xy, resolution_m: float, pts: np.ndarray) -> np.ndarray:
    """Greedy string pulling of a polyline: from each kept vertex jump to the farthest
    later vertex whose straight segment is free. Endpoints are kept exactly."""
    return PulledPath(free, origin_xy, resolution_m, pts).vertices()


class PulledPath:
    """:func:`string_pull`'s polyline, pulled vertex by vertex when asked for.

    Each pulled vertex costs one visibility test against every later candidate, so a
    caller that needs only the first vertices and whether the path is longer than some
    radius (the shortest-path follower, every step) skips most of the work. Vertices and
    decisions are exactly those of the whole pulled path.
    """

    def __init__(self, free: np.ndarray, origin_xy, resolution_m: float, pts: np.ndarray) -> None:
        self._grid = (free, origin_xy, resolution_m)
        self._pts = np.asarray(pts, dtype=float)
        k = len(self._pts)
        self._idx = list(range(k)) if k <= 2 else [0]

    @property
    def empty(self) -> bool:
        return len(self._pts) == 0

    @property
    def done(self) -> bool:
        return self.empty or self._idx[-1] == len(self._pts) - 1

    def _pull(self) -> None:
        i, k = self._idx[-1], len(self._pts)
        later = np.arange(i + 1, k)
        vis = segments_free(*self._grid, self._pts[i], self._pts[later])
        vis[0] = True  # consecutive path vertices are 8-neighbours: always connected
        self._idx.append(int(later[np.flatnonzero(vis)[-1]]))

    def has(self, j: int) -> bool:
        """Does the pulled path have a vertex ``j``?"""
        while len(self._idx) <= j and not self.done:
            self._pull()
        return j < len(self._idx)

    def vertex(self, j: int) -> np.ndarray:
        """Vertex ``j >= 0`` (pulled up to it); the goal is ``vertices()[-1]``."""
        if j < 0:
            raise IndexError(f"vertex({j}): counts from the start only (j >= 0); use vertices()[-1] for the goal")
        if not self.has(j):
            raise IndexError(f"the pulled path has {len(self._idx)} vertices, no vertex {j}")
        return self._pts[self._idx[j]]

    def vertices(self) -> np.ndarray:
        """The whole pulled polyline (K, 2)."""
        while not self.done:
            self._pull()
        return self._pts[self._idx]

    def length(self) -> float:
        """Length (m) of the whole pulled polyline (0.0 for an empty or one-point path)."""
        return float(np.sum(np.hypot(*np.diff(self.vertices(), axis=0).T)))

    def longer_than(self, r: float) -> bool:
        """``length() > r``, pulling only until the vertices so far are clearly longer than ``r``."""
        total, j = 0.0, 1
        while self.has(j):
            total += math.hypot(*(self._pts[self._idx[j]] - self._pts[self._idx[j - 1]]))
            if total > r + 1e-9:  # later segments only add: no rounding can bring it back to r
                return True
            j += 1
        return self.length() > r


def candidate_vertices(cells: list[tuple[int, int]], every: int = 4) -> np.ndarray:
    """Indices of a cell path worth keeping as string-pulling candidates: both ends,
    every vertex where the step direction changes, and every ``every``-th vertex.

    Dropping the vertices in the middle of straight runs keeps the quadratic pulling
    step cheap without losing the corners the pulled path bends at.
    """
    c = np.asarray(cells, dtype=np.int64)
    n = len(c)
    if n <= 2:
        return np.arange(n)
    step = np.diff(c, axis=0)
    turn = np.any(step[1:] != step[:-1], axis=1)  # direction changes at vertex i+1
    keep = np.zeros(n, bool)
    keep[[0, -1]] = True
    keep[1:-1] |= turn
    keep[::every] = True
    return np.flatnonzero(keep)
