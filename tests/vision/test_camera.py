import math

import numpy as np
import pytest

from avworld.vision.camera import Camera, CameraConfig, CameraError, as_poses


def test_defaults_and_intrinsics():
    c = CameraConfig()
    assert (c.width, c.height, c.hfov_deg, c.height_m, c.max_depth_m, c.min_depth_m) == (128, 128, 90.0, 1.5, 10.0, 0.0)
    assert c.focal_px == pytest.approx(64.0)
    assert c.vfov_deg == pytest.approx(90.0)
    k = c.intrinsics
    assert k[0, 0] == pytest.approx(64.0) and k[0, 2] == 64.0 and k[1, 2] == 64.0


def test_vfov_from_aspect():
    c = CameraConfig(width=160, height=80, hfov_deg=90.0)
    assert c.vfov_deg == pytest.approx(math.degrees(2 * math.atan(0.5)))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"width": 0}, "width"),
        ({"height": 2.5}, "height"),
        ({"width": True}, "width"),
        ({"hfov_deg": 180.0}, "hfov_deg"),
        ({"hfov_deg": float("nan")}, "hfov_deg"),
        ({"height_m": "1.5"}, "height_m"),
        ({"max_depth_m": 0.0}, "max_depth_m"),
        ({"min_depth_m": -1.0}, "min_depth_m"),
        ({"min_depth_m": 10.0, "max_depth_m": 10.0}, "min_depth_m"),
        ({"normalize_depth": 1}, "normalize_depth"),
    ],
)
def test_bad_config(kwargs, field):
    with pytest.raises(CameraError, match=field):
        CameraConfig(**kwargs)
    assert issubclass(CameraError, ValueError)


def test_directions_unit_and_symmetric():
    cam = Camera(CameraConfig(width=8, height=6, hfov_deg=60))
    d = cam.directions_cam
    assert d.shape == (6, 8, 3) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-6)
    # left/right and top/bottom mirror each other; row 0 looks up, column 0 looks left
    np.testing.assert_allclose(d[:, ::-1, 1], -d[:, :, 1], atol=1e-7)
    np.testing.assert_allclose(d[::-1, :, 2], -d[:, :, 2], atol=1e-7)
    assert d[0, 0, 2] > 0 and d[0, 0, 1] < 0
    np.testing.assert_allclose(cam.cos_forward, d[..., 0])
    # corner pixel centre direction from the pinhole model
    f = cam.config.focal_px
    v = np.array([1.0, (0.5 - 4) / f, (3 - 0.5) / f])
    np.testing.assert_allclose(d[0, 0], v / np.linalg.norm(v), atol=1e-6)


def test_world_directions_and_project_roundtrip():
    cam = Camera(CameraConfig(width=16, height=12))
    yaw = 0.7
    o, d = cam.rays((1.0, 2.0, yaw), floor_z=0.5)
    np.testing.assert_allclose(o, [1.0, 2.0, 2.0])
    # image right = heading rotated clockwise
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    assert np.dot(d[6, -1], right) > 0 and np.dot(d[6, 0], right) < 0
    pts = o + 3.0 * d.reshape(-1, 3)
    pix, depth = cam.project((1.0, 2.0, yaw), pts, floor_z=0.5)
    cols, rows = np.meshgrid(np.arange(16) + 0.5, np.arange(12) + 0.5)
    np.testing.assert_allclose(pix[:, 0], cols.ravel(), atol=1e-4)
    np.testing.assert_allclose(pix[:, 1], rows.ravel(), atol=1e-4)
    np.testing.assert_allclose(depth, 3.0 * cam.cos_forward.ravel(), atol=1e-5)


def test_as_poses():
    assert as_poses((1, 2, 3)).shape == (1, 3)
    assert as_poses(np.zeros((4, 3))).shape == (4, 3)
    with pytest.raises(CameraError):
        as_poses((1, 2))
    with pytest.raises(CameraError):
        as_poses((1, np.nan, 0))
