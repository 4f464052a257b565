"""Scene builder helpers: boxes, box rooms, extruded polygon rooms."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.geometry.builder import box_room, extruded_room
from avworld.geometry.raycast import RayCaster

L_SHAPE = [(0, 0), (8, 0), (8, 3), (3, 3), (3, 7), (0, 7)]


def _all_front_facing(rc: RayCaster, p) -> bool:
    rng = np.random.default_rng(0)
    d = rng.normal(size=(64, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    h = rc.cast(np.asarray(p, float)[None], d)
    return bool(h.hit.all() and (np.einsum("ij,ij->i", h.normal, d) < 0).all())


def test_extruded_l_shape_is_closed_and_clear_inside():
    scene = extruded_room(L_SHAPE, 2.5)
    rc = RayCaster(scene)
    # right next to the concave corner (3, 3), on both arms, and far inside
    for p in [(2.95, 3.05, 1.0), (2.95, 2.95, 1.0), (3.05, 2.95, 1.0), (1.0, 6.0, 2.0), (7.5, 0.5, 0.3)]:
        assert _all_front_facing(rc, p), p
    # distances to the walls are exact
    h = rc.cast([[1.0, 1.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(h.distance, [7.0, 6.0], atol=1e-5)
    # outside the L (the missing quadrant) is solid or open, never the room
    assert not _all_front_facing(rc, (5.0, 5.0, 1.0))


def test_extruded_room_validates_corners():
    with pytest.raises(ValueError, match="counter-clockwise"):
        extruded_room(L_SHAPE[::-1], 2.5)
    with pytest.raises(ValueError, match="axis-aligned"):
        extruded_room([(0, 0), (4, 1), (0, 3)], 2.5)


def test_box_room_interior_distances():
    rc = RayCaster(box_room((4.0, 3.0, 2.5)))
    h = rc.cast([[1.0, 1.0, 1.0]], [[-1, 0, 0], [0, 0, 1], [0, 0, -1]])
    np.testing.assert_allclose(h.distance, [1.0, 1.5, 1.0], atol=1e-5)
