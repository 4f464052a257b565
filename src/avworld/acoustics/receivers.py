"""Receiver boxes for the late field: the largest axis-aligned box in the listener's room.

The late field in a room is close to diffuse, so the engine estimates its energy density
over a box spanning the listener's room rather than a small sphere around the listener
(:func:`~avworld.acoustics.raytrace.box_histogram`). :class:`RoomGrid` prepares one room
outline for fast point-in-room queries and finds that box (see
``AcousticEngine._room_box``).
"""

from __future__ import annotations

import numpy as np


class RoomGrid:
    """A room outline prepared for fast point queries and receiver boxes (see ``AcousticEngine._room_box``)."""

    def __init__(self, room) -> None:
        poly = np.asarray(room.polygon, dtype=float)
        self.edges = [(float(a[0]), float(a[1]), float(b[0]), float(b[1])) for a, b in zip(poly, np.roll(poly, -1, 0))]
        self.z = (float(room.floor_z), float(room.ceiling_z))
        self.rectilinear = all(abs(x0 - x1) < 1e-9 or abs(y0 - y1) < 1e-9 for x0, y0, x1, y1 in self.edges)
        self.boxes: dict[tuple[int, int], tuple | None] = {}
        if self.rectilinear:
            self.xs = np.unique(poly[:, 0])
            self.ys = np.unique(poly[:, 1])
            cx = 0.5 * (self.xs[1:] + self.xs[:-1])
            cy = 0.5 * (self.ys[1:] + self.ys[:-1])
            self.inside = np.array([[self.contains(a, b) for b in cy] for a in cx], bool)  # (nx, ny) cells

    def contains(self, x: float, y: float) -> bool:
        """Even-odd point-in-polygon test (plain floats: far cheaper than numpy for one point)."""
        inside = False
        for x0, y0, x1, y1 in self.edges:
            if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
                inside = not inside
        return inside

    def box_at(self, x: float, y: float):
        if not self.rectilinear:
            return None
        i = int(np.clip(np.searchsorted(self.xs, x, side="right") - 1, 0, len(self.xs) - 2))
        j = int(np.clip(np.searchsorted(self.ys, y, side="right") - 1, 0, len(self.ys) - 2))
        if (i, j) not in self.boxes:
            self.boxes[(i, j)] = self._largest_box(i, j)
        return self.boxes[(i, j)]

    def min_box_surface(self) -> float | None:
        """Smallest surface (m^2) of the receiver boxes of this room (None: not rectilinear)."""
        if not self.rectilinear:
            return None
        out = None
        for i, j in zip(*np.nonzero(self.inside)):
            box = self.box_at(0.5 * (self.xs[i] + self.xs[i + 1]), 0.5 * (self.ys[j] + self.ys[j + 1]))
            if box is not None:
                e = box[1] - box[0]
                s = 2.0 * (e[0] * e[1] + e[0] * e[2] + e[1] * e[2])
                out = s if out is None else min(out, s)
        return out

    def _largest_box(self, i: int, j: int):
        inside = self.inside
        if not inside[i, j]:
            return None
        nx, ny = inside.shape
        xs, ys = self.xs, self.ys
        best, box = -1.0, None
        for i0 in range(i, -1, -1):
            if not inside[i0, j]:
                break
            for i1 in range(i, nx):
                if not inside[i1, j]:
                    break
                cols = inside[i0 : i1 + 1].all(axis=0)  # y cells fully inside across [i0, i1]
                j0 = j
                while j0 > 0 and cols[j0 - 1]:
                    j0 -= 1
                j1 = j
                while j1 < ny - 1 and cols[j1 + 1]:
                    j1 += 1
                area = (xs[i1 + 1] - xs[i0]) * (ys[j1 + 1] - ys[j0])
                if area > best + 1e-12:
                    best = area
                    box = (np.array([xs[i0], ys[j0], self.z[0]]), np.array([xs[i1 + 1], ys[j1 + 1], self.z[1]]))
        return box
