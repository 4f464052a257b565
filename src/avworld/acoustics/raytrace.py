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

Cost. With a few hundred rays per bounce, numpy's per-call overhead, not arithmetic,
sets the price of a trace, so the bounce loop does only what the next Embree call
needs (hit point, new direction: about twenty array operations) and records the hit
faces, distances and reflection kinds. Everything else (energies per band as a
cumulative product of the faces' reflection factors, air absorption, the hybrid
split, the discovered plane sequences) is computed once afterwards over the whole
(bounces x rays) history. Per-scene tables (normals, tangent frames, reflection and
scattering per face, with a trailing row for "no hit") live in :class:`TraceTables`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from avworld.acoustics import ray_step
from avworld.acoustics.bands import AIR_ENERGY_ATTENUATION_PER_M
from avworld.acoustics.surfaces import Planes
from avworld.geometry.raycast import RayCaster

_EPS_M = 1e-4
#: distances of rays that hit nothing are clamped to this (they leave the scene for good)
_ESCAPE_M = 1e4
#: random numbers are drawn for this many bounces at a time
_RNG_BLOCK = 8


@dataclass
class RayTrace:
    """Listener-independent result of tracing rays from one source."""

    origin: np.ndarray  # (M, 3) float32 segment starts
    direction: np.ndarray  # (M, 3) float32
    length: np.ndarray  # (M,) float32
    start_m: np.ndarray  # (M,) float32 path length travelled at the segment start
    energy: np.ndarray  # (M, 7) float32 energy at the segment start
    decay_per_m: np.ndarray  # (7,) ensemble energy decay rate (1/m)
    traced_m: float
    n_rays: int
    discovered: dict[int, np.ndarray] = field(default_factory=dict)
    #: per receiver box: the chords of the segments crossing it (see :func:`box_histogram`)
    _boxes: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.origin, self.direction, self.length, self.start_m, self.energy))


