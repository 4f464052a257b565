"""Band rasterization of triangles (obstacles for navigation)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from avworld.geometry.builder import SceneBuilder, box_room
from avworld.geometry.navigation import NavGrid
from avworld.geometry.rasterize import band_occupancy


def _reference(tri, origin, shape, res, z_lo, z_hi, n=400):
    """Brute force: a very dense barycentric lattice on every triangle."""
    out = np.zeros(shape, bool)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = i + j <= n - 1
    u, v = i[keep] / (n - 1), j[keep] / (n - 1)
    for a, b, c in tri:
        p = a + u[:, None] * (b - a) + v[:, None] * (c - a)
        p = p[(p[:, 2] > z_lo) & (p[:, 2] < z_hi)]
        ix = np.rint((p[:, 0] - origin[0]) / res).astype(int)
        iy = np.rint((p[:, 1] - origin[1]) / res).astype(int)
        ok = (ix >= 0) & (ix < shape[1]) & (iy >= 0) & (iy < shape[0])
        out[iy[ok], ix[ok]] = True
    return out


def test_matches_dense_reference_on_random_triangles():
    rng = np.random.default_rng(0)
    tri = rng.uniform([0, 0, 0], [3, 3, 2.5], size=(25, 3, 3))
    shape, res, origin = (70, 70), 0.05, np.array([-0.2, -0.2])
    got = band_occupancy(tri, origin, shape, res, 0.2, 1.5, inset_m=0.0)
    ref = _reference(tri, origin, shape, res, 0.2, 1.5)
    assert ref.sum() > 1000
    assert not (got & ~ref).any()  # never marks a cell the geometry does not reach
    # it may miss cells touched only by a sliver of a triangle, but never leaves a gap:
    # every missed cell has a marked 8-neighbour, and the misses are few
    missed = ref & ~got
    neighbour = ndimage.binary_dilation(got, structure=np.ones((3, 3), bool))
    assert not (missed & ~neighbour).any()
    assert missed.sum() <= 0.03 * ref.sum()


def test_vertical_and_horizontal_surfaces_and_band_limits():
    b = SceneBuilder()
    b.add_quad([(1, 1, 0), (2, 1, 0), (2, 1, 2), (1, 1, 2)], "plaster", "wall")  # vertical, crosses the band
    b.add_quad([(0, 0, 0.75), (0.5, 0, 0.75), (0.5, 0.5, 0.75), (0, 0.5, 0.75)], "plaster", "table")  # flat, inside
    b.add_quad([(3, 3, 1.8), (3.5, 3, 1.8), (3.5, 3.5, 1.8), (3, 3.5, 1.8)], "plaster", "cabinet")  # above the band
    s = b.build()
    occ = band_occupancy(s.triangles, (0.0, 0.0), (80, 80), 0.05, 0.2, 1.5)
    assert occ[20, 20:41].all()  # the wall line y = 1, x in [1, 2]
    assert occ[0:11, 0:11].all()  # the table top
    assert not occ[60:71, 60:71].any()  # the cabinet is above the head
    assert occ.sum() == 21 + 121


def test_thin_single_sided_wall_blocks_navigation():
    """A scanned wall can be a single vertical sheet: down rays never see it."""
    room = box_room((6.0, 4.0, 2.5))
    b = SceneBuilder()
    b.add_triangles(room.vertices, room.faces, "plaster", "wall")
    # zero-thickness partition at x = 3, open only for y in [1.5, 2.5]
    b.add_quad([(3, 0, 0), (3, 1.5, 0), (3, 1.5, 2.5), (3, 0, 2.5)], "plaster", "wall")
    b.add_quad([(3, 2.5, 0), (3, 4, 0), (3, 4, 2.5), (3, 2.5, 2.5)], "plaster", "wall")
    nav = NavGrid.build(b.build())
    a, c = np.array([2.0, 0.5]), np.array([4.0, 0.5])
    assert not nav.segment_free(a, c)
    d = nav.geodesic_distance(a, c)
    assert d > 2 * np.hypot(1.0, 1.0 + 0.1) - 1e-6  # must detour through the opening
    assert np.isfinite(d)
