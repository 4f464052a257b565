"""Navigable space of a scene: a 2D occupancy grid, geodesic distances, shortest paths
and collision-checked discrete motion.

:meth:`NavGrid.build` works on any mesh (procedural houses or imported scans): it casts
one Embree ray straight down per grid cell from the agent's head height and keeps the
cells whose first hit is floor (an up-facing face within ``max_climb_m`` of the floor
height), erodes them by the agent radius and keeps the largest 8-connected component,
so every navigable point is reachable from every other one.

Two details keep this robust. Obstacles also come from
:func:`~avworld.geometry.rasterize.band_occupancy`: every cell whose column holds
geometry between ``max_climb_m`` and ``agent_height_m`` above the floor is blocked. That
sees vertical surfaces (a thin scanned wall is invisible to vertical rays) and the
sides of solids standing on the floor (whose bottom face ties with the floor for a down
ray from inside); the enclosed interior of such a solid then forms a pocket that the
largest-component rule drops. And zero-width diagonal contacts between free cells
are removed, so 8- and 4-connectivity agree (fast marching propagates over 4-neighbours
and an agent cannot squeeze through a point).

Cells are ``resolution_m`` squares over the scene's xy bounds; continuous points belong
to the cell whose centre is nearest. Only one floor level (``floor_z``) is handled.

Yaw is measured counter-clockwise from +x (radians); the heading is ``(cos, sin)``.
"""

from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from avworld.geometry.actions import Action
from avworld.geometry.geodesic import (
    GeodesicField,
    PulledPath,
    candidate_vertices,
    compute_field,
    first_blocked_sample,
    points_free,
    points_to_cells,
    segments_free,
)
from avworld.geometry.rasterize import band_occupancy
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene

__all__ = ["NavigationError", "NavConfig", "NavGrid", "GeodesicField", "wrap_angle"]

#: Faces whose unit normal has z above this count as floor ("up-facing").
FLOOR_NORMAL_MIN_Z = 0.7
#: A grid larger than this many cells is refused (almost surely a unit mix-up).
MAX_GRID_CELLS = 16_000_000
#: Cells classified per batch of Embree rays.
RAY_CHUNK = 1_000_000
#: Number of cached geodesic fields (one per goal cell).
FIELD_CACHE_SIZE = 64


class NavigationError(ValueError):
    """Bad navigation configuration, or a scene without navigable floor."""


def wrap_angle(a_rad):
    """Wrap angles (float or array) to (-pi, pi]."""
    a = np.asarray(a_rad, dtype=float)
    w = math.pi - np.mod(math.pi - a, 2 * math.pi)
    w = np.where(w <= -math.pi, w + 2 * math.pi, w)  # np.mod may round up to exactly 2*pi
    return float(w) if w.ndim == 0 else w


@dataclass(frozen=True)
class NavConfig:
    """How the navigation grid is built.

    ``resolution_m``: grid cell size. ``agent_radius_m``: free cells keep more than this
    clearance (cell centre to nearest non-walkable cell centre). ``agent_height_m``:
    geometry below this height above the floor blocks the agent. ``max_climb_m``: floor
    may deviate this much from ``floor_z`` (thresholds, rugs); anything higher is an
    obstacle. ``floor_z``: floor height, ``None`` = :attr:`Scene.floor_z`.
    """

    resolution_m: float = 0.05
    agent_radius_m: float = 0.1
    agent_height_m: float = 1.5
    max_climb_m: float = 0.2
    floor_z: float | None = None

    def __post_init__(self) -> None:
        def check(name: str, ok: bool, fix: str) -> None:
            if not ok:
                raise NavigationError(f"NavConfig.{name}={getattr(self, name)!r} is invalid: {fix}")

        for name in ("resolution_m", "agent_radius_m", "agent_height_m", "max_climb_m"):
            v = getattr(self, name)
            check(name, isinstance(v, numbers.Real) and math.isfinite(v), "it must be a finite number")
        check("resolution_m", self.resolution_m > 0, "use a positive cell size, e.g. 0.05 m")
        check("agent_radius_m", self.agent_radius_m >= 0, "use a non-negative radius, e.g. 0.1 m")
        check("agent_height_m", self.agent_height_m > 0, "use a positive height, e.g. 1.5 m")
        check("max_climb_m", self.max_climb_m >= 0, "use a non-negative climb height, e.g. 0.2 m")
        check(
            "max_climb_m",
            self.max_climb_m < self.agent_height_m,
            f"it must be below agent_height_m={self.agent_height_m}",
        )
        if self.floor_z is not None:
            check(
                "floor_z",
                isinstance(self.floor_z, numbers.Real) and math.isfinite(self.floor_z),
                "give a finite height in metres, or None to use scene.floor_z",
            )


