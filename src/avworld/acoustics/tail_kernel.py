"""The directional tail's inner loop: noise rows times their piecewise-linear amplitudes.

``x[r, s] = (gp[r, j] + (gp[r, j + 1] - gp[r, j]) * frac_t[s - start_j]) * bank[row r, offset + s]``
for the samples ``s`` of block ``j`` (:func:`avworld.acoustics.late_field._shape` documents
the blocks). numpy needs three passes over a (126, ~24,000) array for it (amplitude ramp,
offset, noise), about 1.2 ms per call and 10-15 % of a random-action env step; numba does it in
one pass with the same float32 operations in the same order, so the result is bit-identical
(tested against :func:`amplitude_times_noise_numpy`).
"""

from __future__ import annotations

import numpy as np


def amplitude_times_noise_numpy(bank, offset, gp, h, m, frac_t, j0, j1, d):
    """(7 x d x 2, width) float32: the reference (numpy) version of :func:`amplitude_times_noise`."""
    start = 0 if j0 < 0 else h + j0 * m
    stop = h + j1 * m
    width = stop - start
    n_in = gp.shape[0]
    x = np.empty((n_in, width), np.float32)
    lo = max(j0, 0)
    body_at = 0
    if j0 < 0:
        x[:, :h] = gp[:, :1]
        body_at = h
    body = x[:, body_at:].reshape(n_in, j1 - lo, m)
    np.multiply((gp[:, lo + 1 : j1 + 1] - gp[:, lo:j1])[:, :, None], frac_t, out=body)
    body += gp[:, lo:j1, None]
    # multiplied as (7, D, 2, width): with D < 9 directions the bank's rows do not merge into one axis,
    # and a reshape would copy them
    x.reshape(7, d, 2, width)[...] *= bank[:, :d, :, offset + start : offset + stop]
    return x


def _compile():
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; keep working without it
        return None

    @numba.njit(cache=True, nogil=True)
    def kernel(bank, offset, gp, h, m, frac_t, j0, j1, d):  # pragma: no cover - jit
        start = 0 if j0 < 0 else h + j0 * m
        stop = h + j1 * m
        width = stop - start
        x = np.empty((7 * d * 2, width), np.float32)
        lo = max(j0, 0)
        for b in range(7):
            for di in range(d):
                for c in range(2):
                    xr = x[(b * d + di) * 2 + c]
                    gr = gp[(b * d + di) * 2 + c]
                    noise = bank[b, di, c, offset + start : offset + stop]
                    at = 0
                    if j0 < 0:
                        g0 = gr[0]
                        for q in range(h):
                            xr[q] = g0 * noise[q]
                        at = h
                    for j in range(lo, j1):
                        g = gr[j]
                        step = gr[j + 1] - g
                        xb = xr[at : at + m]
                        nb = noise[at : at + m]
                        for q in range(m):
                            xb[q] = (step * frac_t[q] + g) * nb[q]
                        at += m
        return x

    return kernel


_kernel = _compile()


def amplitude_times_noise(bank, offset: int, gp, h: int, m: int, frac_t, j0: int, j1: int, d: int) -> np.ndarray:
    """(7 x d x 2, width) float32 noise rows times their amplitudes over blocks ``j0 .. j1 - 1``.

    ``bank`` (7, >= d, 2, L) float32 noise; ``gp`` (7 x d x 2, k + 1) float32 amplitudes at the
    block starts; ``frac_t`` (m,) float32 position within a block; block -1 is the ``h`` samples
    before the first block (amplitude ``gp[:, 0]``)."""
    if _kernel is None or bank.dtype != np.float32 or gp.dtype != np.float32 or frac_t.dtype != np.float32:
        return amplitude_times_noise_numpy(bank, offset, gp, h, m, frac_t, j0, j1, d)
    return _kernel(bank, int(offset), np.ascontiguousarray(gp), int(h), int(m), frac_t, int(j0), int(j1), int(d))
