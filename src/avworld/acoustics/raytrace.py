"""Stochastic ray tracing for the late diffuse tail.

Rays leave the source in random directions, each carrying 1/N of the emitted energy
per octave band. At every hit the energy is multiplied by (1 - absorption) of the hit
face's material, air absorption acts along the path, and the ray reflects diffusely
(Lambert) with the material's scattering probability, specularly otherwise. All rays
advance together, one batched Embree call per bounce.

The trace depends on the source only: every listener position reuses it. A listener is
a sphere of radius r; a segment crossing it with chord l deposits ``e * l / V / (4 pi)``
of energy, which makes a free-field ray ensemble reproduce the point-source energy
``1 / (4 pi d)^2`` (the square of the image-source amplitude convention). Segments of
rays whose history is purely specular with at most ``ism_order`` reflections are skipped
at the listener: the image sources already render them exactly (the classic hybrid
split). The trace also yields the ensemble energy decay per metre, used to extend
the tail beyond the traced length, and the plane sequences specular rays bounced
through (candidate image-source paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from avworld.acoustics.bands import AIR_ENERGY_ATTENUATION_PER_M
from avworld.acoustics.surfaces import Planes
from avworld.geometry.raycast import RayCaster

_EPS_M = 1e-4


@dataclass
class RayTrace:
    """Listener-independent result of tracing rays from one source."""

    origin: np.ndarray  # (M, 3) segment starts
    direction: np.ndarray  # (M, 3)
    length: np.ndarray  # (M,)
    start_m: np.ndarray  # (M,) path length travelled at the segment start
    energy: np.ndarray  # (M, 7) energy at the segment start
    decay_per_m: np.ndarray  # (7,) ensemble energy decay rate (1/m)
    traced_m: float
    n_rays: int
    discovered: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.origin, self.direction, self.length, self.start_m, self.energy))


def _lambert(normals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cosine-weighted random directions around unit ``normals`` (N, 3)."""
    n = len(normals)
    u = rng.random((2, n))
    r, phi = np.sqrt(u[0]), 2 * np.pi * u[1]
    lx, ly, lz = r * np.cos(phi), r * np.sin(phi), np.sqrt(np.maximum(0.0, 1 - u[0]))
    nx, ny, nz = normals[:, 0], normals[:, 1], normals[:, 2]
    # orthonormal basis (t1, t2, n) without np.cross (its overhead dominates at this size)
    use_z = np.abs(nz) < 0.9
    # t1 = normalize(n x helper), helper = z if use_z else x
    t1x = np.where(use_z, ny, 0.0)
    t1y = np.where(use_z, -nx, nz)
    t1z = np.where(use_z, 0.0, -ny)
    inv = 1.0 / np.sqrt(t1x**2 + t1y**2 + t1z**2)
    t1x, t1y, t1z = t1x * inv, t1y * inv, t1z * inv
    t2x, t2y, t2z = ny * t1z - nz * t1y, nz * t1x - nx * t1z, nx * t1y - ny * t1x
    out = np.empty((n, 3))
    out[:, 0] = lx * t1x + ly * t2x + lz * nx
    out[:, 1] = lx * t1y + ly * t2y + lz * ny
    out[:, 2] = lx * t1z + ly * t2z + lz * nz
    return out


