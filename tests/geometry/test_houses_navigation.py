"""Procedural houses x navigation over many seeds (issue 2's acceptance checks)."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.geometry.actions import Action
from avworld.geometry.follower import ShortestPathFollower
from avworld.geometry.navigation import NavConfig, NavGrid
from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.geometry.raycast import RayCaster

SEEDS = range(200)


def _house(seed: int):
    return generate_house(HouseConfig(num_rooms=1 + seed % 12), seed=seed)


@pytest.fixture(scope="module")
def houses():
    out = []
    for seed in SEEDS:
        scene = _house(seed)
        out.append((seed, scene, NavGrid.build(scene, NavConfig())))
    return out


def test_same_seed_identical_bytes():
    for seed in SEEDS:
        a, b = _house(seed), _house(seed)
        assert a.vertices.tobytes() == b.vertices.tobytes()
        assert a.faces.tobytes() == b.faces.tobytes()
        assert a.content_hash == b.content_hash


def test_every_house_connected_every_room_reachable(houses):
    for seed, scene, nav in houses:
        assert nav.num_components == 1, seed
        for room in scene.rooms:
            poly = room.polygon_array
            lo, hi = poly.min(axis=0), poly.max(axis=0)
            xs = np.arange(lo[0], hi[0], nav.resolution_m)
            ys = np.arange(lo[1], hi[1], nav.resolution_m)
            grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
            share = nav.is_navigable(grid).mean()
            # every room is part of the one navigable component, with real floor space
            assert share > 0.25, (seed, room.index, room.room_type, share)


def test_doors_passable_by_the_agent(houses):
    r = NavConfig().agent_radius_m
    for seed, scene, nav in houses:
        for d in scene.doors:
            if d.rooms[1] < 0:
                continue
            c, n = np.asarray(d.center), np.asarray(d.normal)
            a = c - n * (d.thickness_m / 2 + 0.35)
            b = c + n * (d.thickness_m / 2 + 0.35)
            assert nav.is_navigable(a) and nav.is_navigable(b), (seed, d.index)
            # straight through the door: the geodesic is the straight segment
            assert nav.segment_free(a, b), (seed, d.index)
            assert nav.geodesic_distance(a, b) == pytest.approx(np.linalg.norm(b - a), abs=1e-6)
            assert d.width_m > 2 * r


def test_geodesic_at_least_euclidean(houses):
    for seed, _scene, nav in houses[::4]:
        rng = np.random.default_rng(seed)
        pts = nav.sample_navigable(rng, 6)
        for a, b in zip(pts[:3], pts[3:]):
            g = nav.geodesic_distance(a, b)
            assert np.isfinite(g), seed
            assert g >= np.linalg.norm(a - b) - 1e-9, seed


def test_no_furniture_in_doorways(houses):
    for seed, scene, _ in houses:
        for d in scene.doors:
            zone = d.footprint(depth_m=0.5)
            zlo, zhi = zone.min(axis=0), zone.max(axis=0)
            for o in scene.objects:
                lo, hi = np.asarray(o.bbox_min[:2]), np.asarray(o.bbox_max[:2])
                assert not (np.all(lo < zhi) and np.all(hi > zlo)), (seed, o.category, d.index)


def test_follower_reaches_sampled_goals(houses):
    for seed, _scene, nav in houses[1::10]:
        rng = np.random.default_rng(1000 + seed)
        start, goal = nav.sample_navigable(rng, 2)
        fol = ShortestPathFollower(nav, forward_step_m=0.25, turn_deg=10.0)
        traj = fol.follow(start, float(rng.uniform(-np.pi, np.pi)), goal, max_steps=1000)
        x, y, _, action = traj[-1]
        assert action == Action.STOP, seed
        assert np.hypot(x - goal[0], y - goal[1]) <= 0.25 + nav.resolution_m, seed


def test_forward_into_walls_never_crosses_them(houses):
    """Checked against the mesh itself: no step's segment passes through geometry."""
    for seed, scene, nav in houses[::20]:
        rc = RayCaster(scene)
        rng = np.random.default_rng(seed)
        for x, y in nav.sample_navigable(rng, 10):
            yaw = float(rng.uniform(-np.pi, np.pi))
            for _ in range(60):  # walk straight until long after hitting something
                x2, y2, yaw, _ = nav.apply_action(x, y, yaw, Action.MOVE_FORWARD, forward_step_m=0.25)
                seg_a = np.array([[x, y, 0.3], [x, y, 1.0]])
                seg_b = np.array([[x2, y2, 0.3], [x2, y2, 1.0]])
                assert not rc.occluded(seg_a, seg_b).any(), (seed, x, y, x2, y2)
                assert nav.is_navigable([x2, y2])
                x, y = x2, y2
