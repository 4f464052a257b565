"""Pinhole camera model: configuration, poses and per-pixel rays.

Conventions
-----------
* World frame: right-handed, z up, metres (as in :mod:`avworld.geometry.scene`).
* A pose is ``(x, y, yaw_rad)``; yaw is counter-clockwise from +x. The camera sits at
  ``z = floor_z + height_m`` and looks horizontally along ``(cos yaw, sin yaw, 0)``.
* Camera frame (used for the precomputed ray directions): ``(forward, right, up)``,
  where *right* is the heading rotated clockwise, ``(sin yaw, -cos yaw, 0)``, and
  *up* is +z.
* Images: row 0 is the top, column 0 the left; rays pass through pixel centres;
  pixels are square (the vertical field of view follows from ``hfov_deg`` and the
  aspect ratio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


class CameraError(ValueError):
    """A camera configuration or pose is invalid."""


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


@dataclass(frozen=True)
class CameraConfig:
    """Pinhole camera parameters.

    ``width`` x ``height`` pixels; ``hfov_deg`` horizontal field of view; ``height_m``
    camera height above the scene floor; depth is clipped to ``[min_depth_m,
    max_depth_m]`` (rays that hit nothing read ``max_depth_m``) and, with
    ``normalize_depth``, divided by ``max_depth_m`` so it lies in [0, 1].
    """

    width: int = 128
    height: int = 128
    hfov_deg: float = 90.0
    height_m: float = 1.5
    max_depth_m: float = 10.0
    min_depth_m: float = 0.0
    normalize_depth: bool = False

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise CameraError(f"CameraConfig.{name}: {msg}")

        for name in ("width", "height"):
            v = getattr(self, name)
            if not _is_int(v) or not 1 <= int(v) <= 8192:
                bad(name, f"must be an integer number of pixels in 1..8192, got {v!r}")
            object.__setattr__(self, name, int(v))
        for name in ("hfov_deg", "height_m", "max_depth_m", "min_depth_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                bad(name, f"must be a finite number, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not 1.0 <= self.hfov_deg <= 170.0:
            bad("hfov_deg", f"must lie in [1, 170] degrees (a pinhole cannot see 180), got {self.hfov_deg}")
        if not 0.0 < self.max_depth_m <= 1000.0:
            bad("max_depth_m", f"must lie in (0, 1000] m, got {self.max_depth_m}")
        if not 0.0 <= self.min_depth_m < self.max_depth_m:
            bad("min_depth_m", f"must satisfy 0 <= min_depth_m < max_depth_m ({self.max_depth_m}), "
                f"got {self.min_depth_m}")
        if not isinstance(self.normalize_depth, (bool, np.bool_)):
            bad("normalize_depth", f"must be True or False, got {self.normalize_depth!r}")
        object.__setattr__(self, "normalize_depth", bool(self.normalize_depth))

    # ------------------------------------------------------------------ intrinsics
    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return (self.height, self.width)

    @property
    def num_pixels(self) -> int:
        return self.width * self.height

    @property
    def aspect(self) -> float:
        """width / height."""
        return self.width / self.height

    @property
    def focal_px(self) -> float:
        """Focal length in pixels (same horizontally and vertically: square pixels)."""
        return (self.width / 2.0) / math.tan(math.radians(self.hfov_deg) / 2.0)

    @property
    def vfov_deg(self) -> float:
        """Vertical field of view implied by ``hfov_deg`` and the aspect ratio."""
        return math.degrees(2.0 * math.atan((self.height / 2.0) / self.focal_px))

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 matrix K in the OpenCV convention (x right, y down, z forward; pixel
        centres at integer + 0.5 coordinates, i.e. principal point at (W/2, H/2))."""
        f = self.focal_px
        return np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0], [0.0, 0.0, 1.0]])


