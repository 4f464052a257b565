"""Where the reverberant energy comes from *at the listener*: a listener-side trace with diffuse rain.

The source-side ray trace (:mod:`avworld.acoustics.raytrace`) gives the late field's energy per
band and time, averaged over the listener's room; it cannot tell from which direction that
energy reaches the listener's head. This module traces rays *from the listener* instead (as
the SoundSpaces 2 engine does) and, at every surface a ray hits, connects the hit point to
the source with a shadow ray ("next-event estimation", also called diffuse rain): if the
source sees the point, the point re-radiates the share of the source's energy that its
material scatters, and that energy reaches the listener **from the direction the listener's
ray left in**. Energy entering through a doorway therefore arrives from the doorway, the
floor and ceiling send theirs from below and above, and a source in the next room is heard
through the gap it is seen through, at the time its path takes.

Per listener ray ``i`` (solid angle ``4 pi / N``) and hit ``j`` of it, the contribution is

    w_ij = prod_{k<j} (1 - a_k)  x  s_j (1 - a_j) cos(theta_j) / (4 pi^2 N d_j^2)  x  air(l_j + d_j)

(``a`` absorption, ``s`` scattering of the hit faces, ``theta_j`` the angle between the face
normal and the direction to the source, ``d_j`` the distance to the source, ``l_j`` the path
from the listener to the hit), at time ``(l_j + d_j) / c``: the radiance of a Lambertian patch
lit by the source (``s (1 - a) E / pi``, irradiance ``E = cos(theta) / (16 pi^2 d^2)`` for the
source power of the engine's convention, in which the direct sound's energy is ``1 / (4 pi d)^2``)
times the ray's solid angle, i.e. the same units as the source-side tail histogram. Rays continue
specularly or diffusely with the face's scattering probability, as the source-side rays do (an
unbiased estimate of the continued radiance). What the trace does not see (paths whose last
reflection is specular, and paths of more bounces than traced) is the difference to the
source-side histogram, which :func:`segment_fractions` treats as diffuse.

The result is energy per band, direction bin (8 horizontal sectors + vertical, as in
:func:`avworld.acoustics.late_direction.bin_energy`) and time segment after the direct sound.
"""

from __future__ import annotations

import numpy as np

from avworld.acoustics.bands import AIR_ENERGY_ATTENUATION_PER_M
from avworld.acoustics.late_direction import NUM_BINS, direction_bins
from avworld.acoustics.listener_kernels import keep_hits, survivors, visible_energy

#: edges (s after the direct sound) of the time segments over which directions are resolved
SEGMENT_EDGES_S = (0.0, 0.01, 0.025, 0.05, 0.1)
NUM_SEGMENTS = len(SEGMENT_EDGES_S)  # the last one is open: everything after 0.1 s
_EPS_M = 1e-3


def _sphere_directions(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) float32 evenly spread unit vectors (a Fibonacci sphere under a random rotation)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(1.0 - z * z)
    phi = np.pi * (1.0 + 5**0.5) * k
    d = np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return np.ascontiguousarray((d @ q.T).astype(np.float32))


def _bounce_numpy(pos, d, t, f, w, travelled, normal, keep, scat, basis, S, eps, rnd):
    """One bounce of every live ray (numpy version of :func:`_bounce`): the hit point moved ``eps`` off the
    face on the ray's side, the unit direction and distance to the source, the cosine there, the next
    direction (specular, or Lambert with the face's scattering probability: ``rnd`` (N, 3) uniform
    numbers) and the energy kept (1 - absorption)."""
    n = normal[f]
    dn = np.einsum("ij,ij->i", d, n)
    side = -np.sign(dn)[:, None] * n  # the face normal on the side the ray came from
    origin = (pos + d * t[:, None] + side * eps).astype(np.float32)
    u = S - origin
    ds = np.sqrt(np.einsum("ij,ij->i", u, u))
    u /= ds[:, None]
    cos_s = np.einsum("ij,ij->i", u, side)
    r = np.sqrt(rnd[:, 0])
    phi = np.float32(2 * np.pi) * rnd[:, 1]
    lam = np.column_stack([r * np.cos(phi), r * np.sin(phi), -np.sign(dn) * np.sqrt(np.maximum(1.0 - rnd[:, 0], 0.0))])
    diffuse = rnd[:, 2] < scat[f]
    new_d = np.where(diffuse[:, None], np.einsum("ni,nij->nj", lam, basis[f]), d - 2.0 * dn[:, None] * n)
    new_d /= np.linalg.norm(new_d, axis=1, keepdims=True)
    return (origin, np.ascontiguousarray(u, np.float32), ds.astype(np.float32), cos_s.astype(np.float32),
            np.ascontiguousarray(new_d, np.float32), w * keep[f], (travelled + t).astype(np.float32))


