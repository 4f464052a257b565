"""The simulator: an agent in a scene with sound sources; per step, what it sees and hears.

Time runs in steps of ``config.step_s``. The observation after ``reset`` covers
[0, step_s); after the k-th action it covers [k step_s, (k + 1) step_s), with the agent
at its new pose: the images show that pose and the audio is what the two ears heard
during that interval (reverberation of earlier sound included). An impulse a source
emits at time t therefore appears in the observation of the step containing
t + d / c.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avworld.acoustics.features import spectrogram
from avworld.acoustics.signals import SourceSignal
from avworld.acoustics.stream import BinauralStream, StreamConfig
from avworld.geometry.actions import Action
from avworld.geometry.navigation import wrap_angle
from avworld.geometry.scene import Scene
from avworld.sim.config import SimConfig
from avworld.sim.sources import SoundSourceSpec, SourceError
from avworld.sim.world import SharedWorld


class SimulatorError(ValueError):
    """Bad simulator input (start pose, sources, actions)."""


@dataclass(frozen=True)
class SimulatorSnapshot:
    """A :class:`Simulator`'s dynamic state (:meth:`Simulator.snapshot`); opaque, restore it with
    :meth:`Simulator.restore`. Source signals and geodesic fields are read-only and shared."""

    pose: np.ndarray
    step_index: int
    sources: tuple
    signals: list
    stream: BinauralStream
    obs: dict | None
    fields: dict


class Simulator:
    """One agent and N sound sources in a scene (see module docstring for timing)."""

    def __init__(self, scene: Scene | SharedWorld, config: SimConfig | None = None, sound_bank=None) -> None:
        if isinstance(scene, SharedWorld):
            self.world = scene
            if config is not None and config != scene.config:
                raise SimulatorError("a SharedWorld carries its own config; build the SharedWorld with this config")
        else:
            self.world = SharedWorld(scene, config)
        self.config = self.world.config
        self._bank = sound_bank
        self.sources: tuple[SoundSourceSpec, ...] = ()
        self._signals: list[SourceSignal] = []
        self._stream: BinauralStream | None = None
        self.pose = np.zeros(3)
        self.step_index = 0
        self._obs: dict | None = None
        self._fields: dict[int, tuple] = {}

    # ------------------------------------------------------------------ setup
    @property
    def sound_bank(self):
        if self._bank is None:
            from avworld.sounds import SoundBank

            self._bank = SoundBank(sample_rate_hz=self.config.sample_rate_hz, seed=self.config.seed)
        return self._bank

    @property
    def time_s(self) -> float:
        return self.step_index * self.config.step_s

    def reset(self, agent_pose=None, sources: Sequence[SoundSourceSpec] = (), seed: int | None = None) -> dict:
        """Place the agent (x, y, yaw_rad; random navigable pose if None) and the sources."""
        rng = np.random.default_rng(self.config.seed if seed is None else seed)
        nav = self.world.nav
        if agent_pose is None:
            xy = nav.sample_navigable(rng, 1)[0]
            agent_pose = (xy[0], xy[1], float(rng.uniform(-np.pi, np.pi)))
        pose = np.asarray(agent_pose, dtype=float).reshape(-1)
        if pose.shape != (3,) or not np.all(np.isfinite(pose)):
            raise SimulatorError(f"agent pose must be finite (x, y, yaw_rad), got {agent_pose!r}")
        if not nav.is_navigable(pose[:2]):
            raise SimulatorError(
                f"agent start {pose[:2].round(3).tolist()} is not navigable (inside furniture/walls or outside); "
                "pick a point from world.nav.sample_navigable()"
            )
        self.sources = tuple(sources)
        self._signals = []
        self._fields: dict[int, tuple] = {}
        for k, spec in enumerate(self.sources):
            if not isinstance(spec, SoundSourceSpec):
                raise SourceError(f"source {k} must be a SoundSourceSpec, got {type(spec).__name__}")
            for t in (0.0, 1e9):  # the start, and the end of a path
                self.world.engine.check_position(spec.position_at(t), f"source {k} ({spec.sound})")
            clip = np.asarray(self.sound_bank.clip(spec.sound, spec.clip_index), dtype=np.float32)
            clip = clip * np.float32(10.0 ** (spec.gain_db / 20.0))
            self._signals.append(SourceSignal(clip, self.config.sample_rate_hz, spec.loop, spec.start_offset_s))
        self._stream = BinauralStream(
            StreamConfig(
                sample_rate_hz=self.config.sample_rate_hz,
                chunk_s=self.config.step_s,
                noise_snr_db=self.config.noise_snr_db,
                max_rir_s=self.config.acoustics.max_rir_s + 0.2,
            ),
            num_sources=max(1, len(self.sources)),
            seed=int(rng.integers(2**31)),
            dry_caches=self.world.dry_spectrum_caches(max(1, len(self.sources))),
        )
        self.pose = np.array([pose[0], pose[1], float(wrap_angle(pose[2]))])
        self.step_index = 0
        self._obs = self._observe(collided=False)
        return self._obs

    # ------------------------------------------------------------------ acting
    def step(self, action) -> dict:
        """Apply a discrete :class:`Action` (or int) or a continuous (linear m/s, angular rad/s)."""
        if self._stream is None:
            raise SimulatorError("call reset() before step()")
        cfg, nav = self.config, self.world.nav
        x, y, yaw = self.pose
        collided = False
        if isinstance(action, (int, np.integer, Action)):
            try:
                a = Action(int(action))
            except ValueError:
                raise SimulatorError(f"unknown action {action!r}; use {[a.name for a in Action]}") from None
            if a != Action.STOP:
                x, y, yaw, collided = nav.apply_action(x, y, yaw, a, cfg.forward_step_m, cfg.turn_deg)
        else:
            v = np.asarray(action, dtype=float).reshape(-1)
            if v.shape != (2,) or not np.all(np.isfinite(v)):
                raise SimulatorError(f"continuous action must be (linear_m_s, angular_rad_s), got {action!r}")
            lin = float(np.clip(v[0], -cfg.max_speed_m_s, cfg.max_speed_m_s))
            ang = float(np.clip(v[1], -cfg.max_turn_rate_rad_s, cfg.max_turn_rate_rad_s))
            yaw_mid = yaw + 0.5 * ang * cfg.step_s  # move along the mean heading of the step
            if lin != 0.0:
                heading = yaw_mid if lin > 0 else yaw_mid + np.pi
                (x, y), collided = nav.move_forward((x, y), heading, abs(lin) * cfg.step_s)
            yaw = float(wrap_angle(yaw + ang * cfg.step_s))
        self.pose = np.array([x, y, yaw], dtype=float)
        self.step_index += 1
        self._obs = self._observe(collided)
        return self._obs

    # ------------------------------------------------------------------ snapshots
    def snapshot(self) -> SimulatorSnapshot:
        """The simulator's dynamic state (pose, time, sources, carried reverberation, noise generator,
        last observation), independent of later steps; :meth:`restore` returns to it, :meth:`clone`
        makes a new simulator in it. The world (scene, renderer, RIR caches) is shared, not copied."""
        if self._stream is None:
            raise SimulatorError("call reset() before snapshot()")
        return SimulatorSnapshot(self.pose.copy(), self.step_index, self.sources, list(self._signals),
                                 self._stream.copy(), None if self._obs is None else dict(self._obs),
                                 {k: (p, f, dict(d)) for k, (p, f, d) in self._fields.items()})

    def restore(self, snap: SimulatorSnapshot) -> None:
        """Return to a :meth:`snapshot` of this simulator (or of one on the same world); the snapshot
        stays usable (it is copied again), so one snapshot can be restored any number of times."""
        if not isinstance(snap, SimulatorSnapshot):
            raise SimulatorError(f"restore() takes a SimulatorSnapshot from snapshot(), got {type(snap).__name__}")
        self.pose, self.step_index, self.sources = snap.pose.copy(), snap.step_index, snap.sources
        self._signals, self._stream = list(snap.signals), snap.stream.copy()
        self._obs = None if snap.obs is None else dict(snap.obs)
        self._fields = {k: (p, f, dict(d)) for k, (p, f, d) in snap.fields.items()}

    def clone(self) -> Simulator:
        """A new simulator on the same world in this one's current state: stepping it leaves this one
        untouched, and gives byte-identical observations to stepping this one with the same actions."""
        new = Simulator(self.world, sound_bank=self._bank)
        new.restore(self.snapshot())
        return new

    def observe(self) -> dict:
        if self._obs is None:
            raise SimulatorError("call reset() first")
        return self._obs

    # ------------------------------------------------------------------ sensing
    def _observe(self, collided: bool) -> dict:
        cfg, world = self.config, self.world
        x, y, yaw = self.pose
        # the camera's rays are traced on the renderer's worker threads while this thread
        # computes the audio, then it helps with what is left (identical results either way)
        job = world.view(self.pose, cfg.outputs) if cfg.outputs else None
        n = cfg.step_samples
        t0 = self.step_index * n
        ear = world.ear_position(x, y)
        t_mid = (self.step_index + 0.5) * cfg.step_s
        extra = {}
        if self.sources:
            positions = [s.position_at(t_mid) for s in self.sources]
            dry = [sig.read(t0, n) for sig in self._signals]
            rirs = [world.binaural_split(p, ear, yaw) for p in positions]
            mix, per_source = self._stream.step_per_source(dry, rirs, None, [self._dry_key(k, t0, n)
                                                                                for k in range(len(dry))])
            extra["source_binaural"] = per_source
            extra["source_dry"] = np.stack(dry)
            extra["source_positions"] = np.stack(positions)
            extra["geodesic_distance_m"] = np.array([self._geodesic(k, p) for k, p in enumerate(positions)])
        else:
            mix = np.zeros((2, n), np.float32)
        spec = spectrogram(mix) if cfg.spectrogram else None
        obs = dict(job.result()) if job is not None else {}  # () = audio only
        obs.update(extra)
        obs["audio"] = mix
        if spec is not None:
            obs["spectrogram"] = spec
        obs["pose"] = self.pose.copy()
        obs["time_s"] = self.step_index * cfg.step_s
        obs["collided"] = bool(collided)
        return obs

    def _dry_key(self, k: int, t0: int, n: int):
        """Where in its loop source ``k``'s chunk starts, when its loop is at most 64 chunks long (the
        stream then reuses the chunk's spectra each time round); None otherwise."""
        sig = self._signals[k]
        first = t0 - sig.start_offset_samples
        length = sig.num_samples
        if not sig.loop or first < 0 or length // math.gcd(length, n) > 64:
            return None
        return first % length

    def _geodesic(self, k: int, position: np.ndarray) -> float:
        """Geodesic distance from the agent to source ``k``; the field is kept per source while
        the source stays put, and distances per agent position (discrete moves revisit them)."""
        nav = self.world.nav
        cached = self._fields.get(k)
        if cached is None or not np.array_equal(cached[0], position):
            cached = self._fields[k] = (np.array(position, copy=True), nav.geodesic_field(nav.snap(position[:2])), {})
        distances = cached[2]
        key = (float(self.pose[0]), float(self.pose[1]))
        d = distances.get(key)
        if d is None:
            if len(distances) >= 4096:
                distances.pop(next(iter(distances)))
            d = distances[key] = float(cached[1].distance_at(self.pose[:2]))
        return d