def trace_rays(rc: RayCaster, planes: Planes, face_absorption: np.ndarray, face_scattering: np.ndarray,
               source, n_rays: int, max_path_m: float, ism_order: int, rng: np.random.Generator,
               air_absorption: bool = True, discovery_order: int = 0) -> RayTrace:
    """Trace ``n_rays`` from ``source`` until each has travelled ``max_path_m``.

    All rays stay in fixed-size arrays (finished rays are masked, not compacted): at
    about a thousand rays, numpy's per-call overhead, not arithmetic, sets the cost.
    """
    S = np.asarray(source, float)
    d = rng.normal(size=(n_rays, 3))
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    pos = np.ascontiguousarray(np.broadcast_to(S.astype(np.float32), (n_rays, 3)))
    e = np.full((n_rays, 7), 1.0 / n_rays)
    travelled = np.zeros(n_rays)
    pure = np.ones(n_rays, bool)
    spec_order = np.zeros(n_rays, np.int64)
    K = discovery_order
    seq = np.full((n_rays, max(K, 1)), -1, np.int64)
    air = AIR_ENERGY_ATTENUATION_PER_M if air_absorption else np.zeros(7)
    normals = rc.scene.face_normals.astype(np.float32)
    keep = 1.0 - face_absorption  # (F, 7)
    embree = rc.embree
    rows = np.arange(n_rays)
    segs: list[tuple] = []
    e_floor = 1e-10 / n_rays
    active = np.ones(n_rays, bool)
    # a ray caught in a sliver between touching solids makes tiny hops forever: cap the
    # bounce count at several times what free paths of ~0.5 m would need
    max_bounces = int(max_path_m / 0.5) + 8
    # Arrays are rebound, never modified in place, so the recorded segments need no
    # copies; finished rays keep being updated (cheaper than masking) but are never
    # recorded again.
    for it in range(max_bounces):
        res = embree.run(pos, d, output=1)
        face = np.asarray(res["primID"], dtype=np.int64)
        hit = face >= 0
        remaining = max_path_m - travelled
        dist = np.minimum(np.where(hit, res["tfar"], np.inf), remaining)
        bounced = active & hit & (dist < remaining)
        include = active & ~(pure & (spec_order <= ism_order))
        segs.append((pos, d, dist, travelled, e, include))
        travelled = travelled + dist
        fb = np.where(hit, face, 0)
        e = e * keep[fb] * np.exp(-np.outer(dist, air))
        n = normals[fb]
        cos_in = np.einsum("ij,ij->i", d, n)
        n = n * np.where(cos_in > 0, -1.0, 1.0).astype(np.float32)[:, None]  # face the incoming ray
        diffuse = bounced & (rng.random(n_rays) < face_scattering[fb])
        new_d = d + (2.0 * np.abs(cos_in))[:, None].astype(np.float32) * n
        if diffuse.any():
            new_d[diffuse] = _lambert(n[diffuse].astype(np.float64), rng)
        pos = np.ascontiguousarray(pos + d * dist.astype(np.float32)[:, None] + n * np.float32(_EPS_M))
        d = np.ascontiguousarray(new_d)
        step = bounced & pure & ~diffuse
        if K:
            rec = step & (spec_order < K)
            seq[rows[rec], spec_order[rec]] = planes.face_plane[fb[rec]]
        spec_order = spec_order + step
        pure = pure & ~(bounced & diffuse)
        active = bounced if it % 4 else bounced & (e.max(axis=1) > e_floor)
        if not active.any():
            break
    origin, direction, length, start, energy, include = (np.concatenate(x) for x in zip(*segs))
    decay = _ensemble_decay(start[np.isfinite(length)], length[np.isfinite(length)],
                            energy[np.isfinite(length)], max_path_m)
    discovered = {}
    for k in range(1, K + 1):
        rows_k = seq[:, :k]
        rows_k = rows_k[(rows_k >= 0).all(axis=1)]
        if len(rows_k):
            discovered[k] = np.unique(rows_k, axis=0)
    return RayTrace(origin[include], direction[include], length[include], start[include], energy[include],
                    decay, float(max_path_m), n_rays, discovered)


def _ensemble_decay(start, length, energy, max_path_m, n_bins: int = 64) -> np.ndarray:
    """Energy decay per metre of the whole ray ensemble (log-linear fit per band)."""
    dx = max_path_m / n_bins
    b0 = np.clip((start / dx).astype(np.int64), 0, n_bins)
    b1 = np.clip(((start + length) / dx).astype(np.int64), 0, n_bins)
    diff = np.stack(
        [np.bincount(b0, energy[:, k], n_bins + 1) - np.bincount(b1, energy[:, k], n_bins + 1) for k in range(7)],
        axis=1,
    )
    total = np.cumsum(diff, axis=0)[:n_bins]
    x = (np.arange(n_bins) + 0.5) * dx
    sel = (x > 0.3 * max_path_m) & (x < 0.95 * max_path_m)
    y = total[sel]  # (n, 7)
    w = (y > 0).astype(float)  # a band whose rays all died early gets no weight there
    logy = np.log(np.where(y > 0, y, 1.0))
    xs = x[sel][:, None]
    sw = w.sum(axis=0)
    mx = (w * xs).sum(axis=0) / np.maximum(sw, 1)
    my = (w * logy).sum(axis=0) / np.maximum(sw, 1)
    cov = (w * (xs - mx) * (logy - my)).sum(axis=0)
    var = (w * (xs - mx) ** 2).sum(axis=0)
    slope = np.where(var > 0, cov / np.where(var > 0, var, 1.0), -1.0)
    # weighted least-squares slope of log energy per band; < 3 points: everything absorbed fast
    return np.where(sw >= 3, np.maximum(-slope, 1e-6), 1.0)


