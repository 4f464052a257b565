"""The directional tail's one-pass kernel gives the same bytes as the three numpy passes it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics import tail_kernel
from avworld.acoustics.tail_kernel import amplitude_times_noise, amplitude_times_noise_numpy


def _case(rng, d, m, k, j0, j1):
    h = (m + 1) // 2
    bank = rng.standard_normal((7, 9, 2, 4096)).astype(np.float32)
    gp = (rng.random((7 * d * 2, k + 1)) * 0.1).astype(np.float32)
    frac_t = ((np.arange(m) + (h - 0.5 * m)) / m).astype(np.float32)
    return bank, gp, h, frac_t


@pytest.mark.parametrize("d,m,k,j0,j1", [(9, 64, 40, -1, 40), (9, 64, 40, -1, 12), (5, 64, 40, 11, 40),
                                         (5, 7, 30, 0, 30), (9, 2, 10, 3, 4)])
def test_kernel_is_bit_identical_to_numpy(d, m, k, j0, j1):
    rng = np.random.default_rng(d * 1000 + m + j0)
    bank, gp, h, frac_t = _case(rng, d, m, k, j0, j1)
    ref = amplitude_times_noise_numpy(bank, 17, gp, h, m, frac_t, j0, j1, d)
    got = amplitude_times_noise(bank, 17, gp, h, m, frac_t, j0, j1, d)
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert got.tobytes() == ref.tobytes()
    # and the reference is what the docstring says: sample q of block jb, the ramp from the block's value
    # to the next one's, times the noise row
    start = 0 if j0 < 0 else h + j0 * m
    jb, q = max(j0, 0), min(3, m - 1)
    col = h + jb * m + q - start
    r = (2 * d + 1) * 2 + 1  # band 2, direction 1, Hilbert row
    want = (gp[r, jb] + (gp[r, jb + 1] - gp[r, jb]) * frac_t[q]) * bank[2, 1, 1, 17 + start + col]
    assert ref[r, col] == pytest.approx(want, rel=1e-6)
    if j0 < 0:  # the h samples before the first block keep block 0's value
        assert ref[r, 0] == pytest.approx(gp[r, 0] * bank[2, 1, 1, 17], rel=1e-6)


def test_numba_kernel_is_used():
    assert tail_kernel._kernel is not None  # numba is a dependency; without it the numpy path runs
