"""SE(2) pose algebra for aggregated actions: where the goal pose lies in the current frame.

A pose is ``(x, y, yaw_rad)`` in the world frame (yaw counter-clockwise from +x). The
aggregated action from pose ``a`` to pose ``b`` is ``b`` expressed in ``a``'s frame:
``(dx, dy)`` = the displacement rotated by ``-yaw_a`` (``dx`` forward, ``dy`` to the left)
and ``dyaw = wrap(yaw_b - yaw_a)``. Composing the per-step relative poses of a path
gives the relative pose of its end (:func:`compose`).
"""

from __future__ import annotations

import numpy as np

from avworld.geometry.navigation import wrap_angle


def relative_pose(a, b) -> np.ndarray:
    """Pose(s) ``b`` (..., 3) expressed in the frame of pose(s) ``a`` (..., 3) -> (..., 3)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = b[..., :2] - a[..., :2]
    c, s = np.cos(a[..., 2]), np.sin(a[..., 2])
    dx = c * d[..., 0] + s * d[..., 1]
    dy = -s * d[..., 0] + c * d[..., 1]
    return np.stack([dx, dy, np.asarray(wrap_angle(b[..., 2] - a[..., 2]))], axis=-1)


def compose(p, q) -> np.ndarray:
    """Apply relative pose ``q`` (..., 3) after ``p`` (..., 3): the pose of ``q`` in ``p``'s parent frame."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    c, s = np.cos(p[..., 2]), np.sin(p[..., 2])
    x = p[..., 0] + c * q[..., 0] - s * q[..., 1]
    y = p[..., 1] + s * q[..., 0] + c * q[..., 1]
    return np.stack([x, y, np.asarray(wrap_angle(p[..., 2] + q[..., 2]))], axis=-1)


def step_deltas(poses) -> np.ndarray:
    """(T, 3) relative pose of each step: row t = pose t+1 in the frame of pose t (last row 0)."""
    poses = np.asarray(poses, dtype=np.float64)
    out = np.zeros_like(poses)
    if len(poses) > 1:
        out[:-1] = relative_pose(poses[:-1], poses[1:])
    return out