@dataclass(frozen=True)
class TraceTables:
    """Per-scene face tables for :func:`trace_rays`; row -1 (the last) stands for "no hit"."""

    normal: np.ndarray  # (F + 1, 3) float32 unit face normals
    basis: np.ndarray  # (F + 1, 3, 3) float32 rows: tangent 1, tangent 2, normal
    keep: np.ndarray  # (F + 1, 7) float32 energy kept per reflection, 1 - absorption (0: no hit)
    scattering: np.ndarray  # (F + 1,) float32 probability of a diffuse reflection
    face_plane: np.ndarray  # (F + 1,) int64 plane of each face (-1: none)

    @classmethod
    def build(cls, rc: RayCaster, planes: Planes, face_absorption: np.ndarray,
              face_scattering: np.ndarray) -> TraceTables:
        n = rc.scene.face_normals.astype(np.float64)
        # orthonormal tangents: t1 = normalize(n x helper), helper = z unless n is close to z
        helper = np.where((np.abs(n[:, 2]) < 0.9)[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
        t1 = np.cross(n, helper)
        t1 /= np.maximum(np.linalg.norm(t1, axis=1, keepdims=True), 1e-12)
        t2 = np.cross(n, t1)
        basis = np.stack([t1, t2, n], axis=1)
        miss_basis = np.eye(3)[None]

        def pad(a, row):
            return np.ascontiguousarray(np.concatenate([a, row]))

        return cls(
            normal=pad(n, [[0.0, 0.0, 1.0]]).astype(np.float32),
            basis=pad(basis, miss_basis).astype(np.float32),
            keep=pad(1.0 - np.asarray(face_absorption, float), np.zeros((1, 7))).astype(np.float32),
            scattering=pad(np.asarray(face_scattering, float), [0.0]).astype(np.float32),
            face_plane=pad(np.asarray(planes.face_plane, np.int64), [-1]),
        )


def _lambert_local(u: np.ndarray) -> np.ndarray:
    """Cosine-weighted unit directions around +z from uniform numbers ``u`` (..., 2) -> (..., 3)."""
    r = np.sqrt(u[..., 0])
    phi = np.float32(2 * np.pi) * u[..., 1]
    out = np.empty(u.shape[:-1] + (3,), np.float32)
    out[..., 0] = r * np.cos(phi)
    out[..., 1] = r * np.sin(phi)
    out[..., 2] = np.sqrt(np.maximum(np.float32(1.0) - u[..., 0], 0.0))
    return out


def trace_rays(rc: RayCaster, planes: Planes, face_absorption: np.ndarray, face_scattering: np.ndarray,
               source, n_rays: int, max_path_m: float, ism_order: int, rng: np.random.Generator,
               air_absorption: bool = True, discovery_order: int = 0,
               tables: TraceTables | None = None) -> RayTrace:
    """Trace ``n_rays`` from ``source`` until each has travelled ``max_path_m``.

    ``tables`` (per scene, see :class:`TraceTables`) are built on the fly when not given.
    """
    if tables is None:
        tables = TraceTables.build(rc, planes, face_absorption, face_scattering)
    S = np.asarray(source, float)
    N = int(n_rays)
    d = rng.normal(size=(N, 3))
    d = (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
    pos = np.empty((N, 3), np.float32)
    pos[:] = S
    back, basis, scat = -tables.normal, tables.basis, tables.scattering
    embree = rc.embree
    travelled = np.zeros(N, np.float32)
    max_path = np.float32(max_path_m)
    eps = np.float32(_EPS_M)
    # a ray caught in a sliver between touching solids makes tiny hops forever: cap the
    # bounce count at several times what free paths of ~0.5 m would need, and stop as soon
    # as all but a few (<= 0.5 %) rays have gone the whole way (those stragglers' remaining
    # energy, a fraction of a percent of the late ensemble, is dropped)
    max_bounces = int(max_path_m / 0.5) + 8
    stragglers = N // 200
    origins, dirs, faces, dists, diffuse, starts = [], [], [], [], [], []
    # Arrays are rebound, never modified in place, so the recorded history needs no copies.
    for it in range(max_bounces):
        j = it % _RNG_BLOCK
        if j == 0:
            u = rng.random((_RNG_BLOCK, N, 3), dtype=np.float32)
            local = _lambert_local(u[..., :2])  # (B, N, 3) diffuse directions in the face frame
            u_scat = u[..., 2]
        res = embree.run(pos, d, output=1)
        f = res["primID"]  # (N,) int32, -1 = no hit (indexes the tables' last row)
        t = res["tfar"]  # (N,) float32
        np.minimum(t, np.float32(_ESCAPE_M), out=t)
        origins.append(pos)
        dirs.append(d)
        faces.append(f)
        dists.append(t)
        starts.append(travelled)
        pos, d, hit_diffuse = ray_step.step(pos, d, t, f, back, basis, scat, local[j], u_scat[j], eps)
        diffuse.append(hit_diffuse)
        travelled = travelled + t
        if np.count_nonzero(travelled < max_path) <= stragglers:
            break
    return _finish(tables, np.stack(origins), np.stack(dirs), np.stack(faces), np.stack(dists), np.stack(starts),
                   np.stack(diffuse), N, float(max_path_m), ism_order, air_absorption, discovery_order)


def _finish(tables: TraceTables, origins, dirs, faces, dists, start, diffuse, n_rays: int, max_path_m: float,
            ism_order: int, air_absorption: bool, discovery_order: int) -> RayTrace:
    """Turn the (T bounces, N rays) history into the segments a listener needs."""
    T, N = faces.shape
    # A segment exists while the ray is in the scene and within the traced length: a ray that
    # left the scene travelled _ESCAPE_M > max_path_m, so its later segments get length <= 0.
    length = np.minimum(dists, np.float32(max_path_m) - start)
    valid = length > 0
    # energy at a segment's start: 1/N times the product of the reflection factors of earlier hits
    energy = np.empty((T, N, 7), np.float32)
    energy[0] = 1.0 / n_rays
    keep = tables.keep
    for k in range(T - 1):  # (a python loop over bounces beats np.cumprod along axis 0 by far)
        np.multiply(energy[k], np.take(keep, faces[k], axis=0), out=energy[k + 1])
    if air_absorption:
        energy *= np.exp(-start[..., None] * AIR_ENERGY_ATTENUATION_PER_M.astype(np.float32))
    # hybrid split: skip segments whose history is purely specular of order <= ism_order
    include = valid.copy()
    pure = np.ones(N, bool)
    for k in range(min(ism_order + 1, T)):
        include[k] &= ~pure
        pure = pure & ~diffuse[k]
    decay = _ensemble_decay(start, length, energy, valid, max_path_m)
    discovered = {}
    K = min(discovery_order, T)
    if K:
        # planes of the first k reflections of rays whose first k reflections were all specular
        plane = tables.face_plane[faces[:K]].T  # (N, K)
        spec = ((faces[:K] >= 0) & ~diffuse[:K]).T
        ok = np.logical_and.accumulate(spec & (plane >= 0), axis=1)
        for j in range(1, K + 1):
            rows = plane[ok[:, j - 1], :j]
            if len(rows):
                discovered[j] = np.unique(rows, axis=0)
    idx = np.flatnonzero(include.reshape(-1))

    def take(a):
        return np.take(a.reshape(T * N, *a.shape[2:]), idx, axis=0)

    return RayTrace(take(origins), take(dirs), take(length), take(start), take(energy), decay, max_path_m, n_rays,
                    discovered)


def _ensemble_decay(start, length, energy, valid, max_path_m, n_points: int = 14) -> np.ndarray:
    """Energy decay per metre of the whole ray ensemble (log-linear fit per band).

    ``start``, ``length`` (T, N), ``energy`` (T, N, 7) and ``valid`` (T, N) are the
    bounce-by-ray history. A ray's energy is piecewise constant along its path, so the
    ensemble energy at path x is the sum over rays of the energy of the segment each ray
    is in at x: it is evaluated at ``n_points`` path lengths spread over 30-95 % of the
    traced length and fitted with a line in log energy.
    """
    T, N = valid.shape
    x, xs, sxx = _decay_points(n_points, max_path_m)
    # each ray's segment at x: the number of its segment starts at or before x, minus one
    seg = (start[None, :, :] <= x.astype(np.float32)[:, None, None]).sum(axis=1)  # (n, N)
    seg -= 1
    flat = seg * N + np.arange(N)  # (n, N) index into the (T * N) history
    end = start.take(flat) + length.take(flat)
    inside = valid.take(flat) & (end > x[:, None])  # the ray is still in the scene (and not past its path)
    y = np.einsum("nr,nrb->nb", inside.astype(np.float32),
                  energy.reshape(T * N, 7).take(flat.reshape(-1), axis=0).reshape(n_points, N, 7)).astype(np.float64)
    if y.min() > 1e-30:  # the usual case: an ordinary least-squares slope per band
        return np.maximum(-(xs @ np.log(y)) / sxx, 1e-6)
    w = (y > 1e-30).astype(float)  # a band whose rays all died early gets no weight there
    logy = np.log(np.where(w > 0, y, 1.0))
    xs = x[:, None]
    sw = w.sum(axis=0)
    mx = (w * xs).sum(axis=0) / np.maximum(sw, 1)
    my = (w * logy).sum(axis=0) / np.maximum(sw, 1)
    cov = (w * (xs - mx) * (logy - my)).sum(axis=0)
    var = (w * (xs - mx) ** 2).sum(axis=0)
    slope = np.where(var > 0, cov / np.where(var > 0, var, 1.0), -1.0)
    # weighted least-squares slope of log energy per band; < 3 points: everything absorbed fast
    return np.where(sw >= 3, np.maximum(-slope, 1e-6), 1.0)


@lru_cache(maxsize=64)
def _decay_points(n_points: int, max_path_m: float):
    """Path lengths where the ensemble energy is sampled, centred copies and their sum of squares."""
    x = (0.3 + (0.65 / (n_points - 1)) * np.arange(n_points)) * max_path_m
    xs = x - x.mean()
    return x, xs, float(xs @ xs)


def _bincount_bands(bins: np.ndarray, weights: np.ndarray, n_bins: int) -> np.ndarray:
    """(B, n_bins) float64 sums of ``weights`` (M, B) per bin index ``bins`` (M,) in one bincount."""
    M, B = weights.shape
    if M == 0:
        return np.zeros((B, n_bins))
    idx = bins[:, None] + np.arange(0, B * n_bins, n_bins)[None, :]  # (M, B)
    return np.bincount(idx.ravel(), weights.ravel(), B * n_bins).reshape(B, n_bins)


def _n_time_bins(trace: RayTrace, bin_s: float, speed_m_s: float) -> int:
    return int(np.ceil(trace.traced_m / speed_m_s / bin_s)) + 1


def sphere_chords(trace: RayTrace, listener, radius_m: float, air_absorption: bool = True):
    """Segments crossing a receiver sphere: (path length at the chord's middle (m,), energy density
    contribution (m, 7), direction the sound arrives from (m, 3))."""
    L = np.asarray(listener, np.float32)
    w = L - trace.origin
    proj = np.einsum("ij,ij->i", w, trace.direction)
    d2 = np.einsum("ij,ij->i", w, w) - proj * proj
    r2 = np.float32(radius_m**2)
    near = np.flatnonzero(d2 < r2)
    half = np.sqrt(np.maximum(r2 - d2[near], 0.0))
    length = trace.length[near]
    a = np.clip(proj[near] - half, 0.0, length)
    b = np.clip(proj[near] + half, 0.0, length)
    chord = b - a
    use = chord > 0
    near, chord = near[use], chord[use]
    mid = 0.5 * (a + b)[use]
    e = trace.energy[near]
    if air_absorption:
        e = e * np.exp(-AIR_ENERGY_ATTENUATION_PER_M.astype(np.float32) * mid[:, None])
    vol = 4.0 / 3.0 * np.pi * radius_m**3
    contrib = e * (chord * np.float32(1.0 / vol / (4.0 * np.pi)))[:, None]
    return trace.start_m[near] + mid, contrib, -trace.direction[near]


def listener_histogram(trace: RayTrace, listener, radius_m: float, bin_s: float, speed_m_s: float,
                       air_absorption: bool = True) -> np.ndarray:
    """(7, B) energy per time bin at a receiver sphere (B covers the traced length)."""
    path_m, contrib, _ = sphere_chords(trace, listener, radius_m, air_absorption)
    n_bins = _n_time_bins(trace, bin_s, speed_m_s)
    if len(path_m) == 0:
        return np.zeros((7, n_bins))
    t = path_m * np.float32(1.0 / (speed_m_s * bin_s))
    bins = np.minimum(t.astype(np.int64), n_bins - 1)
    return _bincount_bands(bins, contrib, n_bins)


def box_chords(trace: RayTrace, lo: np.ndarray, hi: np.ndarray, air_absorption: bool):
    """Segments crossing the box: (chord midpoints (m, 3), path length at the midpoint (m,),
    energy deposited (m, 7), direction the sound arrives from (m, 3), i.e. minus the segment's);
    listener-independent, cached on the trace per box."""
    key = (tuple(lo.tolist()), tuple(hi.tolist()), air_absorption)
    hit = trace._boxes.get(key)
    if hit is not None:
        return hit
    o, d, length = trace.origin, trace.direction, trace.length
    lo32, hi32 = lo.astype(np.float32), hi.astype(np.float32)
    # slab test; a zero direction component gives +-inf (origin inside / outside that slab) or,
    # exactly on the slab's boundary, nan, which fmin / fmax ignore
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(1.0) / d
        t0 = (lo32 - o) * inv
        t1 = (hi32 - o) * inv
    near, far = np.fmin(t0, t1), np.fmax(t0, t1)
    # (reductions over an axis of length 3 are slow in numpy; elementwise maxima are not)
    a = np.fmax(np.fmax(near[:, 0], near[:, 1]), near[:, 2])
    b = np.fmin(np.fmin(far[:, 0], far[:, 1]), far[:, 2])
    np.maximum(a, 0.0, out=a)
    np.minimum(b, length, out=b)
    chord = b - a
    use = np.flatnonzero(chord > 0)
    mid = np.take(a + b, use)
    mid *= np.float32(0.5)
    e = np.take(trace.energy, use, axis=0)
    if air_absorption:
        e *= np.exp(-AIR_ENERGY_ATTENUATION_PER_M.astype(np.float32) * mid[:, None])
    vol = float(np.prod(hi - lo))
    e *= (np.take(chord, use) * np.float32(1.0 / vol / (4.0 * np.pi)))[:, None]
    arrive = -np.take(d, use, axis=0)
    points = np.take(o, use, axis=0)
    points -= arrive * mid[:, None]
    out = (points, np.take(trace.start_m, use) + mid, e, arrive)
    if len(trace._boxes) >= 16:
        trace._boxes.pop(next(iter(trace._boxes)))
    trace._boxes[key] = out
    return out


def box_histogram(trace: RayTrace, box_lo, box_hi, bin_s: float, speed_m_s: float, listener,
                  air_absorption: bool = True) -> np.ndarray:
    """(7, B) energy per time bin for a receiver that is a whole (axis-aligned) room.

    The late field in a room is close to diffuse, i.e. uniform, so averaging the ray
    energy over the listener's room instead of a small sphere around it estimates the
    same energy density with far less variance (every ray crossing the room counts).
    Each contribution is timed as if it then travelled straight from the chord's middle
    to the listener: by the triangle inequality nothing arrives before the direct sound.
    The chords depend on the room only and are cached on the trace, so another listener
    in the same room costs one distance and one histogram.
    """
    points, path_m, contrib, _ = box_chords(trace, np.asarray(box_lo, float), np.asarray(box_hi, float),
                                            air_absorption)
    n_bins = _n_time_bins(trace, bin_s, speed_m_s)
    if len(path_m) == 0:
        return np.zeros((7, n_bins))
    w = points - np.asarray(listener, np.float32)
    to_listener = np.sqrt(np.einsum("ij,ij->i", w, w))
    t = (path_m + to_listener) * np.float32(1.0 / (speed_m_s * bin_s))
    bins = np.minimum(t.astype(np.int64), n_bins - 1)
    return _bincount_bands(bins, contrib, n_bins)
