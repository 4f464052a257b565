"""Procedural houses: structure, determinism, config validation."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.geometry.procedural import ROOM_TYPES, HouseConfig, HouseConfigError, generate_house
from avworld.geometry.procedural.shell import FLOOR_MATERIALS, RUG_MATERIALS, RUGS
from avworld.geometry.raycast import RayCaster
from avworld.geometry.semantics import SEMANTIC_ID


def _door_graph_connected(scene) -> bool:
    n = len(scene.rooms)
    adj = {i: set() for i in range(n)}
    for d in scene.doors:
        a, b = d.rooms
        if b >= 0:
            adj[a].add(b)
            adj[b].add(a)
    seen, stack = {0}, [0]
    while stack:
        for j in adj[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == n


@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_room_count_types_and_connectivity(n):
    scene = generate_house(HouseConfig(num_rooms=n), seed=n)
    assert len(scene.rooms) == n
    assert all(r.room_type in ROOM_TYPES for r in scene.rooms)
    assert sum(r.room_type == "living_room" for r in scene.rooms) == 1
    assert _door_graph_connected(scene)
    if n > 1:
        assert len(scene.doors) >= n - 1


def test_same_seed_same_bytes_different_seed_differs():
    cfg = HouseConfig(num_rooms=6)
    a, b = generate_house(cfg, seed=7), generate_house(cfg, seed=7)
    assert a.content_hash == b.content_hash
    assert a.vertices.tobytes() == b.vertices.tobytes()
    assert a.faces.tobytes() == b.faces.tobytes()
    assert generate_house(cfg, seed=8).content_hash != a.content_hash


def test_floor_material_matches_room_type():
    scene = generate_house(HouseConfig(num_rooms=8), seed=3)
    rc = RayCaster(scene)
    centres = np.array([[*r.centroid, 2.0] for r in scene.rooms])
    hits = rc.cast(centres, np.tile([0.0, 0.0, -1.0], (len(centres), 1)))
    for room, face in zip(scene.rooms, hits.face):
        # furniture may stand at the centre; only check where the floor is visible
        if scene.face_semantic[face] == SEMANTIC_ID["floor"]:
            mat = scene.materials[scene.face_material[face]].name
            rugs = RUG_MATERIALS if room.room_type in RUGS else ()  # a rug may lie at the centre
            assert mat in FLOOR_MATERIALS[room.room_type] + rugs, (room.room_type, mat)


def test_walls_have_real_thickness_and_doors_are_openings():
    cfg = HouseConfig(num_rooms=4, wall_thickness_m=0.2)
    scene = generate_house(cfg, seed=11)
    rc = RayCaster(scene)
    for d in scene.doors:
        c = np.array([*d.center, 1.0])
        n = np.array([*d.normal, 0.0])
        t = np.array([*d.tangent, 0.0])
        assert d.thickness_m == pytest.approx(0.2)
        # through the middle of the door: no wall between the two sides
        assert not rc.occluded(c - n * 0.3, c + n * 0.3)[0]
        # beside the door (past the jamb): the wall blocks, and it is 0.2 m thick
        side = c + t * (d.width_m / 2 + 0.1)
        assert rc.occluded(side - n * 0.3, side + n * 0.3)[0]
        h = rc.cast(side - n * 0.3, n[None])
        assert h.distance[0] == pytest.approx(0.3 - 0.1, abs=1e-4)


def test_furniture_keeps_doorways_clear():
    for seed in range(30):
        scene = generate_house(HouseConfig(num_rooms=6, furniture_density=1.0), seed=seed)
        for d in scene.doors:
            zone = d.footprint(depth_m=0.8)
            zlo, zhi = zone.min(axis=0), zone.max(axis=0)
            for o in scene.objects:
                lo, hi = np.asarray(o.bbox_min[:2]), np.asarray(o.bbox_max[:2])
                overlap = np.all(lo < zhi) and np.all(hi > zlo)
                assert not overlap, f"seed {seed}: {o.category} overlaps door {d.index}"


def test_furniture_density_zero_means_empty_rooms():
    assert generate_house(HouseConfig(num_rooms=5, furniture_density=0.0), seed=1).objects == ()
    assert len(generate_house(HouseConfig(num_rooms=5, furniture_density=1.0), seed=1).objects) > 5


def test_outdoor_and_open_plan_options():
    scene = generate_house(HouseConfig(num_rooms=4, outdoor=True), seed=2)
    assert any(d.rooms[1] == -1 for d in scene.doors)
    assert any(m.name == "grass" for m in scene.materials)
    open_plan = generate_house(HouseConfig(num_rooms=6, open_plan=True), seed=2)
    assert max(d.width_m for d in open_plan.doors) >= max(d.width_m for d in scene.doors)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_rooms": 0}, "num_rooms"),
        ({"num_rooms": 13}, "num_rooms"),
        ({"room_size_m": (5.0, 3.0)}, "room_size_m"),
        ({"door_width_m": 0.3}, "door_width_m"),
        ({"furniture_density": 1.5}, "furniture_density"),
        ({"wall_height_m": 1.0}, "wall_height_m"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(HouseConfigError, match=field):
        HouseConfig(**kwargs)


def test_bad_seed():
    with pytest.raises(HouseConfigError, match="seed"):
        generate_house(HouseConfig(), seed=-1)
