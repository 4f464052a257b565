"""Simulator configuration and presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from avworld.acoustics.spatial_rir import AcousticConfig
from avworld.vision.camera import CameraConfig


class SimConfigError(ValueError):
    """A simulator configuration value is invalid."""


#: Motion and timing presets: forward step (m), turn (deg), step duration (s).
PRESETS: dict[str, dict] = {
    "soundspaces2": {"forward_step_m": 0.25, "turn_deg": 10.0, "step_s": 0.25},
    "avw": {"forward_step_m": 0.15, "turn_deg": 10.0, "step_s": 0.15},
    "grid": {"forward_step_m": 1.0, "turn_deg": 90.0, "step_s": 1.0},
}


@dataclass(frozen=True)
class SimConfig:
    """Everything a :class:`~avworld.sim.simulator.Simulator` needs besides the scene.

    Discrete actions move ``forward_step_m`` or turn ``turn_deg``; every step lasts
    ``step_s`` of simulated time, and the audio of a step is what the ears heard during
    it. Continuous actions are (linear m/s, angular rad/s) velocities held for one step,
    clipped to ``max_speed_m_s`` / ``max_turn_rate_rad_s``.
    """

    forward_step_m: float = 0.25
    turn_deg: float = 10.0
    step_s: float = 0.25
    sample_rate_hz: int = 16000
    camera: CameraConfig = field(default_factory=CameraConfig)
    agent_radius_m: float = 0.1
    nav_resolution_m: float = 0.05
    outputs: tuple[str, ...] = ("rgb", "depth")  # () renders nothing (audio-only use)
    spectrogram: bool = True
    hrtf: str = "kemar"
    noise_snr_db: float | None = None
    acoustics: AcousticConfig = field(default_factory=AcousticConfig)
    max_speed_m_s: float = 1.0
    max_turn_rate_rad_s: float = float(np.pi / 2)
    rir_cache_items: int = 10_000
    binaural_cache_items: int = 256
    #: camera views kept per world, by exact pose: an agent that turns back, or a pooled episode's
    #: start, sees the same image again without rendering it (0 keeps none; ~115 kB each at 128x128
    #: RGB-D; at most ``avworld.sim.world.VIEW_CACHE_BYTES``, 32 MB, per world). Views are deterministic,
    #: so outputs never depend on this cache.
    render_cache_items: int = 64
    seed: int = 0
    #: threads per simulator step: the camera's rays are split between them and the step's audio
    #: is computed while they render (results are identical for any count). None = automatic:
    #: 1 in multiprocessing workers (one process per core already), else 2 if the process may
    #: use 2 cores. Set 1 when running one simulator process per core by other means.
    threads: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise SimConfigError(f"SimConfig.{name}: {msg}")

        if not self.forward_step_m > 0:
            bad("forward_step_m", f"must be > 0, got {self.forward_step_m}")
        if not 0 < self.turn_deg <= 180:
            bad("turn_deg", f"must lie in (0, 180], got {self.turn_deg}")
        n = self.step_s * self.sample_rate_hz
        if not self.step_s > 0 or abs(n - round(n)) > 1e-6:
            bad("step_s", f"must be > 0 and a whole number of samples at {self.sample_rate_hz} Hz, got {self.step_s}")
        if self.acoustics.sample_rate_hz != self.sample_rate_hz:
            object.__setattr__(self, "acoustics", replace(self.acoustics, sample_rate_hz=self.sample_rate_hz))
        for o in self.outputs:
            if o not in ("rgb", "depth", "semantic"):
                bad("outputs", f"unknown output {o!r}; choose from rgb, depth, semantic")
        if isinstance(self.render_cache_items, bool) or not isinstance(self.render_cache_items, int | np.integer) \
                or self.render_cache_items < 0:
            bad("render_cache_items", f"must be an integer >= 0 (0 keeps no views), got {self.render_cache_items!r}")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int | np.integer)
            or not 1 <= self.threads <= 64
        ):
            bad("threads", f"must be None (automatic) or an integer in 1..64, got {self.threads!r}")

    @property
    def step_samples(self) -> int:
        return int(round(self.step_s * self.sample_rate_hz))

    @classmethod
    def preset(cls, name: str, **overrides) -> SimConfig:
        """A preset (``soundspaces2``, ``avw``, ``grid``) with optional field overrides."""
        if name not in PRESETS:
            raise SimConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})