def listener_histogram(trace: RayTrace, listener, radius_m: float, bin_s: float, speed_m_s: float,
                       air_absorption: bool = True) -> np.ndarray:
    """(7, B) energy per time bin at a receiver sphere (B covers the traced length)."""
    L = np.asarray(listener, float)
    w = L - trace.origin
    proj = np.einsum("ij,ij->i", w, trace.direction)
    d2 = np.einsum("ij,ij->i", w, w) - proj**2
    r2 = radius_m**2
    near = d2 < r2
    half = np.sqrt(np.maximum(r2 - d2[near], 0.0))
    a = np.clip(proj[near] - half, 0.0, trace.length[near])
    b = np.clip(proj[near] + half, 0.0, trace.length[near])
    chord = b - a
    mid = 0.5 * (a + b)
    use = chord > 0
    n_bins = int(np.ceil(trace.traced_m / speed_m_s / bin_s)) + 1
    hist = np.zeros((7, n_bins))
    if not use.any():
        return hist
    e = trace.energy[near][use]
    if air_absorption:
        e = e * np.exp(-AIR_ENERGY_ATTENUATION_PER_M * mid[use][:, None])
    vol = 4.0 / 3.0 * np.pi * radius_m**3
    contrib = e * (chord[use] / vol / (4.0 * np.pi))[:, None]
    t = (trace.start_m[near][use] + mid[use]) / speed_m_s
    bins = np.minimum((t / bin_s).astype(np.int64), n_bins - 1)
    for band in range(7):
        hist[band] = np.bincount(bins, weights=contrib[:, band], minlength=n_bins)
    return hist


def box_histogram(trace: RayTrace, box_lo, box_hi, bin_s: float, speed_m_s: float, listener,
                  air_absorption: bool = True) -> np.ndarray:
    """(7, B) energy per time bin for a receiver that is a whole (axis-aligned) room.

    The late field in a room is close to diffuse, i.e. uniform, so averaging the ray
    energy over the listener's room instead of a small sphere around it estimates the
    same energy density with far less variance (every ray crossing the room counts).
    Each contribution is timed as if it then travelled straight from the chord's middle
    to the listener: by the triangle inequality nothing arrives before the direct sound.
    """
    lo = np.asarray(box_lo, float)
    hi = np.asarray(box_hi, float)
    o, d, length = trace.origin, trace.direction, trace.length
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t0 = (lo - o) * inv
        t1 = (hi - o) * inv
    tmin = np.where(np.isnan(t0), -np.inf, np.minimum(t0, t1))
    tmax = np.where(np.isnan(t1), np.inf, np.maximum(t0, t1))
    # a zero direction component: inside the slab for all t iff the origin is inside it
    inside0 = (o >= lo) & (o <= hi)
    tmin = np.where(d == 0, np.where(inside0, -np.inf, np.inf), tmin)
    tmax = np.where(d == 0, np.where(inside0, np.inf, -np.inf), tmax)
    a = np.clip(tmin.max(axis=1), 0.0, length)
    b = np.clip(tmax.min(axis=1), 0.0, length)
    chord = b - a
    use = chord > 0
    n_bins = int(np.ceil(trace.traced_m / speed_m_s / bin_s)) + 1
    hist = np.zeros((7, n_bins))
    if not use.any():
        return hist
    mid = 0.5 * (a + b)[use]
    e = trace.energy[use]
    if air_absorption:
        e = e * np.exp(-AIR_ENERGY_ATTENUATION_PER_M * mid[:, None])
    vol = float(np.prod(hi - lo))
    contrib = e * (chord[use] / vol / (4.0 * np.pi))[:, None]
    to_listener = np.linalg.norm(o[use] + d[use] * mid[:, None] - np.asarray(listener, float), axis=1)
    t = (trace.start_m[use] + mid + to_listener) / speed_m_s
    bins = np.minimum((t / bin_s).astype(np.int64), n_bins - 1)
    for band in range(7):
        hist[band] = np.bincount(bins, weights=contrib[:, band], minlength=n_bins)
    return hist
