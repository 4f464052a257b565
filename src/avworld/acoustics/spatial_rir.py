"""The spatial room impulse response: discrete arrivals + a diffuse tail.

:class:`AcousticEngine` simulates, per (source, listener) position pair, a
:class:`SpatialRIR`: early arrivals from validated image sources (delay, per-band
amplitude, direction of arrival) including the direct sound (or its transmission
through walls), and a late tail as per-band energy envelopes from stochastic ray
tracing. Head orientation is *not* part of it: binauralization for any yaw happens at
render time (:mod:`avworld.acoustics.synthesis`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from avworld.acoustics.bands import SPEED_OF_SOUND_M_S, air_amplitude, check_sample_rate
from avworld.acoustics.diffraction import edge_arrivals
from avworld.acoustics.image_source import (
    MAX_EXHAUSTIVE,
    PlaneGraph,
    SourceImages,
    count_sequences,
    image_source_arrivals,
    source_images,
)
from avworld.acoustics.listener_trace import listener_direction_energy, segment_energy, segment_fractions
from avworld.acoustics.raytrace import RayTrace, TraceTables, box_histogram, listener_histogram, trace_rays
from avworld.acoustics.receivers import RoomGrid
from avworld.acoustics.surfaces import Planes, extract_planes
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene


class AcousticsError(ValueError):
    """Bad acoustic input (configuration, positions)."""


class PositionError(AcousticsError):
    """A source or listener lies inside geometry or outside the scene."""


@dataclass(frozen=True)
class AcousticConfig:
    """Engine settings. Defaults aim at navigation-scale houses at 16 kHz."""

    sample_rate_hz: int = 16000
    ism_order: int = 3
    #: rays per source; None = auto: enough ray chords per histogram bin in the smallest room's
    #: receiver box (128 for a 6 x 4 m room, ~1,000 for a 6-room house; see AcousticEngine._auto_rays)
    n_rays: int | None = None
    #: ray-traced part of the tail (s), later decay is extrapolated; None = auto from the scene's
    #: extent (long enough for sound to reach other rooms through doors)
    trace_s: float | None = None
    max_rir_s: float = 1.5
    receiver_radius_m: float = 0.5
    hist_bin_s: float = 0.004
    air_absorption: bool = True
    speed_of_sound_m_s: float = SPEED_OF_SOUND_M_S
    discovery_rays: int = 2048
    position_quantum_m: float = 0.01
    #: give the late field the directions its energy arrives from at the listener (a listener-side
    #: trace with diffuse rain, listener_trace.py; rendered per direction bin through the HRTF,
    #: late_field.py). False: the isotropic tail of earlier versions (the same at every yaw).
    directional_tail: bool = True
    #: circular-harmonic order of the late field's binaural rendering (1..3; late_decoder.py)
    late_order: int = 3
    #: rays traced from the listener for the late field's directions, and their bounces
    listener_rays: int = 256
    listener_bounces: int = 16
    #: sound bends around the edges of open doors to a listener without line of sight (diffraction.py)
    diffraction: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_sample_rate(self.sample_rate_hz)

        def bad(name, msg):
            raise AcousticsError(f"AcousticConfig.{name}: {msg}")

        if not 0 <= self.ism_order <= 6:
            bad("ism_order", f"must lie in 0..6, got {self.ism_order}")
        if self.n_rays is not None and self.n_rays < 16:
            bad("n_rays", f"use at least 16 rays, got {self.n_rays}")
        if self.trace_s is not None and not 0.01 <= self.trace_s <= self.max_rir_s:
            bad("trace_s", f"must lie in [0.01, max_rir_s={self.max_rir_s}] s, got {self.trace_s}")
        if not 1 <= self.late_order <= 3:
            bad("late_order", f"must lie in 1..3 (8 direction sectors carry up to order 3), got {self.late_order}")
        if self.listener_rays < 16:
            bad("listener_rays", f"use at least 16 rays, got {self.listener_rays}")
        if not 1 <= self.listener_bounces <= 64:
            bad("listener_bounces", f"must lie in 1..64, got {self.listener_bounces}")
        if not 0.05 <= self.max_rir_s <= 10.0:
            bad("max_rir_s", f"must lie in [0.05, 10] s, got {self.max_rir_s}")
        if not 0.05 <= self.receiver_radius_m <= 2.0:
            bad("receiver_radius_m", f"must lie in [0.05, 2] m, got {self.receiver_radius_m}")
        if not 0.0005 <= self.hist_bin_s <= 0.05:
            bad("hist_bin_s", f"must lie in [0.0005, 0.05] s, got {self.hist_bin_s}")
        if not 250 <= self.speed_of_sound_m_s <= 400:
            bad("speed_of_sound_m_s", f"must lie in [250, 400] m/s, got {self.speed_of_sound_m_s}")


@dataclass
class SpatialRIR:
    """Everything needed to render the impulse response for any head orientation.

    ``delay_s`` (A,), ``gain`` (A, 7) pressure amplitude per octave band (1/(4 pi d)
    convention), ``doa`` (A, 3) unit vectors from the listener toward the arrival,
    ``order`` (A,) (0 direct, -1 direct through walls, -2 diffracted around a door edge, k
    reflections), ``tail`` (7, B)
    energy per ``tail_bin_s`` bin (same units as squared amplitudes), ``noise_seed``
    picks the tail's noise realization, ``tail_dir`` (S, 7, 9) the tail energy's fractions per
    time segment after the direct sound, band and arrival direction bin (8 horizontal sectors +
    vertical; :mod:`avworld.acoustics.listener_trace`; None: isotropic), rendered at circular-harmonic
    order ``late_order`` (:mod:`avworld.acoustics.late_field`).
    """

    delay_s: np.ndarray
    gain: np.ndarray
    doa: np.ndarray
    order: np.ndarray
    tail: np.ndarray
    tail_bin_s: float
    sample_rate_hz: int
    source: np.ndarray
    listener: np.ndarray
    noise_seed: int
    tail_dir: np.ndarray | None = None
    late_order: int = 3

    @property
    def nbytes(self) -> int:
        extra = 0 if self.tail_dir is None else self.tail_dir.nbytes
        return sum(a.nbytes for a in (self.delay_s, self.gain, self.doa, self.order, self.tail)) + 48 + extra

    @property
    def duration_s(self) -> float:
        end_tail = self.tail.shape[1] * self.tail_bin_s
        end_early = float(self.delay_s.max()) if len(self.delay_s) else 0.0
        return max(end_tail, end_early + 0.02)

    @property
    def has_direct_path(self) -> bool:
        return bool(np.any(self.order == 0))


def _seed_for(*parts) -> int:
    h = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(h[:8], "little")


class AcousticEngine:
    """Simulates spatial RIRs in one scene (picklable; Embree is rebuilt lazily)."""

    def __init__(self, scene: Scene, config: AcousticConfig | None = None, raycaster: RayCaster | None = None):
        self.scene = scene
        self.config = config or AcousticConfig()
        self.rc = raycaster or RayCaster(scene)
        self.planes: Planes = extract_planes(scene)
        mats = scene.materials
        absorption = np.array([m.absorption for m in mats])
        scattering = np.array([m.scattering for m in mats])
        tl = np.array([m.transmission_loss_db for m in mats])
        fm = scene.face_material
        self.face_absorption = absorption[fm]
        self.face_scattering_mean = scattering[fm].mean(axis=1)
        # pressure amplitude of a specular reflection (energy (1 - a)(1 - s)), and of transmission
        self.face_reflection = np.sqrt((1.0 - absorption[fm]) * (1.0 - scattering[fm]))
        self.face_transmission = 10.0 ** (-np.minimum(tl[fm], 200.0) / 20.0)
        self._traces: dict[tuple, RayTrace] = {}
        self._image_cache: dict[tuple, tuple[RayTrace, SourceImages]] = {}
        self._rooms: list[RoomGrid] | None = None
        self._tables = TraceTables.build(self.rc, self.planes, self.face_absorption, self.face_scattering_mean)
        extent = scene.bounds[1, :2] - scene.bounds[0, :2]
        cfg = self.config
        # a room needs a short trace to pin down its decay; a house needs sound to travel
        # through doors into other rooms: ~3 diagonals of path, and rays in proportion to area
        self.n_rays = cfg.n_rays or self._auto_rays(extent)
        self.trace_s = cfg.trace_s or float(np.clip(3.0 * np.linalg.norm(extent) / cfg.speed_of_sound_m_s,
                                                    0.06, min(0.3, cfg.max_rir_s)))
        # orders whose plane sequences are too many to enumerate are discovered by rays
        self._discovery_order = max(
            [k for k in range(1, self.config.ism_order + 1) if count_sequences(self.planes.count, k) > MAX_EXHAUSTIVE]
            or [0]
        )
        self._graph = PlaneGraph.build(scene, self.planes, self.config.ism_order)
        lo, hi = scene.bounds
        self._bounds = (lo - 1e-6, hi + 1e-6)
        self._valid_positions: dict[tuple, None] = {}  # points that passed the probe (a dataset's source)

    #: ray chords per histogram bin wanted in a receiver box (sets the automatic ray count)
    CHORDS_PER_BIN = 64

    def _auto_rays(self, extent: np.ndarray) -> int:
        """Rays per source when ``AcousticConfig.n_rays`` is None.

        When every room is rectilinear the late field is received by boxes (see
        :meth:`_room_box`). A ray ensemble of N rays lays N c dt metres of path per histogram
        bin dt over the scene's air volume V, so a box of volume V_b and surface S_b (mean
        chord 4 V_b / S_b) collects about N c dt S_b / (4 V) chords per bin: N is chosen to
        give :attr:`CHORDS_PER_BIN` of them in the room box with the smallest surface, but
        never more than the area rule below. Other scenes use a small sphere receiver, which
        would need far more rays; they get 384 per 40 m^2 of floor plan (at least 384).
        """
        legacy = int(np.clip(384 * np.prod(extent) / 40.0, 384, 4096))
        rooms = self.scene.rooms
        if not rooms:
            return legacy
        self._rooms = [RoomGrid(r) for r in rooms]
        if not all(g.rectilinear for g in self._rooms):
            return legacy
        cfg = self.config
        volume = sum(r.area_m2 * (r.ceiling_z - r.floor_z) for r in rooms)
        surfaces = [g.min_box_surface() for g in self._rooms]
        s_min = min((s for s in surfaces if s is not None), default=None)
        if s_min is None or volume <= 0:
            return legacy
        per_ray = cfg.speed_of_sound_m_s * cfg.hist_bin_s * s_min / (4.0 * volume)
        return int(np.clip(np.ceil(self.CHORDS_PER_BIN / per_ray), 128, legacy))

    # ----------------------------------------------------------------- checks
    _PROBE_DIRS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                            [0.6, 0.8, 0], [-0.8, 0.6, 0.0]], np.float32)

    def check_position(self, p, what: str) -> np.ndarray:
        """Raise :class:`PositionError` if ``p`` is outside the scene or inside a solid."""
        return self._check_positions([(p, what)])[0]

    def _check_positions(self, items) -> list[np.ndarray]:
        """:meth:`check_position` for several ``(p, what)`` at once (one Embree call)."""
        points = []
        lo, hi = self._bounds
        for p, what in items:
            p = np.asarray(p, dtype=float).reshape(-1)
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                raise PositionError(f"{what} must be a finite (x, y, z) position, got {p.tolist()}")
            if np.any(p < lo) or np.any(p > hi):
                raise PositionError(
                    f"{what} {p.round(3).tolist()} is outside the scene bounds {lo.round(2).tolist()}.."
                    f"{hi.round(2).tolist()}; place it inside a room"
                )
            points.append(p)
        # 8 probe rays per point: from inside a solid most of them hit back faces; outside the
        # scene most of them escape. Points that passed before are not probed again.
        known = self._valid_positions
        probe = [i for i, p in enumerate(points) if tuple(p.tolist()) not in known]
        if not probe:
            return points
        dirs = self._PROBE_DIRS / np.linalg.norm(self._PROBE_DIRS, axis=1, keepdims=True)
        k = len(probe)
        origins = np.repeat(np.asarray([points[i] for i in probe], np.float32), len(dirs), axis=0)
        face = self.rc.embree.run(origins, np.ascontiguousarray(np.tile(dirs, (k, 1))), output=1)["primID"]
        face = face.reshape(k, len(dirs))
        hit = face >= 0
        normals = self.rc.scene.face_normals[np.maximum(face, 0)]  # (k, 8, 3)
        back = hit & (np.einsum("kij,ij->ki", normals, dirs) > 0)
        for i, nb, nm in zip(probe, back.sum(axis=1), (~hit).sum(axis=1)):
            p, what = points[i], items[i][1]
            if nb >= 3:
                raise PositionError(
                    f"{what} {p.round(3).tolist()} is inside a solid (a wall or furniture); move it into open space"
                )
            if nm >= 4:
                raise PositionError(
                    f"{what} {p.round(3).tolist()} is not enclosed by the scene (rays escape in most directions); "
                    "place it inside a room"
                )
        for i in probe:
            if len(known) >= 256:
                known.pop(next(iter(known)))
            known[tuple(points[i].tolist())] = None
        return points

    def quantize(self, p) -> np.ndarray:
        q = self.config.position_quantum_m
        return np.round(np.asarray(p, dtype=float) / q) * q

    # ----------------------------------------------------------------- simulate
    def _source_key(self, s: np.ndarray) -> tuple:
        return tuple(np.round(s / self.config.position_quantum_m).astype(np.int64).tolist())

    def trace(self, source) -> RayTrace:
        """Ray trace from ``source`` (cached per quantized source position)."""
        s = self.quantize(source)
        key = self._source_key(s)
        tr = self._traces.get(key)
        if tr is None:
            cfg = self.config
            rng = np.random.default_rng(_seed_for("trace", cfg.seed, key))
            tr = trace_rays(
                self.rc, self.planes, self.face_absorption, self.face_scattering_mean, s, self.n_rays,
                self.trace_s * cfg.speed_of_sound_m_s, cfg.ism_order, rng, cfg.air_absorption,
                discovery_order=self._discovery_order, tables=self._tables,
            )
            if len(self._traces) >= 64:
                self._traces.pop(next(iter(self._traces)))
            self._traces[key] = tr
        return tr

    def _images(self, source: np.ndarray, tr: RayTrace) -> SourceImages:
        """Image-source candidates of a (quantized) source, cached like its ray trace."""
        key = self._source_key(source)
        hit = self._image_cache.get(key)
        if hit is not None and hit[0] is tr:
            return hit[1]
        imgs = source_images(self.planes, source, self.config.ism_order, tr.discovered, graph=self._graph)
        if len(self._image_cache) >= 64:
            self._image_cache.pop(next(iter(self._image_cache)))
        self._image_cache[key] = (tr, imgs)
        return imgs

    def spatial_rir(self, source, listener) -> SpatialRIR:
        """Simulate the spatial RIR from ``source`` to ``listener`` (both (x, y, z) metres)."""
        cfg = self.config
        S, L = (self.quantize(p) for p in self._check_positions([(source, "source"), (listener, "listener")]))
        if np.linalg.norm(S - L) < 0.05:
            raise PositionError("source and listener coincide (< 5 cm apart); separate them")
        tr = self.trace(S)
        arr = image_source_arrivals(self.scene, self.rc, self.planes, S, L, cfg.ism_order, tr.discovered,
                                   graph=self._graph, images=self._images(S, tr))
        path = arr.path_m
        gain = np.broadcast_to(1.0 / (4.0 * np.pi * path)[:, None], (len(path), 7)).copy()
        if cfg.air_absorption:
            gain *= air_amplitude(path)
        faces = arr.faces
        refl = arr.order > 0
        for j in range(faces.shape[1]):
            f = faces[:, j]
            use_r = refl & (f >= 0)
            gain[use_r] *= self.face_reflection[f[use_r]]
            use_t = (arr.order < 0) & (f >= 0)
            gain[use_t] *= self.face_transmission[f[use_t]]
        doa, kinds = arr.doa, arr.order
        if cfg.diffraction and not np.any(kinds == 0) and self.scene.doors:
            d_path, d_gain, d_doa = edge_arrivals(self.scene, self.rc, S, L, cfg.speed_of_sound_m_s,
                                                  cfg.air_absorption)
            if len(d_path):
                path = np.concatenate([path, d_path])
                gain = np.concatenate([gain, d_gain])
                doa = np.concatenate([doa, d_doa])
                kinds = np.concatenate([kinds, np.full(len(d_path), -2, kinds.dtype)])
        order = np.argsort(path, kind="stable")
        box = self._room_box(L)
        tail = self._tail(tr, L, box)
        tail_dir = self._tail_direction(S, L, tail) if cfg.directional_tail else None
        return SpatialRIR(
            delay_s=(path / cfg.speed_of_sound_m_s)[order],
            gain=gain[order].astype(np.float32),
            doa=doa[order].astype(np.float32),
            order=kinds[order].astype(np.int8),
            tail=tail.astype(np.float32),
            tail_bin_s=cfg.hist_bin_s,
            sample_rate_hz=cfg.sample_rate_hz,
            source=S,
            listener=L,
            noise_seed=_seed_for("tail", cfg.seed, S.round(4).tolist(), L.round(4).tolist()) % (2**32),
            tail_dir=tail_dir,
            late_order=cfg.late_order,
        )

    def _room_box(self, listener: np.ndarray):
        """(lo, hi) of the receiver box for the late field at ``listener``, or None (use a sphere).

        The box is the largest axis-aligned rectangle inside the listener's room that contains
        the listener (the room itself when it is a rectangle; one arm of an L-shaped room; one
        side of two rooms joined by a doorway that share a polygon), times the room's height.
        Rooms whose outline is not rectilinear get None.
        """
        if self._rooms is None:
            self._rooms = [RoomGrid(r) for r in self.scene.rooms]
        x, y = float(listener[0]), float(listener[1])
        for grid in self._rooms:
            if grid.contains(x, y):
                return grid.box_at(x, y)
        return None

    def _tail_direction(self, source: np.ndarray, listener: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """(S, 7, 9) fractions of the late energy per time segment, band and arrival direction at the
        listener, from a listener-side trace with diffuse rain (:mod:`avworld.acoustics.listener_trace`);
        the part of ``tail``'s energy the trace did not find is taken to be isotropic."""
        cfg = self.config
        rng = np.random.default_rng(_seed_for("listener", cfg.seed, self._source_key(source),
                                              self._source_key(listener)))
        energy, _ = listener_direction_energy(self._tables, self.rc, source, listener, cfg.listener_rays,
                                              cfg.listener_bounces, rng, cfg.speed_of_sound_m_s, cfg.air_absorption,
                                              max_path_m=max(self.trace_s, 0.25) * cfg.speed_of_sound_m_s)
        direct_s = float(np.linalg.norm(source - listener)) / cfg.speed_of_sound_m_s
        return segment_fractions(energy, segment_energy(tail, cfg.hist_bin_s, direct_s))

    def _tail(self, tr: RayTrace, listener: np.ndarray, box) -> np.ndarray:
        """Listener histogram over the traced time (in the receiver ``box`` from :meth:`_room_box`, or a
        sphere when None), extended by the ensemble decay."""
        cfg = self.config
        c = cfg.speed_of_sound_m_s
        if box is not None:
            hist = box_histogram(tr, box[0], box[1], cfg.hist_bin_s, c, listener, cfg.air_absorption)
        else:
            hist = listener_histogram(tr, listener, cfg.receiver_radius_m, cfg.hist_bin_s, c, cfg.air_absorption)
        n_traced = int(tr.traced_m / c / cfg.hist_bin_s)
        hist = hist[:, :n_traced]
        n_total = int(np.ceil(cfg.max_rir_s / cfg.hist_bin_s))
        if n_total <= n_traced:
            return hist[:, :n_total]
        # anchor: the level at the end of the traced part, estimated from its second half with
        # the decay rate taken out first (each bin brought forward to t_anchor, then averaged);
        # a plain mean of a decaying stretch would overestimate it (by ~0.7 dB at absorption 0.5)
        rate = tr.decay_per_m * c  # (7,) energy decay per second
        a0 = n_traced // 2
        t_anchor = n_traced * cfg.hist_bin_s
        t_bins = (np.arange(a0, n_traced) + 0.5) * cfg.hist_bin_s
        anchor = (hist[:, a0:] * np.exp(-rate[:, None] * (t_anchor - t_bins)[None, :])).mean(axis=1)
        t = (np.arange(n_traced, n_total) + 0.5) * cfg.hist_bin_s
        ext = anchor[:, None] * np.exp(-rate[:, None] * (t - t_anchor)[None, :])
        out = np.concatenate([hist, ext], axis=1)
        # drop the part more than 80 dB below the tail's peak in every band
        peak = out.max()
        if peak > 0:
            alive = np.flatnonzero((out > peak * 1e-8).any(axis=0))
            out = out[:, : (alive[-1] + 1 if len(alive) else 1)]
        return out
