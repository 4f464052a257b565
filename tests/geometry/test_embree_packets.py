"""Embree packet tracing against embreex's single rays (the reference) on a procedural house."""

import pickle

import numpy as np
import pytest

from avworld.geometry import embree_packets
from avworld.geometry.embree_packets import PacketTracer, tile_order
from avworld.geometry.raycast import RayCaster
from avworld.geometry.spec import load_scene_spec


@pytest.fixture(scope="module")
def house():
    return load_scene_spec("house:5:4")


@pytest.fixture(scope="module")
def tracer(house):
    t = PacketTracer.create(house.triangles, check=RayCaster(house))
    if t is None:
        pytest.skip("Embree 4 packets are not available with this embreex build")
    return t


@pytest.mark.parametrize("w,h", [(128, 128), (97, 61), (5, 3), (1, 9)])
def test_tile_order_is_a_permutation_with_row_bands_contiguous(w, h):
    order = tile_order(w, h)
    assert np.array_equal(np.sort(order), np.arange(w * h))
    rows = order // w
    for r0 in range(0, h, 4):  # positions [r0 w, r1 w) hold exactly rows r0..r1-1
        r1 = min(r0 + 4, h)
        assert np.array_equal(np.sort(rows[r0 * w : r1 * w]), np.repeat(np.arange(r0, r1), w))
    if w >= 4 and h >= 4:  # the first packet is the top-left 4x4 tile
        first = order[:16]
        assert set(first // w) == {0, 1, 2, 3} and set(first % w) == {0, 1, 2, 3}


@pytest.mark.parametrize("m", [16 * 64, 1000, 17, 1])
def test_packets_match_single_rays(house, tracer, m):
    rc = RayCaster(house)
    rng = np.random.default_rng(m)
    lo, hi = house.triangles.reshape(-1, 3).min(0), house.triangles.reshape(-1, 3).max(0)
    mismatched = total = 0
    for _ in range(4):
        o = rng.uniform(lo + 0.3, hi - 0.3).astype(np.float32)
        d = rng.normal(size=(3, m))
        d = (d / np.linalg.norm(d, axis=0)).astype(np.float32)
        got = tracer.trace(o, d)
        ref = rc.embree.run(np.broadcast_to(o, (m, 3)).copy(), np.ascontiguousarray(d.T), output=1)
        assert all(len(v) == m for v in got.values())
        hit = ref["primID"] >= 0
        np.testing.assert_array_equal(got["primID"] >= 0, hit)
        np.testing.assert_allclose(got["tfar"][hit], ref["tfar"][hit], rtol=1e-5, atol=1e-5)
        assert np.all(got["tfar"][~hit] == np.float32(1e37))
        same = got["primID"] == ref["primID"]
        mismatched += int(np.sum(~same))
        total += m
        # where both hit the same face, barycentrics and the geometric normal agree too
        for k, ng in ((0, "ngx"), (1, "ngy"), (2, "ngz")):
            np.testing.assert_allclose(got[ng][same & hit], ref["Ng"][same & hit, k], rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(got["u"][same & hit], ref["u"][same & hit], atol=1e-4)
        for k in ("u", "v", "ngx", "ngy", "ngz"):
            assert np.all(got[k][~hit] == 0)
    assert mismatched <= 0.01 * total  # only ties at shared edges may pick the other face


@pytest.mark.parametrize("m", [40, 16, 5])
def test_results_are_copies_and_deterministic(house, tracer, m):
    o = np.array([2.0, 2.0, 1.2], np.float32)
    d = np.tile(np.array([[1.0], [0.0], [0.0]], np.float32), (1, m))
    a = tracer.trace(o, d)
    kept = {k: v.copy() for k, v in a.items()}
    b = tracer.trace(o + 0.1, -d)  # reuses the packet memory: a must not change
    for k in a:
        assert a[k].tobytes() == kept[k].tobytes(), k
    c = tracer.trace(o, d)
    for k in a:
        assert a[k].tobytes() == c[k].tobytes()
    assert not np.array_equal(a["tfar"], b["tfar"])


@pytest.mark.parametrize("hold_gil", [False, True])
def test_the_ctypes_loop_equals_the_compiled_loop(house, tracer, hold_gil):
    """Without numba every packet is one ctypes call: the same Embree calls, the same results."""
    if not tracer.native_loop:
        pytest.skip("numba is not installed: trace() uses the ctypes loop already")
    rng = np.random.default_rng(7)
    o = np.array([2.0, 2.0, 1.2], np.float32)
    d = rng.normal(size=(3, 16 * 40 + 5))
    d = (d / np.linalg.norm(d, axis=0)).astype(np.float32)
    compiled = tracer.trace(o, d)
    loop, tracer._loop = tracer._loop, None
    try:
        plain = tracer.trace(o, d, hold_gil=hold_gil)
    finally:
        tracer._loop = loop
    for k in compiled:
        assert compiled[k].tobytes() == plain[k].tobytes(), k


def test_disabled_by_environment_and_not_picklable(house, tracer, monkeypatch):
    with pytest.raises(TypeError, match="rebuild"):
        pickle.dumps(tracer)
    monkeypatch.setenv("AVWORLD_EMBREE_PACKETS", "0")
    assert PacketTracer.create(house.triangles) is None


def test_a_failed_self_check_or_missing_library_gives_none(house, tracer, monkeypatch):
    monkeypatch.setattr(PacketTracer, "_agrees_with", lambda self, rc: False)
    assert PacketTracer.create(house.triangles, check=RayCaster(house)) is None
    monkeypatch.setattr(embree_packets, "_library", lambda: None)
    assert PacketTracer.create(house.triangles) is None
