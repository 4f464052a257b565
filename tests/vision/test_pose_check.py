"""Camera poses are refused inside solids and outside the scene (``render`` / ``scene show``)."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.geometry.builder import box_room
from avworld.geometry.navigation import NavConfig, NavGrid
from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.vision.pose_check import CameraPoseError, check_camera_poses


def test_open_space_passes_and_every_failure_names_the_pose_and_the_fix():
    room = box_room((4.0, 3.0, 2.5))  # walls are 0.1 m thick around [0, 4] x [0, 3]
    check_camera_poses(room, [(2.0, 1.5, 0.0), (0.3, 2.7, 3.0)], 1.5)
    with pytest.raises(CameraPoseError, match=r"view 1 \(-0.05, 1, 90 deg.*inside a solid.*; use a free spot"):
        check_camera_poses(room, [(2.0, 1.5, 0.0), (-0.05, 1.0, np.pi / 2)], 1.5, labels=["view 0", "view 1"],
                           fix="use a free spot")
    with pytest.raises(CameraPoseError, match=r"pose 0 .* outside the scene, whose bounds are"):
        check_camera_poses(room, [(9.0, 1.0, 0.0)], 1.5)
    with pytest.raises(CameraPoseError, match="outside the scene"):
        check_camera_poses(room, [(2.0, 1.5, 0.0)], 5.0)  # above the roof
    with pytest.raises(CameraPoseError, match="finite"):
        check_camera_poses(room, [(np.nan, 1.0, 0.0)], 1.5)


def test_a_camera_with_nothing_below_it_is_outside():
    room = box_room((4.0, 3.0, 2.5))
    keep = room.triangles[:, :, 2].max(axis=1) > 1e-6  # drop the floor slab (every face at z <= 0)
    no_floor = type(room)(room.vertices, room.faces[keep], room.face_material[keep], room.materials,
                          room.face_semantic[keep], None, meta={"floor_z": 0.0})
    with pytest.raises(CameraPoseError, match="no floor or ground below it"):
        check_camera_poses(no_floor, [(2.0, 1.5, 0.0)], 1.5)


@pytest.mark.parametrize("outdoor", [False, True])
def test_every_navigable_pose_of_a_house_passes(outdoor):
    """No false alarms: views placed on the navigable area (gardens included) are in open space."""
    house = generate_house(HouseConfig(num_rooms=4, outdoor=outdoor), seed=2)
    nav = NavGrid.build(house, NavConfig())
    xy = nav.sample_navigable(np.random.default_rng(0), 200)
    poses = np.c_[xy, np.zeros(len(xy))]
    check_camera_poses(house, poses, 1.5)
    check_camera_poses(house, poses, 0.3)
