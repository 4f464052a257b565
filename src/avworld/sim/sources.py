"""Sound sources: where they are (possibly moving along a path) and what they play."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SourceError(ValueError):
    """A sound source is misconfigured."""


@dataclass(frozen=True)
class SoundSourceSpec:
    """A source at ``position`` (x, y, z) playing clip ``clip_index`` of sound type ``sound``.

    It starts ``start_offset_s`` into the simulation (a negative offset starts the clip
    part-way, e.g. a random phase of a looping ring). With ``path`` (waypoints (K, 3)) it
    moves from ``position`` through the waypoints at ``speed_m_s`` and stays at the end.
    """

    position: tuple[float, float, float]
    sound: str = "telephone"
    clip_index: int = 0
    start_offset_s: float = 0.0
    loop: bool = True
    gain_db: float = 0.0
    path: tuple[tuple[float, float, float], ...] | None = None
    speed_m_s: float = 0.5

    def __post_init__(self) -> None:
        p = np.asarray(self.position, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise SourceError(f"source position must be finite (x, y, z), got {self.position!r}")
        object.__setattr__(self, "position", tuple(float(v) for v in p))
        if self.path is not None:
            w = np.asarray(self.path, dtype=float)
            if w.ndim != 2 or w.shape[1] != 3 or len(w) == 0 or not np.all(np.isfinite(w)):
                raise SourceError("source path must be a non-empty list of finite (x, y, z) waypoints")
            if not self.speed_m_s > 0:
                raise SourceError(f"moving source needs speed_m_s > 0, got {self.speed_m_s}")
            object.__setattr__(self, "path", tuple(tuple(float(v) for v in row) for row in w))

    def position_at(self, t_s: float) -> np.ndarray:
        """(3,) position at simulation time ``t_s``."""
        p0 = np.asarray(self.position, dtype=float)
        if self.path is None:
            return p0
        pts = np.vstack([p0, np.asarray(self.path, dtype=float)])
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = min(max(t_s, 0.0) * self.speed_m_s, cum[-1])
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1))
        f = 0.0 if seg[k] == 0 else (s - cum[k]) / seg[k]
        return pts[k] + f * (pts[k + 1] - pts[k])
