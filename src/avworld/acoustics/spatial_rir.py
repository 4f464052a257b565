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
from avworld.acoustics.image_source import MAX_EXHAUSTIVE, count_sequences, image_source_arrivals
from avworld.acoustics.raytrace import RayTrace, box_histogram, listener_histogram, trace_rays
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
    #: rays per source; None = auto from the scene's floor area (384 for a room, more for houses)
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
    ``order`` (A,) (0 direct, -1 direct through walls, k reflections), ``tail`` (7, B)
    energy per ``tail_bin_s`` bin (same units as squared amplitudes), ``noise_seed``
    picks the tail's noise realization.
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

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.delay_s, self.gain, self.doa, self.order, self.tail)) + 48

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
        extent = scene.bounds[1, :2] - scene.bounds[0, :2]
        cfg = self.config
        # a room needs a short trace to pin down its decay; a house needs sound to travel
        # through doors into other rooms: ~3 diagonals of path, and rays in proportion to area
        self.n_rays = cfg.n_rays or int(np.clip(384 * np.prod(extent) / 40.0, 384, 4096))
        self.trace_s = cfg.trace_s or float(np.clip(3.0 * np.linalg.norm(extent) / cfg.speed_of_sound_m_s,
                                                    0.08, min(0.3, cfg.max_rir_s)))
        # orders whose plane sequences are too many to enumerate are discovered by rays
        self._discovery_order = max(
            [k for k in range(1, self.config.ism_order + 1) if count_sequences(self.planes.count, k) > MAX_EXHAUSTIVE]
            or [0]
        )
        lo, hi = scene.bounds
        self._bounds = (lo - 1e-6, hi + 1e-6)

    # ----------------------------------------------------------------- checks
    def check_position(self, p, what: str) -> np.ndarray:
        """Raise :class:`PositionError` if ``p`` is outside the scene or inside a solid."""
        p = np.asarray(p, dtype=float).reshape(-1)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise PositionError(f"{what} must be a finite (x, y, z) position, got {p.tolist()}")
        lo, hi = self._bounds
        if np.any(p < lo) or np.any(p > hi):
            raise PositionError(
                f"{what} {p.round(3).tolist()} is outside the scene bounds {lo.round(2).tolist()}.."
                f"{hi.round(2).tolist()}; place it inside a room"
            )
        dirs = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
                         [0.6, 0.8, 0], [-0.8, 0.6, 0.0]], float)
        h = self.rc.cast(p[None], dirs)
        back = h.hit & (np.einsum("ij,ij->i", h.normal, dirs) > 0)
        if back.sum() >= 3:
            raise PositionError(
                f"{what} {p.round(3).tolist()} is inside a solid (a wall or furniture); move it into open space"
            )
        if (~h.hit).sum() >= 4:
            raise PositionError(
                f"{what} {p.round(3).tolist()} is not enclosed by the scene (rays escape in most directions); "
                "place it inside a room"
            )
        return p

    def quantize(self, p) -> np.ndarray:
        q = self.config.position_quantum_m
        return np.round(np.asarray(p, dtype=float) / q) * q

    # ----------------------------------------------------------------- simulate
    def trace(self, source) -> RayTrace:
        """Ray trace from ``source`` (cached per quantized source position)."""
        s = self.quantize(source)
        key = tuple(np.round(s / self.config.position_quantum_m).astype(np.int64).tolist())
        tr = self._traces.get(key)
        if tr is None:
            cfg = self.config
            rng = np.random.default_rng(_seed_for("trace", cfg.seed, key))
            tr = trace_rays(
                self.rc, self.planes, self.face_absorption, self.face_scattering_mean, s, self.n_rays,
                self.trace_s * cfg.speed_of_sound_m_s, cfg.ism_order, rng, cfg.air_absorption,
                discovery_order=self._discovery_order,
            )
            if len(self._traces) >= 64:
                self._traces.pop(next(iter(self._traces)))
            self._traces[key] = tr
        return tr

    def spatial_rir(self, source, listener) -> SpatialRIR:
        """Simulate the spatial RIR from ``source`` to ``listener`` (both (x, y, z) metres)."""
        cfg = self.config
        S = self.quantize(self.check_position(source, "source"))
        L = self.quantize(self.check_position(listener, "listener"))
        if np.linalg.norm(S - L) < 0.05:
            raise PositionError("source and listener coincide (< 5 cm apart); separate them")
        tr = self.trace(S)
        arr = image_source_arrivals(self.scene, self.rc, self.planes, S, L, cfg.ism_order, tr.discovered)
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
        order = np.argsort(path, kind="stable")
        tail = self._tail(tr, L)
        return SpatialRIR(
            delay_s=(path / cfg.speed_of_sound_m_s)[order],
            gain=gain[order].astype(np.float32),
            doa=arr.doa[order].astype(np.float32),
            order=arr.order[order].astype(np.int8),
            tail=tail.astype(np.float32),
            tail_bin_s=cfg.hist_bin_s,
            sample_rate_hz=cfg.sample_rate_hz,
            source=S,
            listener=L,
            noise_seed=_seed_for("tail", cfg.seed, S.round(4).tolist(), L.round(4).tolist()) % (2**32),
        )

    def _room_box(self, listener: np.ndarray):
        """(lo, hi) of the listener's room when it is an axis-aligned rectangle, else None."""
        k = self.scene.room_at(listener[:2])
        if k < 0:
            return None
        room = self.scene.rooms[k]
        poly = room.polygon_array
        lo, hi = poly.min(axis=0), poly.max(axis=0)
        if len(poly) != 4 or not np.isclose(room.area_m2, np.prod(hi - lo), rtol=1e-6):
            return None
        return np.array([lo[0], lo[1], room.floor_z]), np.array([hi[0], hi[1], room.ceiling_z])

    def _tail(self, tr: RayTrace, listener: np.ndarray) -> np.ndarray:
        """Listener histogram over the traced time, extended by the ensemble decay."""
        cfg = self.config
        c = cfg.speed_of_sound_m_s
        box = self._room_box(listener)
        if box is not None:
            hist = box_histogram(tr, box[0], box[1], cfg.hist_bin_s, c, listener, cfg.air_absorption)
        else:
            hist = listener_histogram(tr, listener, cfg.receiver_radius_m, cfg.hist_bin_s, c, cfg.air_absorption)
        n_traced = int(tr.traced_m / c / cfg.hist_bin_s)
        hist = hist[:, :n_traced]
        n_total = int(np.ceil(cfg.max_rir_s / cfg.hist_bin_s))
        if n_total <= n_traced:
            return hist[:, :n_total]
        # anchor: mean level over the last 30 % of the traced part, at its centre time
        a0 = int(0.7 * n_traced)
        anchor = hist[:, a0:].mean(axis=1)
        t_anchor = 0.5 * (a0 + n_traced) * cfg.hist_bin_s
        t = (np.arange(n_traced, n_total) + 0.5) * cfg.hist_bin_s
        ext = anchor[:, None] * np.exp(-tr.decay_per_m[:, None] * c * (t - t_anchor)[None, :])
        out = np.concatenate([hist, ext], axis=1)
        # drop the part more than 80 dB below the tail's peak in every band
        peak = out.max()
        if peak > 0:
            alive = np.flatnonzero((out > peak * 1e-8).any(axis=0))
            out = out[:, : (alive[-1] + 1 if len(alive) else 1)]
        return out
