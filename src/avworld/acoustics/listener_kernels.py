"""The listener trace's per-bounce bookkeeping, compiled: dropping rays, collecting their energy.

:func:`~avworld.acoustics.listener_trace.listener_direction_energy` casts 256 rays for 16
bounces. Embree takes ~1.2 ms of a trace; the ~40 small numpy operations per bounce around it
(dropping missed and spent rays from seven arrays, the shadow test, the energy of the visible
hits) took about as long again. Here each step is one numba call with the same float32
operations in the same order, so the results are bit-identical to the numpy versions (the
``*_numpy`` functions, the reference the tests compare with, and the fallback without numba).
Constants are passed as float32 scalars: numba would promote ``2 * eps`` or a ``1e-4`` literal to
float64, numpy keeps float32.
"""

from __future__ import annotations

import numpy as np


def keep_hits_numpy(prim, tfar, pos, d, w, travelled, ray):
    """The rays that hit something: ``(f, t, pos, d, w, travelled, ray)`` where ``prim >= 0``."""
    ok = prim >= 0
    return prim[ok], tfar[ok], pos[ok], d[ok], w[ok], travelled[ok], ray[ok]


def visible_energy_numpy(idx, sprim, stfar, ds, eps2, f, w, keep, scat, cos_s, norm, travelled, ray):
    """Of the candidate hits ``idx`` (facing the source), those whose shadow ray (``sprim``, ``stfar``)
    reaches it: ``(e, path, rays)``, energy (k, 7) float32 without air absorption, path length and the
    first ray of each."""
    sel = idx[(sprim < 0) | (stfar >= ds[idx] - eps2)]
    fi = f[sel]
    e = w[sel] * keep[fi] * (scat[fi] * cos_s[sel] / (norm * ds[sel] ** 2))[:, None]
    return e, travelled[sel] + ds[sel], ray[sel]


def survivors_numpy(travelled, w, limit, floor, pos, d, ray):
    """The rays still worth tracing (path below ``limit``, some band's weight above ``floor``):
    ``(pos, d, w, travelled, ray)``."""
    alive = (travelled < limit) & (w.max(axis=1) > floor)
    return pos[alive], d[alive], w[alive], travelled[alive], ray[alive]


def _compile():
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; keep working without it
        return keep_hits_numpy, visible_energy_numpy, survivors_numpy

    @numba.njit(cache=True, nogil=True)
    def compact(mask, pos, d, w, travelled, ray):  # pragma: no cover - jit
        """The rays where ``mask`` holds: ``(pos, d, w, travelled, ray)`` (new arrays)."""
        n = 0
        for i in range(len(mask)):
            n += mask[i]
        p2 = np.empty((n, 3), pos.dtype)
        d2 = np.empty((n, 3), d.dtype)
        w2 = np.empty((n, w.shape[1]), w.dtype)
        tr2 = np.empty(n, travelled.dtype)
        r2 = np.empty(n, ray.dtype)
        k = 0
        for i in range(len(mask)):
            if mask[i]:
                p2[k] = pos[i]
                d2[k] = d[i]
                w2[k] = w[i]
                tr2[k], r2[k] = travelled[i], ray[i]
                k += 1
        return p2, d2, w2, tr2, r2

    @numba.njit(cache=True, nogil=True)
    def keep_hits(prim, tfar, pos, d, w, travelled, ray):  # pragma: no cover - jit
        ok = prim >= 0
        p2, d2, w2, tr2, r2 = compact(ok, pos, d, w, travelled, ray)
        return prim[ok], tfar[ok], p2, d2, w2, tr2, r2

    @numba.njit(cache=True, nogil=True)
    def visible_energy(idx, sprim, stfar, ds, eps2, f, w, keep, scat, cos_s, norm, travelled, ray):  # pragma: no cover
        n = 0
        for j in range(len(idx)):
            n += (sprim[j] < 0) or (stfar[j] >= ds[idx[j]] - eps2)
        bands = w.shape[1]
        e = np.empty((n, bands), np.float32)
        path = np.empty(n, travelled.dtype)
        rays = np.empty(n, ray.dtype)
        k = 0
        for j in range(len(idx)):
            i = idx[j]
            if (sprim[j] < 0) or (stfar[j] >= ds[i] - eps2):
                fi = f[i]
                fac = scat[fi] * cos_s[i] / (norm * (ds[i] * ds[i]))
                for b in range(bands):
                    e[k, b] = w[i, b] * keep[fi, b] * fac
                path[k] = travelled[i] + ds[i]
                rays[k] = ray[i]
                k += 1
        return e, path, rays

    @numba.njit(cache=True, nogil=True)
    def survivors(travelled, w, limit, floor, pos, d, ray):  # pragma: no cover - jit
        # (a NaN weight outside band 0 would keep a ray that numpy's max drops; weights are products of
        # 1 - absorption with absorption checked to lie in [0, 0.999], so none is NaN)
        alive = np.zeros(len(travelled), np.bool_)
        for i in range(len(travelled)):
            top = w[i, 0]
            for b in range(1, w.shape[1]):
                if w[i, b] > top:
                    top = w[i, b]
            alive[i] = travelled[i] < limit and top > floor
        return compact(alive, pos, d, w, travelled, ray)

    return keep_hits, visible_energy, survivors


keep_hits, visible_energy, survivors = _compile()
