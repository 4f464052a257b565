"""Pose features of π-AVAS: the listener's position and yaw relative to the source, sinusoidally encoded."""

from __future__ import annotations

import math

import torch


class PoseError(ValueError):
    """Pose arrays of the wrong shape."""


#: metres that the lowest position frequency spans (half a period): positions up to +-16 m stay unambiguous
POSITION_SCALE_M = 16.0


def pose_features(listener: torch.Tensor, source: torch.Tensor, num_freqs: int = 6) -> torch.Tensor:
    """(B, 4 * 2 * num_freqs + 2 * 2 * 3) features of listener (B, 4) = (x, y, z, yaw_rad) and source (B, 3).

    Position: the listener minus the source (dx, dy, dz) and their distance, each encoded by sin and
    cos at frequencies pi 2^k / POSITION_SCALE_M, k < num_freqs. Orientation: the listener's yaw and
    the source's azimuth in the head frame (0 ahead, counter-clockwise positive), as sin/cos of 1-3
    times the angle.
    """
    if listener.ndim != 2 or listener.shape[1] != 4 or source.ndim != 2 or source.shape[1] != 3 \
            or len(listener) != len(source):
        raise PoseError(f"listener must be (B, 4) (x, y, z, yaw) and source (B, 3), got {tuple(listener.shape)} and "
                        f"{tuple(source.shape)}")
    rel = listener[:, :3] - source
    dist = rel.norm(dim=1, keepdim=True)
    yaw = listener[:, 3:4]
    to_src = -rel[:, :2]
    azimuth = torch.atan2(to_src[:, 1:2], to_src[:, 0:1]) - yaw
    pos = torch.cat([rel, dist], dim=1)  # (B, 4)
    freqs = math.pi * (2.0 ** torch.arange(num_freqs, dtype=pos.dtype, device=pos.device)) / POSITION_SCALE_M
    ang = pos[:, :, None] * freqs  # (B, 4, F)
    harm = torch.arange(1, 4, dtype=pos.dtype, device=pos.device)
    rot = torch.cat([yaw, azimuth], dim=1)[:, :, None] * harm  # (B, 2, 3)
    return torch.cat([ang.sin().flatten(1), ang.cos().flatten(1), rot.sin().flatten(1), rot.cos().flatten(1)], 1)


def num_pose_features(num_freqs: int) -> int:
    return 8 * num_freqs + 12