def _compile_bounce():
    """:func:`_bounce_numpy` compiled with numba (the same arithmetic per ray, ~3x fewer microseconds per
    bounce than numpy's ~40 small array operations), or the numpy version when numba is missing."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; keep working without it
        return _bounce_numpy

    @numba.njit(cache=True, nogil=True)
    def bounce(pos, d, t, f, w, travelled, normal, keep, scat, basis, S, eps, rnd):  # pragma: no cover - jit
        N = len(f)
        origin = np.empty((N, 3), np.float32)
        u = np.empty((N, 3), np.float32)
        ds = np.empty(N, np.float32)
        cos_s = np.empty(N, np.float32)
        new_d = np.empty((N, 3), np.float32)
        new_w = np.empty_like(w)
        trav = np.empty(N, np.float32)
        for i in range(N):
            fi = f[i]
            dn = d[i, 0] * normal[fi, 0] + d[i, 1] * normal[fi, 1] + d[i, 2] * normal[fi, 2]
            sgn = np.float32(-1.0) if dn > 0 else (np.float32(1.0) if dn < 0 else np.float32(0.0))
            for j in range(3):
                origin[i, j] = pos[i, j] + d[i, j] * t[i] + sgn * normal[fi, j] * eps
            dist2 = np.float32(0.0)
            for j in range(3):
                u[i, j] = S[j] - origin[i, j]
                dist2 += u[i, j] * u[i, j]
            dist = np.sqrt(dist2)
            ds[i] = dist
            c = np.float32(0.0)
            for j in range(3):
                u[i, j] /= dist
                c += u[i, j] * sgn * normal[fi, j]
            cos_s[i] = c
            if rnd[i, 2] < scat[fi]:
                r = np.sqrt(rnd[i, 0])
                ph = np.float32(2 * np.pi) * rnd[i, 1]
                lx, ly, lz = r * np.cos(ph), r * np.sin(ph), sgn * np.sqrt(max(np.float32(1.0) - rnd[i, 0], 0.0))
                for j in range(3):
                    new_d[i, j] = lx * basis[fi, 0, j] + ly * basis[fi, 1, j] + lz * basis[fi, 2, j]
            else:
                for j in range(3):
                    new_d[i, j] = d[i, j] - 2 * dn * normal[fi, j]
            norm = np.sqrt(new_d[i, 0] ** 2 + new_d[i, 1] ** 2 + new_d[i, 2] ** 2)
            for j in range(3):
                new_d[i, j] /= norm
            for b in range(w.shape[1]):
                new_w[i, b] = w[i, b] * keep[fi, b]
            trav[i] = travelled[i] + t[i]
        return origin, u, ds, cos_s, new_d, new_w, trav

    return bounce


_bounce = _compile_bounce()


def listener_direction_energy(tables, rc, source, listener, n_rays: int, max_bounces: int,
                              rng: np.random.Generator, speed_m_s: float, air_absorption: bool = True,
                              max_path_m: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """((NUM_SEGMENTS, 7, 9) scattered energy by time segment, band and direction bin (units of the tail
    histogram: the direct sound has 1 / (4 pi d)^2), (NUM_SEGMENTS,) number of contributions per segment).

    ``tables`` are the engine's :class:`~avworld.acoustics.raytrace.TraceTables`; ``rc`` its ray
    caster. Rays stop after ``max_bounces`` hits or ``max_path_m`` metres.
    """
    S = np.asarray(source, np.float32)
    L = np.asarray(listener, np.float32)
    direct_m = float(np.linalg.norm(S - L))
    edges_m = np.asarray(SEGMENT_EDGES_S) * speed_m_s + direct_m
    limit = np.float32(max_path_m if max_path_m is not None else np.inf)
    embree = rc.embree
    normal, keep, scat = tables.normal, tables.keep, tables.scattering
    basis = tables.basis
    d0 = _sphere_directions(int(n_rays), rng)
    ray = np.arange(len(d0))
    pos = np.repeat(L[None], len(d0), axis=0)
    d = d0.copy()
    w = np.ones((len(d0), 7), np.float32)
    travelled = np.zeros(len(d0), np.float32)
    times, energies, first = [], [], []
    eps = np.float32(_EPS_M)
    air = AIR_ENERGY_ATTENUATION_PER_M.astype(np.float32)
    norm = np.float32(4.0 * np.pi**2 * len(d0))  # the Lambert 1 / pi, the ray's solid angle, the source power
    eps2, floor = np.float32(2) * eps, np.float32(1e-4)
    for _ in range(int(max_bounces)):
        res = embree.run(pos, d, output=1)
        f, t, pos, d, w, travelled, ray = keep_hits(res["primID"], res["tfar"], pos, d, w, travelled, ray)
        if len(f) == 0:
            break
        rnd = rng.random((len(f), 3), dtype=np.float32)
        origin, u, ds, cos_s, new_d, new_w, travelled = _bounce(pos, d, t, f, w, travelled, normal, keep, scat,
                                                                 basis, S, eps, rnd)
        idx = np.flatnonzero(cos_s > 0)
        if len(idx):
            shadow = embree.run(origin[idx], u[idx], output=1)
            e, path, rays = visible_energy(idx, shadow["primID"], shadow["tfar"], ds, eps2, f, w, keep, scat, cos_s,
                                           norm, travelled, ray)
            if len(path):
                times.append(path)
                energies.append(e)
                first.append(rays)
        pos, d, w, travelled, ray = survivors(travelled, new_w, limit, floor, origin, new_d, ray)
        if len(ray) == 0:
            break
    out = np.zeros((NUM_SEGMENTS, 7, NUM_BINS))
    if not times:
        return out, np.zeros(NUM_SEGMENTS, np.int64)
    path = np.concatenate(times)
    e = np.concatenate(energies)
    if air_absorption:
        e *= np.exp(-air * path[:, None])
    e = e.astype(np.float64)
    rays = np.concatenate(first)
    seg = np.clip(np.searchsorted(edges_m, path, side="right") - 1, 0, NUM_SEGMENTS - 1)
    sector, horiz = direction_bins(d0[rays])
    for b in range(7):
        out[:, b, : NUM_BINS - 1] = np.bincount(seg * (NUM_BINS - 1) + sector, e[:, b] * horiz,
                                                NUM_SEGMENTS * (NUM_BINS - 1)).reshape(NUM_SEGMENTS, -1)
        out[:, b, NUM_BINS - 1] = np.bincount(seg, e[:, b] * (1.0 - horiz), NUM_SEGMENTS)
    return out, np.bincount(seg, minlength=NUM_SEGMENTS)


#: the smallest coverage taken from a trace (a larger share of specular last reflections than this
#: is not believed: the found energy is scaled by at most 1 / KAPPA_MIN)
KAPPA_MIN = 0.05


def segment_energy(tail: np.ndarray, bin_s: float, direct_s: float) -> np.ndarray:
    """(NUM_SEGMENTS, 7) energy of a tail histogram (7, B) per time segment after the direct sound."""
    t = (np.arange(tail.shape[1]) + 0.5) * bin_s - direct_s
    seg = np.searchsorted(np.asarray(SEGMENT_EDGES_S), t, side="right") - 1  # -1: before the direct sound
    out = np.zeros((NUM_SEGMENTS, tail.shape[0]))
    ok = seg >= 0
    np.add.at(out, seg[ok], tail[:, ok].T)
    return out


def segment_fractions(energy: np.ndarray, total: np.ndarray) -> np.ndarray:
    """(NUM_SEGMENTS, 7, 9) float32 fractions per segment and band (rows sum to 1).

    ``energy`` (S, 7, 9) is what the listener trace found, ``total`` (S, 7) the tail's energy in the
    same segments (:func:`segment_energy`). Two things escape the trace: paths whose last reflection
    is specular (diffuse rain needs a scattering last hit), and paths of more bounces than traced.
    The first is a share of every segment: its coverage ``kappa`` per band (about the walls' mean
    scattering coefficient: diffuse rain sees only the scattered share of each reflection) is
    measured over segments 1-2 (10-50 ms after the direct sound, where the bounce limit does not
    bite yet; segment 0 is left out because the tail histogram is the room box's average, which
    near the direct sound differs from the point's first scattered reflections by more than the
    coverage itself: found / total read 1.2-1.5 there against ~0.1-0.3 later), and the found
    energy is scaled by ``1 / kappa`` with its directions kept (specular paths come from the same
    walls). What is still missing, ``total - found / kappa``, is taken to be diffuse, isotropic.
    So a late segment the trace barely reaches stays close to isotropic instead of taking the
    random direction of a few contributions, and the segments it covers keep their directions.
    """
    from avworld.acoustics.late_direction import ISOTROPIC

    found = energy.sum(axis=2)  # (S, 7)
    early_found, early_total = found[1:3].sum(axis=0), total[1:3].sum(axis=0)
    kappa = np.clip(early_found / np.where(early_total > 0, early_total, 1.0), KAPPA_MIN, 1.0)
    kappa = np.where(early_found > 0, kappa, 1.0)
    scaled = energy / kappa[None, :, None]
    rest = np.maximum(total - scaled.sum(axis=2), 0.0)
    whole = scaled.sum(axis=2) + rest
    frac = (scaled + rest[:, :, None] * ISOTROPIC) / np.where(whole > 0, whole, 1.0)[:, :, None]
    frac[whole <= 0] = ISOTROPIC
    return frac.astype(np.float32)