class Camera:
    """A :class:`CameraConfig` with its precomputed per-pixel ray directions.

    ``directions_cam`` (H, W, 3) float32 unit vectors in the camera frame
    ``(forward, right, up)``; ``cos_forward`` (H, W) float32: the forward component,
    i.e. ``planar depth = distance along the ray * cos_forward``.
    """

    def __init__(self, config: CameraConfig | None = None) -> None:
        self.config = config if config is not None else CameraConfig()
        if not isinstance(self.config, CameraConfig):
            raise CameraError(f"config must be a CameraConfig, got {type(self.config).__name__}")
        c = self.config
        f = c.focal_px
        right = ((np.arange(c.width, dtype=np.float64) + 0.5) - c.width / 2.0) / f
        up = (c.height / 2.0 - (np.arange(c.height, dtype=np.float64) + 0.5)) / f
        r, u = np.meshgrid(right, up)  # (H, W)
        d = np.stack([np.ones_like(r), r, u], axis=-1)
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        self.directions_cam = np.ascontiguousarray(d, dtype=np.float32)
        self.cos_forward = np.ascontiguousarray(d[..., 0], dtype=np.float32)
        for arr in (self.directions_cam, self.cos_forward):
            arr.setflags(write=False)

    @cached_property
    def _flat_components(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.directions_cam.reshape(-1, 3)
        return tuple(np.ascontiguousarray(d[:, k]) for k in range(3))

    def _ordered_components(self, pixel_order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached = self.__dict__.get("_ordered")
        if cached is None or cached[0] is not pixel_order:
            cached = self._ordered = (pixel_order, tuple(np.ascontiguousarray(c[pixel_order])
                                                         for c in self._flat_components))
        return cached[1]

    def world_directions(self, yaws, out: np.ndarray | None = None,
                         pixel_order: np.ndarray | None = None) -> np.ndarray:
        """(N, H*W, 3) float32 unit world directions for N yaw angles (radians).

        With ``out`` (N, H*W, 3) float32 (any strides, e.g. the transpose of a
        (3, N, H*W) buffer) the result is written there. ``pixel_order`` (H*W,) lists the
        pixels (row-major indices) in the order wanted (default: row-major).
        """
        yaws = np.asarray(yaws, dtype=np.float64).reshape(-1)
        n, p = len(yaws), self.config.num_pixels
        if out is None:
            out = np.empty((n, p, 3), np.float32)
        a, b, up = self._flat_components if pixel_order is None else self._ordered_components(pixel_order)
        c = np.cos(yaws).astype(np.float32)[:, None]
        s = np.sin(yaws).astype(np.float32)[:, None]
        # forward = (c, s, 0), right = (s, -c, 0), up = (0, 0, 1)
        np.multiply(a, c, out=out[:, :, 0])
        out[:, :, 0] += b * s
        np.multiply(a, s, out=out[:, :, 1])
        out[:, :, 1] -= b * c
        out[:, :, 2] = up
        return out

    def origins(self, poses, floor_z: float = 0.0) -> np.ndarray:
        """(N, 3) float64 camera centres for poses (N, 3)."""
        p = as_poses(poses)
        z = np.full((len(p), 1), float(floor_z) + self.config.height_m)
        return np.concatenate([p[:, :2], z], axis=1)

    def rays(self, pose, floor_z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """World rays of one pose: origin (3,) float64 and directions (H, W, 3) float32."""
        p = as_poses(pose)
        if len(p) != 1:
            raise CameraError(f"rays() takes one pose, got {len(p)}")
        d = self.world_directions(p[:, 2])[0].reshape(self.config.height, self.config.width, 3)
        return self.origins(p, floor_z)[0], d

    def project(self, pose, points, floor_z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Project world points (M, 3) into the image of ``pose``.

        Returns ``pixels`` (M, 2) float64 as (column, row) in pixel units (pixel
        centres at integer + 0.5) and ``depth`` (M,) planar depth (negative: behind).
        """
        p = as_poses(pose)
        if len(p) != 1:
            raise CameraError(f"project() takes one pose, got {len(p)}")
        x, y, yaw = p[0]
        rel = np.asarray(points, dtype=np.float64).reshape(-1, 3) - np.array(
            [x, y, float(floor_z) + self.config.height_m]
        )
        c, s = math.cos(yaw), math.sin(yaw)
        fwd = rel[:, 0] * c + rel[:, 1] * s
        right = rel[:, 0] * s - rel[:, 1] * c
        up = rel[:, 2]
        f = self.config.focal_px
        with np.errstate(divide="ignore", invalid="ignore"):
            col = self.config.width / 2.0 + f * right / fwd
            row = self.config.height / 2.0 - f * up / fwd
        return np.stack([col, row], axis=1), fwd


def as_poses(poses) -> np.ndarray:
    """Validate poses: one ``(x, y, yaw)`` or a batch (N, 3); returns (N, 3) float64."""
    p = np.asarray(poses, dtype=np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.size == 0 and p.ndim == 2 and p.shape[0] == 0:
        return np.zeros((0, 3))
    if p.ndim != 2 or p.shape[1] != 3:
        raise CameraError(f"poses must be (3,) or (N, 3) arrays of (x, y, yaw_rad), got shape {np.shape(poses)}")
    if not np.all(np.isfinite(p)):
        raise CameraError("poses contain NaN or infinite values")
    return p
