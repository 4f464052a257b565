"""Rasterize the parts of a triangle mesh that lie in a height band onto a 2D grid.

Navigation needs to know which grid cells have *any* geometry between the agent's
feet (plus the climbable step) and its head. Downward ray casting alone misses
vertical surfaces (an infinitely thin scanned wall is parallel to a vertical ray) and
is ambiguous where solids touch the floor, so obstacles come from here.

Two kinds of triangles, both handled with vectorized numpy:

* tall, steep ones (walls, cupboard sides) are cut by horizontal planes every
  ``slice_m`` through the band, plus planes just inside both band limits; each cut is
  a segment, sampled densely. A tall triangle overlapping the band is always cut by at
  least one plane, and for steep faces neighbouring cuts lie less than a sample step
  apart in xy, so nothing is missed;
* all others (short ones, every table top or shelf board, slanted faces) are sampled
  on a dense barycentric lattice (spacing below half a cell).

Library alternatives (trimesh's ``section_multiplane``) return Python objects per
plane and were far slower for this boolean use.
"""

from __future__ import annotations

import numpy as np


def _mark(out: np.ndarray, pts: np.ndarray, ox: float, oy: float, res: float) -> None:
    ix = np.rint((pts[:, 0] - ox) / res).astype(np.int64)
    iy = np.rint((pts[:, 1] - oy) / res).astype(np.int64)
    ok = (ix >= 0) & (ix < out.shape[1]) & (iy >= 0) & (iy < out.shape[0])
    out[iy[ok], ix[ok]] = True


def _sample_lattice(out, tri, z_lo, z_hi, step, ox, oy, res, max_samples=2_000_000) -> None:
    edge = np.max(np.linalg.norm((tri - np.roll(tri, 1, axis=1))[:, :, :2], axis=2), axis=1)
    n_per = np.clip(np.ceil(edge / step).astype(np.int64) + 1, 2, None)
    order = np.argsort(n_per, kind="stable")
    tri, n_per = tri[order], n_per[order]
    start = 0
    while start < len(tri):
        n = int(n_per[start])
        end = int(np.searchsorted(n_per, n, side="right"))
        i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        keep = (i + j) <= n - 1
        u = (i[keep] / (n - 1))[:, None, None]
        v = (j[keep] / (n - 1))[:, None, None]
        chunk = max(1, max_samples // len(u))
        for c0 in range(start, end, chunk):
            t = tri[c0 : min(end, c0 + chunk)]
            a, b, c = t[None, :, 0], t[None, :, 1], t[None, :, 2]
            p = (a + u * (b - a) + v * (c - a)).reshape(-1, 3)  # (S*T, 3)
            _mark(out, p[(p[:, 2] > z_lo) & (p[:, 2] < z_hi)], ox, oy, res)
        start = end


def _sample_slices(out, tri, planes, step, ox, oy, res) -> None:
    z = tri[:, :, 2]
    for h in planes:
        above = z > h
        cnt = above.sum(axis=1)
        t = tri[(cnt == 1) | (cnt == 2)]
        if len(t) == 0:
            continue
        zz = t[:, :, 2] - h
        pts = []
        for k0, k1 in ((0, 1), (1, 2), (2, 0)):
            a, b = t[:, k0], t[:, k1]
            za, zb = zz[:, k0], zz[:, k1]
            cross = (za > 0) != (zb > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                s = za / (za - zb)
            p = a + (b - a) * np.where(cross, s, 0.0)[:, None]
            pts.append(np.where(cross[:, None], p[:, :2], np.nan))
        pts = np.stack(pts, axis=1)  # (T, 3 edges, 2): exactly two edges are crossed
        valid = ~np.isnan(pts[:, :, 0])
        first = np.argmax(valid, axis=1)
        last = 2 - np.argmax(valid[:, ::-1], axis=1)
        p0 = pts[np.arange(len(t)), first]
        p1 = pts[np.arange(len(t)), last]
        seg_len = np.linalg.norm(p1 - p0, axis=1)
        n_per = np.ceil(seg_len / step).astype(np.int64) + 1
        rep = np.repeat(np.arange(len(t)), n_per)
        offs = np.arange(rep.size) - np.repeat(np.cumsum(n_per) - n_per, n_per)
        frac = offs / np.maximum(np.repeat(n_per, n_per) - 1, 1)
        q = p0[rep] + (p1[rep] - p0[rep]) * frac[:, None]
        _mark(out, q, ox, oy, res)


def band_occupancy(
    triangles: np.ndarray,
    origin_xy,
    shape: tuple[int, int],
    resolution_m: float,
    z_lo: float,
    z_hi: float,
    slice_m: float = 0.1,
    inset_m: float = 1e-5,
) -> np.ndarray:
    """(H, W) bool: cells whose column contains geometry with ``z_lo < z < z_hi``.

    ``triangles`` is (F, 3, 3); cell ``[iy, ix]`` is centred at
    ``origin_xy + (ix, iy) * resolution_m``.
    """
    if not z_hi > z_lo:
        raise ValueError(f"band needs z_hi > z_lo, got [{z_lo}, {z_hi}]")
    tri = np.asarray(triangles, dtype=np.float64)
    out = np.zeros(shape, dtype=bool)
    if len(tri) == 0:
        return out
    if inset_m:
        # Move every face a hair against its normal (into the solid it bounds), so a
        # surface lying exactly on a cell boundary marks the cell on the solid side.
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
        # Likewise pull the vertices a hair toward the centroid, so an edge on a cell
        # boundary (a wall's end) marks the cell on the solid's side only.
        to_c = tri.mean(axis=1, keepdims=True) - tri
        to_c /= np.maximum(np.linalg.norm(to_c, axis=2, keepdims=True), 1e-300)
        tri = tri - inset_m * n[:, None, :] + inset_m * to_c
    zmin, zmax = tri[:, :, 2].min(axis=1), tri[:, :, 2].max(axis=1)
    tri, zmin, zmax = (a[(zmax > z_lo) & (zmin < z_hi)] for a in (tri, zmin, zmax))
    ox, oy = float(origin_xy[0]), float(origin_xy[1])
    step = resolution_m / 2.5
    # Slices are exact only where consecutive cuts land less than a sample step apart
    # in xy: (near-)vertical faces. Everything else is sampled on the lattice.
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    nz = np.abs(n[:, 2]) / np.maximum(np.linalg.norm(n, axis=1), 1e-300)
    steep = slice_m * nz <= step * np.sqrt(np.maximum(1.0 - nz**2, 0.0))
    sliced = steep & ((zmax - zmin) >= slice_m)
    if (~sliced).any():
        _sample_lattice(out, tri[~sliced], z_lo, z_hi, step, ox, oy, resolution_m)
    if sliced.any():
        eps = 1e-4
        planes = np.unique(np.concatenate([np.arange(z_lo + eps, z_hi, slice_m), [z_hi - eps]]))
        _sample_slices(out, tri[sliced], planes, step, ox, oy, resolution_m)
    return out
