import numpy as np
import pytest
from PIL import Image

from avworld.geometry.builder import box_room
from avworld.vision.topdown import (
    AGENT_COLOUR,
    PATH_COLOUR,
    SEMANTIC_PALETTE,
    SOURCE_COLOUR,
    WALL_COLOUR,
    MapTransform,
    colorize_semantic,
    room_colour,
    save_png,
    topdown_map,
)


class FakeGrid:
    """Navigable cells of the box room: everything 0.3 m from the walls (5 cm cells)."""

    def __init__(self):
        self.resolution_m = 0.05
        self.origin_xy = np.array([0.025, 0.025])
        xs = self.origin_xy[0] + 0.05 * np.arange(80)
        ys = self.origin_xy[1] + 0.05 * np.arange(60)
        x, y = np.meshgrid(xs, ys)
        self.free = (x > 0.3) & (x < 3.7) & (y > 0.3) & (y < 2.7)


def test_transform_roundtrip():
    tf = MapTransform.for_bounds((0, 0), (4, 3), px_per_m=20, margin_m=0.5)
    assert (tf.width, tf.height) == (100, 80)
    np.testing.assert_allclose(tf.world_to_pixel([-0.5, 3.5]), [0, 0])
    np.testing.assert_allclose(tf.world_to_pixel([4.5, -0.5]), [100, 80])
    xy = np.array([[1.2, 2.3], [3.9, 0.1]])
    np.testing.assert_allclose(tf.pixel_to_world(tf.world_to_pixel(xy)), xy)
    with pytest.raises(ValueError, match="px_per_m"):
        MapTransform.for_bounds((0, 0), (4, 3), px_per_m=0)
    with pytest.raises(ValueError, match="px_per_m"):
        MapTransform.for_bounds((0, 0), (4000, 3), px_per_m=40)


def test_box_room_map_with_annotations(tmp_path):
    scene = box_room((4.0, 3.0, 2.5))
    img, tf = topdown_map(
        scene,
        FakeGrid(),
        px_per_m=40,
        agent=(1.0, 1.5, 0.0),
        sources=[(3.0, 2.2)],
        path=[(1.0, 1.5), (3.0, 1.5), (3.0, 2.2)],
        goal=(3.0, 0.6),
        return_transform=True,
    )
    # walls are 0.1 m thick boxes around [0, 4] x [0, 3]; margin 0.5 m
    assert img.shape == (round(4.2 * 40), round(5.2 * 40), 3) and img.dtype == np.uint8

    def px(x, y):
        c, r = tf.world_to_pixel([x, y])
        return tuple(img[int(r), int(c)])

    assert px(-0.05, 1.0) == WALL_COLOUR  # inside the west wall
    assert px(0.15, 2.85) == room_colour("room")  # floor, not navigable (too close to the walls)
    nav = px(2.0, 0.5)
    assert nav != room_colour("room") and nav[1] > nav[0]  # green-tinted navigable overlay
    assert px(3.0, 2.2) == SOURCE_COLOUR
    assert px(2.0, 1.5) == PATH_COLOUR
    assert px(1.15, 1.5) == AGENT_COLOUR  # the arrow points along +x
    assert px(0.85, 1.0) != AGENT_COLOUR
    # north-up: the agent arrow tip (+x) is right of its tail, image row 0 is max y
    assert tf.world_to_pixel([0, 3])[1] < tf.world_to_pixel([0, 0])[1]
    p = save_png(img, tmp_path / "sub" / "map.png")
    np.testing.assert_array_equal(np.asarray(Image.open(p)), img)


def test_map_without_navgrid_or_rooms_and_objects():
    scene = box_room((3.0, 2.0, 2.5))
    img = topdown_map(scene, px_per_m=10)
    assert img.shape[2] == 3 and img.shape[0] > 20
    with pytest.raises(ValueError, match="agent"):
        topdown_map(scene, agent=(1.0, 2.0))


def test_colorize_and_save(tmp_path):
    sem = np.array([[0, 1], [2, 200]])
    rgb = colorize_semantic(sem)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(rgb[1, 1], SEMANTIC_PALETTE[-1])
    assert len(np.unique(SEMANTIC_PALETTE, axis=0)) == len(SEMANTIC_PALETTE)
    depth = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1)
    p = save_png(depth, tmp_path / "d.png")
    assert np.asarray(Image.open(p)).shape == (3, 4)
    with pytest.raises(ValueError):
        save_png(np.zeros((2, 2, 2)), tmp_path / "bad.png")
