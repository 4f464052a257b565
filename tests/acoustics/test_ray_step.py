"""The compiled bounce of the source trace does the numpy version's arithmetic, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics import ray_step, raytrace
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine

from .rooms import two_rooms


def _trace(engine, rng_seed: int):
    return raytrace.trace_rays(engine.rc, engine.planes, engine.face_absorption, engine.face_scattering_mean,
                               (1.5, 1.5, 1.2), 300, 60.0, 3, np.random.default_rng(rng_seed), True,
                               engine._discovery_order, engine._tables)


@pytest.mark.skipif(ray_step.step is ray_step.step_numpy, reason="numba is not installed")
def test_compiled_step_matches_numpy_bit_for_bit(monkeypatch):
    engine = AcousticEngine(two_rooms(absorption=0.2), AcousticConfig())
    # scattering on the walls so both the specular and the Lambert branch run
    engine._tables = raytrace.TraceTables.build(engine.rc, engine.planes, engine.face_absorption,
                                                np.full_like(engine.face_scattering_mean, 0.4))
    fast = _trace(engine, 3)
    monkeypatch.setattr(ray_step, "step", ray_step.step_numpy)
    slow = _trace(engine, 3)
    assert fast.length.size > 3000  # many bounces of many rays
    for name in ("origin", "direction", "length", "start_m", "energy", "decay_per_m"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)


def test_step_reflects_specularly_and_keeps_diffuse_rays_on_the_incoming_side():
    back = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]], np.float32)  # face 0: normal +z (a floor); row -1: no hit
    basis = np.stack([np.eye(3), np.eye(3)]).astype(np.float32)
    scat = np.array([0.0, 0.0], np.float32)
    pos = np.array([[0.0, 0.0, 1.0]], np.float32)
    d = np.array([[0.6, 0.0, -0.8]], np.float32)
    t = np.array([1.25], np.float32)  # reaches z = 0 at x = 0.75
    lam = np.array([[0.0, 0.0, 1.0]], np.float32)
    for fn in {ray_step.step, ray_step.step_numpy}:
        p, nd, diffuse = fn(pos, d, t, np.array([0], np.int32), back, basis, scat, lam, np.ones(1, np.float32),
                            np.float32(1e-4))
        np.testing.assert_allclose(p[0], [0.75, 0.0, 1e-4], atol=1e-6)  # eps above the floor, on the ray's side
        np.testing.assert_allclose(nd[0], [0.6, 0.0, 0.8], atol=1e-6)  # mirror image
        assert not diffuse[0]
        # always diffuse (u < scattering): the Lambert direction points back up into the room
        p, nd, diffuse = fn(pos, d, t, np.array([0], np.int32), back, basis, np.ones(2, np.float32), lam,
                            np.zeros(1, np.float32), np.float32(1e-4))
        assert diffuse[0] and nd[0, 2] > 0.99
