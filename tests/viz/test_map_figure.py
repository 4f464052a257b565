"""Readable top-down maps: metre ticks, a scale bar, room labels, a legend outside the map."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.vision.topdown import SOURCE_COLOUR, topdown_map
from avworld.viz.map_figure import label_point, map_figure, nice_length_m


@pytest.fixture(scope="module")
def house():
    from avworld.geometry.navigation import NavConfig, NavGrid

    scene = generate_house(HouseConfig(num_rooms=4), seed=3)
    return scene, NavGrid.build(scene, NavConfig())


def _non_white(a: np.ndarray) -> np.ndarray:
    return np.any(a < 245, axis=-1)


def test_the_legend_and_axes_cover_nothing_of_the_map(house):
    scene, nav = house
    src = nav.sample_navigable(np.random.default_rng(0), 1)[0]
    plain = topdown_map(scene, nav, 40.0, sources=[src])
    fig, tf, lay = map_figure(scene, nav, 40.0, sources=[src], room_labels=False, return_transform=True)
    h, w = plain.shape[:2]
    # the map is pasted unchanged (same scale, nothing drawn over it) ...
    np.testing.assert_array_equal(fig[lay.top:lay.top + h, lay.left:lay.left + w], plain)
    # ... and the ticks, labels, scale bar and legend sit in the margins around it
    assert _non_white(fig[lay.top + h + 1:, lay.left:lay.left + w]).any()  # x ticks and labels below
    assert _non_white(fig[lay.top:lay.top + h, : lay.left - 1]).any()  # y ticks and labels to the left
    legend = fig[:, lay.left + w + 2:]
    assert legend.shape[1] >= 100 and _non_white(legend).any()
    assert np.all(legend == SOURCE_COLOUR, axis=-1).any()  # the sound source's legend symbol


def test_ticks_are_metres_and_the_scale_bar_has_its_true_length(house):
    scene, nav = house
    for ppm in (20.0, 40.0):
        fig, tf, lay = map_figure(scene, nav, ppm, return_transform=True)
        h, w = tf.height, tf.width
        # x ticks: 5 px marks just below the map frame, at whole metres, 1-2-5 spaced
        marks = np.flatnonzero(_non_white(fig[lay.top + h + 3, lay.left:lay.left + w]))
        xs = tf.pixel_to_world(np.c_[marks + 0.5, np.zeros(len(marks))])[:, 0]
        assert len(xs) >= 3 and np.allclose(xs, np.round(xs), atol=1.0 / ppm)
        steps = np.diff(np.round(xs))
        assert np.all(steps == steps[0]) and steps[0] in (1, 2, 5)
        # the scale bar: the first dark horizontal run in the legend panel
        panel = fig[lay.top:lay.top + 40, lay.left + w + 2:]
        dark = np.all(panel < 60, axis=-1)
        row = int(np.argmax(dark.sum(axis=1)))
        run = np.flatnonzero(dark[row])
        bar_m = nice_length_m((lay.right - 30) / ppm)
        assert run[-1] - run[0] + 1 == pytest.approx(bar_m * ppm, abs=2)


def test_room_labels_are_written_inside_the_rooms(house):
    scene, nav = house
    with_labels, tf, lay = map_figure(scene, nav, 40.0, return_transform=True)
    without = map_figure(scene, nav, 40.0, room_labels=False)
    changed = np.any(with_labels != without, axis=-1)
    for room in scene.rooms:
        c, r = tf.world_to_pixel(label_point(room.polygon_array))
        r0, c0 = int(r) + lay.top, int(c) + lay.left
        assert changed[r0 - 5:r0 + 5, c0 - 20:c0 + 20].any(), room.room_type
        assert room.contains(label_point(room.polygon_array)[None])[0]


def test_label_point_of_an_l_shaped_room_is_inside_it():
    ell = np.array([[0, 0], [6, 0], [6, 2], [2, 2], [2, 6], [0, 6]], float)  # its centroid (2.3, 2.3) is outside
    from avworld.geometry.scene import Room

    p = label_point(ell)
    assert Room(0, "room", tuple(map(tuple, ell))).contains(p[None])[0]


def test_nice_length():
    assert nice_length_m(3.7) == 2 and nice_length_m(1.0) == 1 and nice_length_m(9.99) == 5
    assert nice_length_m(0.3) == pytest.approx(0.2)