class NavGrid:
    """Navigable cells of a scene on a regular xy grid (see module docstring).

    Attributes: ``free`` (H, W) bool indexed ``[iy, ix]``; ``origin_xy`` world xy of the
    centre of cell ``[0, 0]``; ``resolution_m``; ``floor_z``; ``config``; ``shape``;
    ``walkable`` (H, W) bool floor cells before erosion and component filtering;
    ``raw_num_components`` number of free components before only the largest was kept.
    """

    def __init__(
        self,
        free: np.ndarray,
        origin_xy,
        resolution_m: float,
        floor_z: float,
        config: NavConfig,
        walkable: np.ndarray | None = None,
        raw_num_components: int = 1,
    ) -> None:
        self.free = np.asarray(free, dtype=bool)
        self.free.setflags(write=False)
        self.origin_xy = np.asarray(origin_xy, dtype=float).reshape(2)
        self.resolution_m = float(resolution_m)
        self.floor_z = float(floor_z)
        self.config = config
        self.walkable = self.free if walkable is None else walkable
        self.raw_num_components = int(raw_num_components)
        self._free_flat = np.flatnonzero(self.free)
        self._fields: OrderedDict[tuple[int, int], GeodesicField] = OrderedDict()
        self._nearest_free: np.ndarray | None = None

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, scene: Scene, config: NavConfig | None = None, raycaster: RayCaster | None = None) -> NavGrid:
        """Build the grid for ``scene`` (see module docstring)."""
        config = NavConfig() if config is None else config
        if not isinstance(config, NavConfig):
            raise NavigationError(f"config must be a NavConfig, got {type(config).__name__}")
        floor_z = float(scene.floor_z if config.floor_z is None else config.floor_z)
        rc = RayCaster(scene) if raycaster is None else raycaster
        res = config.resolution_m
        lo, hi = scene.bounds[0, :2], scene.bounds[1, :2]
        w, h = (max(1, math.ceil((hi[i] - lo[i]) / res - 1e-9)) for i in range(2))
        if w * h > MAX_GRID_CELLS:
            raise NavigationError(
                f"navigation grid would have {w}x{h} cells; scene extent {hi - lo} m at resolution_m={res} "
                "is too large: use a coarser resolution_m or check the scene units (metres expected)"
            )
        origin = lo + res / 2
        iy, ix = np.mgrid[0:h, 0:w]
        xy = origin + res * np.stack([ix.reshape(-1), iy.reshape(-1)], axis=1)
        walkable = np.zeros(len(xy), bool)
        stats = {"miss": 0, "inside": 0, "not_floor": 0}
        for i in range(0, len(xy), RAY_CHUNK):  # bounded memory on large scans
            walkable[i : i + RAY_CHUNK], part = _classify_cells(rc, xy[i : i + RAY_CHUNK], floor_z, config)
            stats = {k: stats[k] + part[k] for k in stats}
        walkable = walkable.reshape(h, w)
        # Anything between the climbable step and the agent's head blocks its cell,
        # including vertical surfaces the down rays cannot see (thin scanned walls).
        walkable &= ~band_occupancy(
            scene.triangles, origin, (h, w), res, floor_z + config.max_climb_m, floor_z + config.agent_height_m
        )
        walkable.setflags(write=False)

        # Erode by the agent radius: the grid border counts as an obstacle too.
        edt_cells = ndimage.distance_transform_edt(np.pad(walkable, 1))[1:-1, 1:-1]
        free = _remove_diagonal_pinches(edt_cells > config.agent_radius_m / res + 1e-6)
        labels, n_comp = ndimage.label(free, structure=np.ones((3, 3), bool))
        if n_comp == 0:
            raise NavigationError(
                f"no navigable floor in the scene: of {h * w} cells, {stats['miss']} rays hit nothing, "
                f"{stats['inside']} start inside geometry or hit a down-facing face, {stats['not_floor']} hit "
                f"something that is not floor within floor_z={floor_z:.3f}±{config.max_climb_m} m, and the "
                f"{int(walkable.sum())} floor cells vanish after eroding by agent_radius_m={config.agent_radius_m}; "
                "check floor_z / up axis (z must be up) / agent size"
            )
        counts = np.bincount(labels.reshape(-1))
        counts[0] = 0
        free = labels == int(np.argmax(counts))
        return cls(free, origin, res, floor_z, config, walkable=walkable, raw_num_components=n_comp)

    # ------------------------------------------------------------------ grid
    @property
    def shape(self) -> tuple[int, int]:
        return self.free.shape

    @property
    def num_free_cells(self) -> int:
        return len(self._free_flat)

    @property
    def num_components(self) -> int:
        """Number of 8-connected components of ``free`` (1 after :meth:`build`)."""
        return int(ndimage.label(self.free, structure=np.ones((3, 3), bool))[1])

    @property
    def navigable_area_m2(self) -> float:
        return self.num_free_cells * self.resolution_m**2

    def world_to_cell(self, xy) -> np.ndarray:
        """(N, 2) int cells ``[iy, ix]`` of world points (may lie outside the grid)."""
        return points_to_cells(xy, self.origin_xy, self.resolution_m)

    def cell_to_world(self, cells) -> np.ndarray:
        """(N, 2) world xy of the centres of cells ``[iy, ix]``."""
        c = np.asarray(cells).reshape(-1, 2)
        return self.origin_xy + self.resolution_m * c[:, ::-1].astype(float)

    def is_navigable(self, xy) -> np.ndarray:
        """Bool per point (shape ``xy.shape[:-1]``): inside a free cell of the grid."""
        arr = np.asarray(xy, dtype=float)
        return points_free(self.free, self.origin_xy, self.resolution_m, arr).reshape(arr.shape[:-1])

    def sample_navigable(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """(n, 2) points uniform over the free cells, jittered inside their cell.

        Deterministic for a given generator state.
        """
        idx = self._free_flat[rng.integers(0, len(self._free_flat), size=n)]
        iy, ix = np.divmod(idx, self.shape[1])
        # Strictly inside the cell so the point maps back to the same (free) cell.
        jitter = rng.uniform(-0.49, 0.49, size=(n, 2)) * self.resolution_m
        return self.cell_to_world(np.stack([iy, ix], axis=1)) + jitter

    def snap(self, xy) -> np.ndarray:
        """Nearest navigable point: the point itself if navigable, else the centre of
        the nearest free cell. Accepts (2,) or (N, 2); returns the same shape."""
        arr = np.asarray(xy, dtype=float)
        pts = arr.reshape(-1, 2).copy()
        bad = ~points_free(self.free, self.origin_xy, self.resolution_m, pts)
        if np.any(bad):
            if self._nearest_free is None:
                _, ind = ndimage.distance_transform_edt(~self.free, return_indices=True)
                self._nearest_free = ind
            h, w = self.shape
            c = self.world_to_cell(pts[bad])
            cy, cx = np.clip(c[:, 0], 0, h - 1), np.clip(c[:, 1], 0, w - 1)
            near = np.stack([self._nearest_free[0][cy, cx], self._nearest_free[1][cy, cx]], axis=1)
            pts[bad] = self.cell_to_world(near)
        return pts.reshape(arr.shape)

    # ------------------------------------------------------------------ geodesics
    def geodesic_field(self, goal_xy) -> GeodesicField:
        """Fast-marching distance field to ``goal_xy`` (cached per goal cell, LRU)."""
        goal = np.asarray(goal_xy, dtype=float).reshape(2)
        if not self.is_navigable(goal):
            raise NavigationError(f"goal {goal.tolist()} is not navigable; use NavGrid.snap() first")
        cell = tuple(int(v) for v in self.world_to_cell(goal)[0])
        field = self._fields.get(cell)
        if field is None or not np.array_equal(field.goal_xy, goal):
            field = compute_field(self.free, self.origin_xy, self.resolution_m, goal)
            self._fields[cell] = field
        self._fields.move_to_end(cell)
        while len(self._fields) > FIELD_CACHE_SIZE:
            self._fields.popitem(last=False)
        return field

    def _field_for_cell(self, goal: np.ndarray) -> GeodesicField:
        # Path queries only need a field that descends into the goal's cell: reuse any
        # cached field of that cell instead of re-running fast marching.
        cell = tuple(int(v) for v in self.world_to_cell(goal)[0])
        field = self._fields.get(cell)
        if field is None:
            return self.geodesic_field(goal)
        self._fields.move_to_end(cell)
        return field

    def shortest_path(self, a, b) -> np.ndarray:
        """Shortest collision-free polyline (K, 2) from exactly ``a`` to exactly ``b``.

        Empty (0, 2) when ``a`` or ``b`` is not navigable (or ``b`` unreachable).
        """
        return self.pulled_path(a, b).vertices()

    def pulled_path(self, a, b) -> PulledPath:
        """:meth:`shortest_path` as a :class:`PulledPath`, whose vertices are string-pulled
        only when asked for (the follower needs the first few at every step)."""
        a = np.asarray(a, dtype=float).reshape(2)
        b = np.asarray(b, dtype=float).reshape(2)
        none = PulledPath(self.free, self.origin_xy, self.resolution_m, np.zeros((0, 2)))
        if not (self.is_navigable(a) and self.is_navigable(b)):
            return none
        if self.segment_free(a, b):
            return PulledPath(self.free, self.origin_xy, self.resolution_m, np.stack([a, b]))
        field = self._field_for_cell(b)
        cells = field.descend(self.world_to_cell(a)[0])
        if not cells:
            return none
        keep = candidate_vertices(cells)
        pts = np.concatenate([a[None], self.cell_to_world(np.asarray(cells)[keep]), b[None]])
        return PulledPath(self.free, self.origin_xy, self.resolution_m, pts)

    def geodesic_distance(self, a, b) -> float:
        """Length (m) of :meth:`shortest_path` from a to b; ``inf`` if there is none.

        Always >= the euclidean distance, and equal to it when the straight segment is
        free.
        """
        path = self.pulled_path(a, b)
        return math.inf if path.empty else path.length()

    # ------------------------------------------------------------------ motion
    def segment_free(self, a, b) -> bool:
        """Are all samples (spacing <= resolution/2) of the segment a->b navigable?"""
        return bool(segments_free(self.free, self.origin_xy, self.resolution_m, a, b)[0])

    def move_forward(self, xy, yaw_rad: float, step_m: float) -> tuple[np.ndarray, bool]:
        """Move ``step_m`` along the heading; stop at the last free sample before an
        obstacle. Returns ``(new_xy, collided)``; never crosses non-free cells."""
        p0 = np.asarray(xy, dtype=float).reshape(2)
        p1 = p0 + step_m * np.array([math.cos(yaw_rad), math.sin(yaw_rad)])
        k, _, t_free = first_blocked_sample(self.free, self.origin_xy, self.resolution_m, p0, p1)
        if k < 0:
            return p1, False
        return p0 + t_free * (p1 - p0), True

    def apply_action(
        self,
        x: float,
        y: float,
        yaw_rad: float,
        action: Action | int,
        forward_step_m: float = 0.25,
        turn_deg: float = 10.0,
    ) -> tuple[float, float, float, bool]:
        """Apply a discrete :class:`Action`; returns ``(x, y, yaw_rad, collided)``.

        TURN_LEFT increases the yaw; the yaw is wrapped to (-pi, pi].
        """
        action = Action(action)
        collided = False
        if action == Action.MOVE_FORWARD:
            (x, y), collided = self.move_forward((x, y), yaw_rad, forward_step_m)
        elif action == Action.TURN_LEFT:
            yaw_rad = yaw_rad + math.radians(turn_deg)
        elif action == Action.TURN_RIGHT:
            yaw_rad = yaw_rad - math.radians(turn_deg)
        return float(x), float(y), float(wrap_angle(yaw_rad)), collided


def _remove_diagonal_pinches(free: np.ndarray) -> np.ndarray:
    """Block both free cells of every 2x2 checkerboard (free only on one diagonal).

    Such a diagonal contact is a zero-width passage: fast marching (4-neighbour
    stencil) does not propagate through it and an agent cannot follow it, yet it would
    join 8-connected components. Without checkerboards, 8- and 4-connectivity agree.
    """
    free = free.copy()
    while True:
        a, b, c, d = free[:-1, :-1], free[:-1, 1:], free[1:, :-1], free[1:, 1:]
        main = a & d & ~b & ~c
        anti = b & c & ~a & ~d
        if not (main.any() or anti.any()):
            return free
        kill = np.zeros_like(free)
        kill[:-1, :-1] |= main
        kill[1:, 1:] |= main
        kill[:-1, 1:] |= anti
        kill[1:, :-1] |= anti
        free &= ~kill


def _classify_cells(rc: RayCaster, xy: np.ndarray, floor_z: float, cfg: NavConfig) -> tuple[np.ndarray, dict]:
    """(N,) bool floor cells, and counts of why the others are not."""
    n = len(xy)
    z0 = floor_z + cfg.agent_height_m
    origins = np.column_stack([xy, np.full(n, z0)])
    hits = rc.cast(origins, np.broadcast_to(np.array([0.0, 0.0, -1.0]), (n, 3)))
    hit = hits.hit
    hit_z = z0 - hits.distance.astype(float)
    nz = hits.normal[:, 2]
    down_face = hit & (nz < 0)
    walkable = hit & (nz > FLOOR_NORMAL_MIN_Z) & (np.abs(hit_z - floor_z) <= cfg.max_climb_m + 1e-6)
    stats = {
        "miss": int((~hit).sum()),
        "inside": int(down_face.sum()),
        "not_floor": int((hit & ~down_face & ~walkable).sum()),
    }
    return walkable, stats
