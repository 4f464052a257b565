"""One bounce of the source-side ray trace (:func:`avworld.acoustics.raytrace.trace_rays`).

Per ray: the hit point (moved a small distance off the face, on the side the ray came from) and the
next direction (specular, or a Lambert direction with the face's scattering probability). numpy
needs ~15 small array operations per bounce, ~0.1 ms for 500 rays, more than Embree's query; the
numba kernel does the same arithmetic in one pass over the rays (float32, the same operations in
the same order, so both versions give the same bytes up to the last bit of a sum's rounding).
"""

from __future__ import annotations

import numpy as np


def step_numpy(pos, d, t, f, back, basis, scat, lam, u_scat, eps):
    """``(new_pos, new_dir, diffuse)`` after the hits ``f`` (face per ray, -1 = the tables' last row) at
    distances ``t``. ``back`` (F + 1, 3) is minus the face normals, ``basis`` (F + 1, 3, 3) the face
    frames, ``scat`` (F + 1,) the scattering probabilities, ``lam`` (N, 3) Lambert directions in the face
    frame around +z (their z sign is set here) and ``u_scat`` (N,) uniform numbers."""
    m = back.take(f, axis=0)
    c = np.einsum("ij,ij->i", d, m)  # > 0 when the ray hits the face's front
    lam = lam.copy()
    np.copysign(lam[:, 2], c, out=lam[:, 2])  # Lambert lobe on the side the ray came from
    diffuse = u_scat < scat.take(f)
    spec = (c + c)[:, None] * m
    np.subtract(d, spec, out=spec)  # specular: d - 2 (d . n) n
    new_d = np.where(diffuse[:, None], np.einsum("ni,nij->nj", lam, basis.take(f, axis=0)), spec)
    new_pos = d * t[:, None]
    new_pos += pos
    new_pos -= m * np.copysign(eps, c)[:, None]  # the hit point, moved eps off the face toward the ray
    return new_pos, new_d.astype(np.float32, copy=False), diffuse


def _compile():
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; keep working without it
        return step_numpy

    @numba.njit(cache=True, nogil=True)
    def step(pos, d, t, f, back, basis, scat, lam, u_scat, eps):  # pragma: no cover - jit
        N = len(f)
        new_pos = np.empty((N, 3), np.float32)
        new_d = np.empty((N, 3), np.float32)
        diffuse = np.empty(N, np.bool_)
        for i in range(N):
            fi = f[i]
            c = d[i, 0] * back[fi, 0] + d[i, 1] * back[fi, 1] + d[i, 2] * back[fi, 2]
            off = np.float32(-eps) if (c < 0 or (c == 0 and np.signbit(c))) else np.float32(eps)
            for j in range(3):
                new_pos[i, j] = (pos[i, j] + d[i, j] * t[i]) - back[fi, j] * off
            is_d = u_scat[i] < scat[fi]
            diffuse[i] = is_d
            if is_d:
                lz = abs(lam[i, 2])
                if c < 0 or (c == 0 and np.signbit(c)):
                    lz = -lz
                for j in range(3):
                    new_d[i, j] = lam[i, 0] * basis[fi, 0, j] + lam[i, 1] * basis[fi, 1, j] + lz * basis[fi, 2, j]
            else:
                for j in range(3):
                    new_d[i, j] = d[i, j] - (c + c) * back[fi, j]
        return new_pos, new_d, diffuse

    return step


#: the bounce used by the trace: numba when available, else :func:`step_numpy`
step = _compile()
