"""The listener trace's compiled bookkeeping equals its numpy reference bit for bit."""

import numpy as np
import pytest

from avworld.acoustics import listener_kernels as lk


def test_the_kernels_are_compiled():
    pytest.importorskip("numba")
    assert lk.keep_hits is not lk.keep_hits_numpy and lk.survivors is not lk.survivors_numpy
    assert lk.visible_energy is not lk.visible_energy_numpy


def _rays(n, rng):
    pos = rng.normal(size=(n, 3)).astype(np.float32)
    d = rng.normal(size=(n, 3)).astype(np.float32)
    w = rng.random((n, 7), dtype=np.float32)
    travelled = (rng.random(n, dtype=np.float32) * 40).astype(np.float32)
    return pos, d, w, travelled, rng.permutation(n).astype(np.int64)


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("hit_share", [0.0, 0.6, 1.0])
def test_keep_hits_matches_numpy(hit_share):
    rng = np.random.default_rng(1)
    pos, d, w, travelled, ray = _rays(300, rng)
    prim = np.where(rng.random(300) < hit_share, rng.integers(0, 50, 300), -1).astype(np.int32)
    tfar = rng.random(300, dtype=np.float32)
    _same(lk.keep_hits(prim, tfar, pos, d, w, travelled, ray),
          lk.keep_hits_numpy(prim, tfar, pos, d, w, travelled, ray))


def test_visible_energy_matches_numpy_including_the_shadow_boundary():
    rng = np.random.default_rng(2)
    n, faces = 256, 40
    _, _, w, travelled, ray = _rays(n, rng)
    f = rng.integers(0, faces, n).astype(np.int32)
    keep = rng.random((faces, 7), dtype=np.float32)
    scat = rng.random(faces, dtype=np.float32)
    cos_s = (rng.random(n, dtype=np.float32) * 2 - 1).astype(np.float32)
    ds = (rng.random(n, dtype=np.float32) * 9 + 0.1).astype(np.float32)
    idx = np.flatnonzero(cos_s > 0)
    eps2 = np.float32(2) * np.float32(1e-3)
    sprim = np.where(rng.random(len(idx)) < 0.5, -1, 3).astype(np.int32)
    stfar = (ds[idx] - eps2 + rng.choice([-1e-3, 0.0, 1e-3], len(idx)).astype(np.float32)).astype(np.float32)
    norm = np.float32(4.0 * np.pi**2 * n)
    got = lk.visible_energy(idx, sprim, stfar, ds, eps2, f, w, keep, scat, cos_s, norm, travelled, ray)
    want = lk.visible_energy_numpy(idx, sprim, stfar, ds, eps2, f, w, keep, scat, cos_s, norm, travelled, ray)
    _same(got, want)
    assert 0 < len(got[1]) < len(idx)  # some shadowed, some not, exact ties included


def test_survivors_matches_numpy_at_the_weight_floor_and_the_path_limit():
    rng = np.random.default_rng(3)
    pos, d, w, travelled, ray = _rays(200, rng)
    floor, limit = np.float32(1e-4), np.float32(20.0)
    w[::5] *= np.float32(1e-4)  # many rays below the floor
    w[1::7, 3] = floor  # ties: not above it
    travelled[2::9] = limit
    got = lk.survivors(travelled, w, limit, floor, pos, d, ray)
    _same(got, lk.survivors_numpy(travelled, w, limit, floor, pos, d, ray))
    assert 0 < len(got[4]) < 200
    none = lk.survivors(travelled, w * 0, limit, floor, pos, d, ray)
    assert all(len(a) == 0 for a in none)
