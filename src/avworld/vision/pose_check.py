"""Is a camera pose in open space? The camera counterpart of the acoustic engine's source checks.

A camera inside a wall renders the wall's back faces (or nothing); one outside the scene
renders the void. :func:`check_camera_poses` refuses both with :class:`CameraPoseError`
naming the pose and the fix. Outdoor cameras (a garden) are fine as long as there is
ground below them: unlike a sound source, a camera need not be enclosed.
"""

from __future__ import annotations

import numpy as np

from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene

#: Probe directions: from inside a solid most of them hit back faces (as in the acoustics check).
_PROBE_DIRS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                        [0.6, 0.8, 0], [-0.8, 0.6, 0.0]], float)
_PROBE_DIRS /= np.linalg.norm(_PROBE_DIRS, axis=1, keepdims=True)
#: This many back-face hits of the 8 probes mean "inside a solid".
MIN_BACK_HITS = 3


class CameraPoseError(ValueError):
    """A camera pose lies inside a solid or outside the scene."""


def _describe(label: str, pose, z: float) -> str:
    x, y, yaw = (float(v) for v in pose)
    return f"{label} ({x:g}, {y:g}, {np.degrees(yaw):g} deg; camera at z={z:.2f} m)"


def check_camera_poses(scene: Scene, poses, height_m: float, labels=None, fix: str = "",
                       raycaster: RayCaster | None = None) -> None:
    """Raise :class:`CameraPoseError` for the first pose whose camera is not in open space.

    ``poses`` is (N, 3) ``(x, y, yaw_rad)``; the camera sits at ``scene.floor_z + height_m``.
    A pose fails if it is outside the scene's xy bounds, above its top or below its bottom,
    has no geometry straight below it, or is inside a solid (at least :data:`MIN_BACK_HITS`
    of 8 probe rays hit a back face). ``labels`` name the poses in the message (default
    ``pose 0``, ``pose 1``...); ``fix`` is appended to it.
    """
    p = np.asarray(poses, float).reshape(-1, 3)
    labels = list(labels) if labels is not None else [f"pose {k}" for k in range(len(p))]
    tail = f"; {fix}" if fix else ""
    z = float(scene.floor_z) + float(height_m)
    lo, hi = scene.bounds
    for k, pose in enumerate(p):
        if not np.all(np.isfinite(pose)):
            raise CameraPoseError(f"{labels[k]} must be finite numbers x, y, yaw, got {pose.tolist()}{tail}")
        if np.any(pose[:2] < lo[:2]) or np.any(pose[:2] > hi[:2]) or not lo[2] <= z <= hi[2]:
            raise CameraPoseError(
                f"{_describe(labels[k], pose, z)} is outside the scene, whose bounds are "
                f"{lo.round(2).tolist()}..{hi.round(2).tolist()}; place it inside a room{tail}"
            )
    if len(p) == 0:
        return
    rc = raycaster or RayCaster(scene)
    origins = np.repeat(np.c_[p[:, :2], np.full(len(p), z)], len(_PROBE_DIRS), axis=0)
    hits = rc.cast(origins, np.tile(_PROBE_DIRS, (len(p), 1)))
    face = hits.face.reshape(len(p), len(_PROBE_DIRS))
    hit = face >= 0
    normals = scene.face_normals[np.maximum(face, 0)]
    back = hit & (np.einsum("kij,ij->ki", normals, _PROBE_DIRS) > 0)
    down = int(np.flatnonzero((_PROBE_DIRS == [0, 0, -1]).all(axis=1))[0])
    for k in range(len(p)):
        if back[k].sum() >= MIN_BACK_HITS:
            raise CameraPoseError(
                f"{_describe(labels[k], p[k], z)} is inside a solid (a wall or furniture): it would render "
                f"the inside of the geometry; move it into open space{tail}"
            )
        if not hit[k, down]:
            raise CameraPoseError(
                f"{_describe(labels[k], p[k], z)} is outside the scene (no floor or ground below it); "
                f"place it inside a room{tail}"
            )
