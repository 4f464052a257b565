"""Navigation grid, geodesic distances, shortest paths and collision-checked motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avworld.geometry.actions import Action
from avworld.geometry.builder import SceneBuilder, box_room
from avworld.geometry.navigation import NavConfig, NavGrid, NavigationError, _remove_diagonal_pinches, wrap_angle

T = 0.1  # wall thickness of the test scenes
H = 2.5  # ceiling height


def shell(sx: float, sy: float) -> SceneBuilder:
    """Floor slab, ceiling and four outer walls around [0, sx] x [0, sy]."""
    b = SceneBuilder()
    b.add_box((-T, -T, -T), (sx + T, sy + T, 0.0), "wood_floor", "floor")
    b.add_box((-T, -T, H), (sx + T, sy + T, H + T), "ceiling_plaster", "ceiling")
    b.add_box((-T, -T, 0.0), (0.0, sy + T, H), "plaster", "wall")
    b.add_box((sx, -T, 0.0), (sx + T, sy + T, H), "plaster", "wall")
    b.add_box((0.0, -T, 0.0), (sx, 0.0, H), "plaster", "wall")
    b.add_box((0.0, sy, 0.0), (sx, sy + T, H), "plaster", "wall")
    return b


def two_rooms(wall_x: float = 4.0, door: tuple[float, float] | None = (2.5, 3.5), thickness: float = T):
    """8 x 6 m, split by a wall at x in [wall_x, wall_x + thickness] with a doorway (y range)."""
    b = shell(8.0, 6.0)
    if door is None:
        b.add_box((wall_x, 0.0, 0.0), (wall_x + thickness, 6.0, H), "plaster", "wall")
    else:
        b.add_box((wall_x, 0.0, 0.0), (wall_x + thickness, door[0], H), "plaster", "wall")
        b.add_box((wall_x, door[1], 0.0), (wall_x + thickness, 6.0, H), "plaster", "wall")
        b.add_box((wall_x, door[0], 2.1), (wall_x + thickness, door[1], H), "plaster", "wall")
    return b.build()


@pytest.fixture(scope="module")
def room_grid():
    return NavGrid.build(box_room((4.0, 3.0, H)))


@pytest.fixture(scope="module")
def doorway_grid():
    return NavGrid.build(two_rooms())


@pytest.fixture(scope="module")
def furnished_grid():
    b = shell(5.0, 4.0)
    b.add_box((2.0, 1.5, 0.70), (3.0, 2.5, 0.75), "wood_furniture", "table")  # table top
    b.add_box((0.5, 0.5, 0.0), (1.5, 1.2, 0.01), "carpet", "object")  # rug: within max climb
    b.add_box((4.0, 3.0, 1.0), (4.6, 3.6, 1.2), "wood_furniture", "bookshelf")  # floating shelf under head height
    b.add_box((0.5, 3.0, 1.7), (1.2, 3.6, 1.8), "wood_furniture", "cabinet")  # above head height
    # Open at the bottom and taller than the agent: the down ray from inside meets the floor.
    b.add_box((3.5, 0.3, 0.0), (4.5, 0.9, 1.9), "wood_furniture", "wardrobe", skip=("bottom",))
    return NavGrid.build(b.build())


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"resolution_m": 0.0}, "resolution_m"),
        ({"resolution_m": float("nan")}, "resolution_m"),
        ({"agent_radius_m": -0.1}, "agent_radius_m"),
        ({"agent_height_m": 0.0}, "agent_height_m"),
        ({"max_climb_m": -0.01}, "max_climb_m"),
        ({"max_climb_m": 2.0}, "max_climb_m"),
        ({"floor_z": float("inf")}, "floor_z"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(NavigationError, match=field):
        NavConfig(**kwargs)


def test_navigation_error_is_value_error():
    assert issubclass(NavigationError, ValueError)


def test_no_floor_raises():
    b = SceneBuilder()
    b.add_box((0.0, 0.0, 0.0), (3.0, 0.2, 2.5), "plaster", "wall")  # a lone wall: no floor anywhere
    with pytest.raises(NavigationError, match="no navigable floor"):
        NavGrid.build(b.build())


def test_wrong_floor_height_raises():
    with pytest.raises(NavigationError, match="floor_z"):
        NavGrid.build(box_room((3.0, 3.0, H)), NavConfig(floor_z=1.0))


def test_agent_too_wide_raises():
    with pytest.raises(NavigationError, match="agent"):
        NavGrid.build(box_room((1.0, 1.0, H)), NavConfig(agent_radius_m=0.6))


# --------------------------------------------------------------------------- grid
def test_box_room_grid(room_grid):
    g = room_grid
    assert g.free.dtype == bool and g.free.shape == g.shape
    assert g.resolution_m == 0.05 and g.floor_z == 0.0
    assert g.num_components == 1 and g.raw_num_components == 1
    np.testing.assert_allclose(g.origin_xy, [-0.075, -0.075])
    # Interior minus the eroded band: cell centres with clearance > 0.1 m.
    assert g.num_free_cells == 76 * 56
    assert math.isclose(g.navigable_area_m2, 76 * 56 * 0.0025)


def test_erosion_by_agent_radius(room_grid):
    g = room_grid
    for d in (0.0, 0.05, 0.09):
        assert not g.is_navigable([d, 1.5]), d  # too close to the x = 0 wall
        assert not g.is_navigable([2.0, 3.0 - d]), d
    assert g.is_navigable([0.15, 1.5]) and g.is_navigable([2.0, 2.85])
    assert not g.is_navigable([-0.05, 1.5])  # inside the wall
    assert not g.is_navigable([10.0, 1.0]) and not g.is_navigable([-5.0, -5.0])  # outside the grid


def test_is_navigable_shapes(room_grid):
    g = room_grid
    assert g.is_navigable(np.array([2.0, 1.5])).shape == ()
    out = g.is_navigable(np.array([[2.0, 1.5], [0.0, 0.0], [3.0, 2.0]]))
    assert out.shape == (3,) and out.tolist() == [True, False, True]


def test_cell_world_roundtrip(room_grid):
    g = room_grid
    cells = np.array([[0, 0], [3, 7], [g.shape[0] - 1, g.shape[1] - 1]])
    xy = g.cell_to_world(cells)
    np.testing.assert_array_equal(g.world_to_cell(xy), cells)
    np.testing.assert_array_equal(g.world_to_cell(xy + 0.024), cells)
    assert g.world_to_cell([2.0, 1.0]).shape == (1, 2)


def test_walls_inside_are_not_walkable(doorway_grid):
    # The divider stands on the floor slab: a down ray from inside it meets the wall's
    # bottom and the floor's top at the same distance. It must still be an obstacle.
    g = doorway_grid
    cells = g.world_to_cell([[4.025, 1.0], [4.075, 4.5], [-0.05, 2.0], [8.05, 5.0]])
    assert not g.walkable[cells[:, 0], cells[:, 1]].any()
    assert g.is_navigable([4.05, 3.0])  # the doorway is open
    assert g.num_components == 1


def test_furniture(furnished_grid):
    g = furnished_grid
    assert not g.is_navigable([2.5, 2.0])  # under / on the table
    assert not g.is_navigable([1.93, 2.0])  # within the agent radius of the table
    assert g.is_navigable([1.0, 0.85])  # on the rug
    assert not g.is_navigable([4.3, 3.3])  # floating shelf under head height
    assert g.is_navigable([0.85, 3.3])  # cabinet above head height
    assert not g.is_navigable([4.0, 0.6])  # inside a bottomless wardrobe


def test_wall_without_door_keeps_largest_component():
    g = NavGrid.build(two_rooms(wall_x=5.0, door=None))
    assert g.raw_num_components == 2 and g.num_components == 1
    assert g.is_navigable([2.0, 3.0]) and not g.is_navigable([6.5, 3.0])


def test_diagonal_pinches_removed():
    free = np.zeros((6, 6), bool)
    free[0:3, 0:3] = True
    free[3:6, 3:6] = True  # the two blocks touch only at one corner point
    out = _remove_diagonal_pinches(free)
    assert not out[2, 2] and not out[3, 3]
    assert out[0:2, 0:3].all() and out[4:6, 3:6].all()
    a, b, c, d = out[:-1, :-1], out[:-1, 1:], out[1:, :-1], out[1:, 1:]
    assert not ((a & d & ~b & ~c) | (b & c & ~a & ~d)).any()


def test_every_free_cell_is_reached_by_fast_marching(furnished_grid):
    g = furnished_grid
    field = g.geodesic_field(g.sample_navigable(np.random.default_rng(0))[0])
    assert np.isfinite(field.distance[g.free]).all()


def test_generated_house():
    procedural = pytest.importorskip("avworld.geometry.procedural")
    scene = procedural.generate_house(procedural.HouseConfig(num_rooms=5), seed=0)
    g = NavGrid.build(scene)
    assert g.num_components == 1
    # Every room keeps some navigable floor, and no wall is walkable.
    cells = np.argwhere(g.free)
    xy = g.cell_to_world(cells)
    for room in scene.rooms:
        assert room.contains(xy).sum() * g.resolution_m**2 > 0.3 * room.area_m2, room
    pts = g.sample_navigable(np.random.default_rng(0), 20)
    for a, b in zip(pts[::2], pts[1::2]):
        path = g.shortest_path(a, b)
        assert all(g.segment_free(p, q) for p, q in zip(path[:-1], path[1:]))


def test_sample_navigable_deterministic(doorway_grid):
    g = doorway_grid
    p1 = g.sample_navigable(np.random.default_rng(7), 500)
    p2 = g.sample_navigable(np.random.default_rng(7), 500)
    p3 = g.sample_navigable(np.random.default_rng(8), 500)
    assert p1.shape == (500, 2)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)
    assert g.is_navigable(p1).all()
    # Both rooms get samples, roughly in proportion to their area.
    left = (p1[:, 0] < 4.0).mean()
    assert 0.35 < left < 0.65


def test_snap(doorway_grid):
    g = doorway_grid
    inside_wall = np.array([4.05, 1.0])
    s = g.snap(inside_wall)
    assert s.shape == (2,) and g.is_navigable(s)
    assert np.hypot(*(s - inside_wall)) < 0.3
    ok = np.array([2.0, 2.0])
    np.testing.assert_array_equal(g.snap(ok), ok)
    many = g.snap(np.array([[4.05, 1.0], [2.0, 2.0], [-3.0, 2.0]]))
    assert many.shape == (3, 2) and g.is_navigable(many).all()


# --------------------------------------------------------------------------- geodesics
def test_geodesic_equals_euclidean_in_empty_room(room_grid):
    g = room_grid
    pts = g.sample_navigable(np.random.default_rng(0), 40)
    for a, b in zip(pts[::2], pts[1::2]):
        assert abs(g.geodesic_distance(a, b) - np.hypot(*(a - b))) < 1e-6
        path = g.shortest_path(a, b)
        assert path.shape == (2, 2)


def test_geodesic_at_least_euclidean(doorway_grid):
    g = doorway_grid
    pts = g.sample_navigable(np.random.default_rng(1), 60)
    for a, b in zip(pts[::2], pts[1::2]):
        d = g.geodesic_distance(a, b)
        e = float(np.hypot(*(a - b)))
        assert np.isfinite(d) and d >= e - 1e-9
        if g.segment_free(a, b):
            assert abs(d - e) < 1e-9


def test_geodesic_around_doorway_matches_hand_value(doorway_grid):
    g = doorway_grid
    a, b = np.array([3.0, 0.5]), np.array([5.1, 0.5])
    # Around the lower door jamb (x in [4, 4.1], top end y = 2.5), keeping the agent
    # radius r = 0.1 clear: a -> (4, 2.5 + r) -> (4.1, 2.5 + r) -> b.
    r = 0.1
    hand = 2 * math.hypot(1.0, 2.0 + r) + 0.1
    d = g.geodesic_distance(a, b)
    assert abs(d - hand) / hand < 0.02, (d, hand)
    # Straight through the doorway: the geodesic is the straight line.
    a2, b2 = np.array([1.0, 5.5]), np.array([7.0, 0.5])
    assert g.segment_free(a2, b2)
    assert g.geodesic_distance(a2, b2) == pytest.approx(math.hypot(6.0, 5.0), abs=1e-9)


def test_shortest_path_is_exact_and_collision_free(doorway_grid):
    g = doorway_grid
    a, b = np.array([1.3, 0.7]), np.array([6.4, 1.2])
    path = g.shortest_path(a, b)
    assert len(path) >= 3
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    assert all(g.segment_free(p, q) for p, q in zip(path[:-1], path[1:]))
    length = float(np.sum(np.hypot(*np.diff(path, axis=0).T)))
    assert g.geodesic_distance(a, b) == pytest.approx(length)
    # It bends around the door jamb: some vertex lies in the doorway's opening.
    assert any(2.5 < p[1] < 3.5 and 3.8 < p[0] < 4.3 for p in path)


def test_unreachable_is_inf():
    g = NavGrid.build(two_rooms(wall_x=5.0, door=None))
    a, b = np.array([2.0, 3.0]), np.array([6.5, 3.0])  # b lies in the dropped component
    assert g.geodesic_distance(a, b) == math.inf
    assert g.shortest_path(a, b).shape == (0, 2)
    assert g.geodesic_distance(a, [5.05, 3.0]) == math.inf  # inside the wall
    assert g.geodesic_distance([-1.0, 3.0], a) == math.inf  # outside the building


def test_geodesic_field(doorway_grid):
    g = doorway_grid
    goal = np.array([6.0, 1.0])
    field = g.geodesic_field(goal)
    assert g.geodesic_field(goal) is field  # cached
    assert field.distance.shape == g.shape
    assert field.distance_at(goal) < g.resolution_m  # bilinear between cell centres
    # In view of the goal the field is the straight-line distance (first-order FMM error).
    p = np.array([5.0, 4.0])
    assert field.distance_at(p) == pytest.approx(np.hypot(*(p - goal)), rel=0.03)
    # Around the wall it agrees with the string-pulled path length.
    q = np.array([1.0, 1.0])
    assert field.distance_at(q) == pytest.approx(g.geodesic_distance(q, goal), rel=0.03)
    vals = field.distance_at(np.array([[4.05, 1.0], q, [-2.0, 0.0]]))
    assert vals.shape == (3,) and vals[0] == np.inf and np.isfinite(vals[1]) and vals[2] == np.inf
    assert not np.isfinite(field.distance[~g.free]).any()
    assert np.isfinite(field.distance[g.free]).all()
    with pytest.raises(NavigationError, match="not navigable"):
        g.geodesic_field([4.05, 1.0])


# --------------------------------------------------------------------------- motion
def test_wrap_angle():
    assert wrap_angle(math.pi) == pytest.approx(math.pi)
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    assert wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    w = wrap_angle(np.linspace(-20, 20, 101))
    assert np.all(w > -math.pi) and np.all(w <= math.pi)


def test_apply_action(room_grid):
    g = room_grid
    x, y, yaw, col = g.apply_action(1.0, 1.0, 0.0, Action.MOVE_FORWARD)
    assert (x, y, yaw, col) == pytest.approx((1.25, 1.0, 0.0, False))
    x, y, yaw, col = g.apply_action(1.0, 1.0, math.pi / 2, Action.MOVE_FORWARD, forward_step_m=0.5)
    assert (x, y) == pytest.approx((1.0, 1.5))
    assert g.apply_action(1.0, 1.0, 0.0, Action.TURN_LEFT)[2] == pytest.approx(math.radians(10))
    assert g.apply_action(1.0, 1.0, 0.0, Action.TURN_RIGHT, turn_deg=30)[2] == pytest.approx(math.radians(-30))
    assert g.apply_action(1.0, 1.0, math.pi - 0.01, Action.TURN_LEFT)[2] < 0  # wrapped
    assert g.apply_action(1.0, 1.0, 0.3, Action.STOP) == pytest.approx((1.0, 1.0, 0.3, False))


def test_move_forward_stops_at_wall(room_grid):
    g = room_grid
    new, collided = g.move_forward([3.7, 1.5], 0.0, 0.25)
    assert collided and g.is_navigable(new) and 3.7 <= new[0] < 3.9
    again, collided = g.move_forward(new, 0.0, 0.25)
    assert collided and again[0] == pytest.approx(new[0], abs=0.026)


def test_forward_into_wall_never_crosses(doorway_grid):
    g = doorway_grid
    rng = np.random.default_rng(3)
    for _ in range(40):
        x, y = rng.uniform(3.0, 3.85), rng.uniform(0.3, 1.8)
        yaw = rng.uniform(-math.radians(20), math.radians(20))
        for _ in range(12):
            nx, ny, yaw, _ = g.apply_action(x, y, yaw, Action.MOVE_FORWARD)
            assert nx < 4.0 and g.is_navigable([nx, ny]) and g.segment_free((x, y), (nx, ny))
            x, y = nx, ny


def test_forward_never_jumps_thin_obstacle():
    # A 5 cm wall (one cell) and a point agent: no step may hop over it at any angle.
    g = NavGrid.build(two_rooms(wall_x=4.0, door=None, thickness=0.05), NavConfig(agent_radius_m=0.0))
    assert not g.is_navigable([4.025, 3.0])
    for yaw in np.radians(np.arange(-80, 81, 7)):
        for x0 in np.arange(3.5, 4.0, 0.037):
            x, y = x0, 3.0
            for _ in range(4):
                x, y, _, _ = g.apply_action(x, y, yaw, Action.MOVE_FORWARD, forward_step_m=0.3)
                assert x < 4.0


def test_segment_free(doorway_grid):
    g = doorway_grid
    assert g.segment_free([1.0, 1.0], [3.0, 2.0])
    assert not g.segment_free([3.0, 1.0], [5.0, 1.0])  # through the wall
    assert g.segment_free([3.0, 3.0], [5.0, 3.0])  # through the doorway


def _greedy_pull(g: NavGrid, pts: np.ndarray) -> list[int]:
    """Reference string pulling, one segment at a time: from each kept vertex, the
    farthest later vertex in straight view (the next one always counts)."""
    out, i = [0], 0
    while i < len(pts) - 1:
        i = max([i + 1] + [j for j in range(i + 2, len(pts)) if g.segment_free(pts[i], pts[j])])
        out.append(i)
    return out


def test_pulled_path_vertices_and_length_tests_match_full_string_pulling():
    procedural = pytest.importorskip("avworld.geometry.procedural")
    g = NavGrid.build(procedural.generate_house(procedural.HouseConfig(num_rooms=6), seed=3))
    pts = g.sample_navigable(np.random.default_rng(2), 40)
    bent = 0
    for a, b in zip(pts[::2], pts[1::2]):
        full = g.shortest_path(a, b)
        lazy = g.pulled_path(a, b)
        assert not lazy.empty and lazy.has(1)
        bent += len(full) > 2
        # the lazy path pulls what it is asked for, and no more, and the same vertices
        np.testing.assert_array_equal(lazy.vertex(1), full[1])
        assert len(lazy._idx) == 2  # only the first vertex was pulled
        assert lazy.has(2) == (len(full) > 2)
        length = float(np.sum(np.hypot(*np.diff(full, axis=0).T)))
        for r in (0.0, 0.5 * length, np.nextafter(length, 0), length, length + 1e-12, 2 * length):
            assert g.pulled_path(a, b).longer_than(r) == (length > r), (r, length)
        np.testing.assert_array_equal(g.pulled_path(a, b).vertices(), full)
        assert g.pulled_path(a, b).length() == length
        # the vertices are those of a plain greedy pull of the same candidates
        cand = g.pulled_path(a, b)._pts
        np.testing.assert_array_equal(cand[_greedy_pull(g, cand)], full)
    assert bent >= 5  # the house's walls bend most of these paths
    nowhere = g.pulled_path([-50.0, -50.0], pts[0])
    assert nowhere.empty and not nowhere.has(0) and g.shortest_path([-50.0, -50.0], pts[0]).shape == (0, 2)
    with pytest.raises(IndexError, match="no vertex 0"):
        nowhere.vertex(0)


def test_pulled_path_negative_vertex_is_an_index_error(doorway_grid):
    g = doorway_grid
    path = g.pulled_path([1.0, 1.0], [6.0, 1.0])
    assert path.has(2)  # through the door: bent
    with pytest.raises(IndexError, match=r"vertices\(\)\[-1\]"):
        path.vertex(-1)
    np.testing.assert_array_equal(path.vertices()[-1], [6.0, 1.0])
    assert g.geodesic_distance([1.0, 1.0], [6.0, 1.0]) == path.length()
