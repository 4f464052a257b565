"""Configuration of AVW trajectory datasets: what one trajectory records, and the dataset recipe.

:class:`TrajectoryConfig` says how one trajectory is drawn and recorded (frame size,
motion patterns, distance/level rules, reward, audio storage); :class:`DatasetConfig`
adds the scene set, the number of trajectories, the shard size, the 6:1:2 scene split
and the seed. :data:`PRESETS` holds the named recipes (``avw-tiny``, ``avw-small``,
``avw-4k``); :func:`preset` returns one with overrides.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

from avworld.data.errors import DatasetConfigError

#: The three motion patterns of AVW-4k (index = the ``pattern`` code stored per trajectory).
PATTERNS = ("from_source", "to_source", "random")
#: Reward variants: ``distance`` = decrease of the geodesic distance to the source;
#: ``navigation`` = SoundSpaces' AudioGoal reward (distance term + slack + success bonus).
REWARDS = ("distance", "navigation")
AUDIO_FORMATS = ("float16", "int16")
#: Full-scale value of int16 audio: stored = round(clip(x / audio_full_scale) * INT16_MAX).
INT16_MAX = 32767


@dataclass(frozen=True)
class TrajectoryConfig:
    """How one trajectory is drawn and recorded.

    Motion: ``motion_preset`` names the simulator preset (``avw``: forward 0.15 m, turn
    10 deg, 0.15 s per step at 16 kHz); the agent follows the geodesic shortest path
    between the pattern's start and goal and ends with STOP, at most ``max_frames``
    frames. The start-goal geodesic distance lies in [``min_path_m``, ``max_path_m``],
    and every point of the path stays within ``max_source_distance_m`` (geodesic) of the
    source, so the source is always audible; a recording whose level
    (10 log10 of the mean square of all samples) is below ``min_level_dbfs`` is redrawn.
    The source stands ``source_height_m`` above the floor over a navigable point, so the
    ears (1.5 m) never come closer than ``1.5 - source_height_m``.

    Storage: RGB is uint8; depth (``depth=True``) float16 metres; audio ``float16``
    (stored = x) or ``int16`` (stored = round(clip(x / audio_full_scale, -1, 1) * 32767)).
    ``compression_level`` is the gzip level of the frame arrays (0 = uncompressed; float16 audio is
    always stored uncompressed, see :func:`avworld.data.storage.compressed_field`; levels 1-3 are
    compressed by ISA-L, 4-9 by zlib, see :func:`avworld.data.storage.deflate_chunk`).
    """

    image_size: int = 128
    hfov_deg: float = 90.0
    depth: bool = False
    motion_preset: str = "avw"
    sound: str = "telephone_ringing"
    source_height_m: float = 1.0
    patterns: tuple[str, ...] = PATTERNS
    max_frames: int = 500
    min_path_m: float = 1.5
    max_path_m: float = 25.0
    max_source_distance_m: float = 15.0
    min_level_dbfs: float = -60.0
    success_distance_m: float = 1.0
    reward: str = "distance"
    success_reward: float = 10.0
    slack_reward: float = -0.01
    audio_format: str = "float16"
    audio_full_scale: float = 1.0
    compression_level: int = 1
    max_tries: int = 100

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise DatasetConfigError(f"TrajectoryConfig.{name}: {msg}")

        from avworld.sim.config import PRESETS as SIM_PRESETS

        if not 16 <= self.image_size <= 1024:
            bad("image_size", f"must lie in 16..1024 pixels, got {self.image_size}")
        if not 10 <= self.hfov_deg <= 170:
            bad("hfov_deg", f"must lie in [10, 170] degrees, got {self.hfov_deg}")
        if self.motion_preset not in SIM_PRESETS:
            bad("motion_preset", f"unknown preset {self.motion_preset!r}; choose one of {sorted(SIM_PRESETS)}")
        if not 0.1 <= self.source_height_m <= 1.45:
            bad("source_height_m", f"must lie in [0.1, 1.45] m (below the 1.5 m ears), got {self.source_height_m}")
        object.__setattr__(self, "patterns", tuple(self.patterns))
        if not self.patterns or any(p not in PATTERNS for p in self.patterns):
            bad("patterns", f"use a non-empty subset of {PATTERNS}, got {self.patterns}")
        if not 2 <= self.max_frames <= 500:
            bad("max_frames", f"must lie in 2..500 (AVW trajectories have at most 500 frames), got {self.max_frames}")
        if not 0 < self.min_path_m < self.max_path_m:
            bad("min_path_m", f"need 0 < min_path_m < max_path_m, got {self.min_path_m}, {self.max_path_m}")
        if not self.max_source_distance_m > self.min_path_m:
            bad("max_source_distance_m", f"must exceed min_path_m={self.min_path_m}, got {self.max_source_distance_m}")
        if not math.isfinite(self.min_level_dbfs) or self.min_level_dbfs > 0:
            bad("min_level_dbfs", f"must be a finite level <= 0 dBFS, got {self.min_level_dbfs}")
        if not self.success_distance_m > 0:
            bad("success_distance_m", f"must be > 0, got {self.success_distance_m}")
        if self.reward not in REWARDS:
            bad("reward", f"unknown reward {self.reward!r}; choose one of {REWARDS}")
        if self.audio_format not in AUDIO_FORMATS:
            bad("audio_format", f"unknown format {self.audio_format!r}; choose one of {AUDIO_FORMATS}")
        if not self.audio_full_scale > 0:
            bad("audio_full_scale", f"must be > 0, got {self.audio_full_scale}")
        if not 0 <= self.compression_level <= 9:
            bad("compression_level", f"gzip level must lie in 0..9, got {self.compression_level}")
        if self.max_tries < 1:
            bad("max_tries", f"must be >= 1, got {self.max_tries}")

    def sim_config(self):
        """The :class:`~avworld.sim.config.SimConfig` every trajectory is recorded (and replayed) with."""
        from avworld.sim.config import SimConfig
        from avworld.vision.camera import CameraConfig

        camera = CameraConfig(width=self.image_size, height=self.image_size, hfov_deg=self.hfov_deg)
        outputs = ("rgb", "depth") if self.depth else ("rgb",)
        return SimConfig.preset(self.motion_preset, camera=camera, outputs=outputs, spectrogram=False)


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset recipe: scenes, trajectories per scene, shards, split and seed.

    ``scenes``: explicit scene specs (``house:SEED:ROOMS``, saved scenes or meshes); empty
    means ``num_scenes`` procedural houses ``house:scene_seed_base + i:ROOMS`` with a room
    count drawn from ``rooms``. Scenes are split ``split_ratio`` (train:val:test, 6:1:2) by
    scene, every split getting at least one. Each scene's trajectories are grouped into
    shards of at most ``trajectories_per_shard``. Everything random derives from ``seed``.
    """

    name: str = "custom"
    scenes: tuple[str, ...] = ()
    num_scenes: int = 9
    rooms: tuple[int, int] = (2, 4)
    scene_seed_base: int = 0
    trajectories_per_scene: int = 10
    trajectories_per_shard: int = 20
    split_ratio: tuple[int, int, int] = (6, 1, 2)
    seed: int = 0
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise DatasetConfigError(f"DatasetConfig.{name}: {msg}")

        object.__setattr__(self, "scenes", tuple(str(s) for s in self.scenes))
        object.__setattr__(self, "rooms", tuple(int(r) for r in self.rooms))
        object.__setattr__(self, "split_ratio", tuple(int(r) for r in self.split_ratio))
        if isinstance(self.trajectory, dict):
            object.__setattr__(self, "trajectory", TrajectoryConfig(**self.trajectory))
        n = len(self.scenes) or self.num_scenes
        if n < 3:
            bad("num_scenes", f"need at least 3 scenes (one per split), got {n}")
        if len(self.rooms) != 2 or not 1 <= self.rooms[0] <= self.rooms[1] <= 12:
            bad("rooms", f"must be (lo, hi) with 1 <= lo <= hi <= 12, got {self.rooms}")
        if self.trajectories_per_scene < 1 or self.trajectories_per_shard < 1:
            bad("trajectories_per_scene", "trajectories_per_scene and trajectories_per_shard must be >= 1")
        if len(self.split_ratio) != 3 or min(self.split_ratio) < 1:
            bad("split_ratio", f"must be three positive integers (train, val, test), got {self.split_ratio}")
        if self.seed < 0 or self.scene_seed_base < 0:
            bad("seed", "seed and scene_seed_base must be >= 0")

    @property
    def num_scene_total(self) -> int:
        return len(self.scenes) or self.num_scenes

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict) -> DatasetConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DatasetConfigError(f"unknown DatasetConfig field(s) {unknown}; known: {sorted(names)}")
        d = dict(d)
        if isinstance(d.get("trajectory"), dict):
            tnames = {f.name for f in fields(TrajectoryConfig)}
            t_unknown = sorted(set(d["trajectory"]) - tnames)
            if t_unknown:
                raise DatasetConfigError(f"unknown TrajectoryConfig field(s) {t_unknown}; known: {sorted(tnames)}")
            d["trajectory"] = TrajectoryConfig(**d["trajectory"])
        return cls(**d)

    def config_hash(self) -> str:
        """Hash of every field that changes the generated bytes (the ``name`` does not)."""
        d = self.to_dict()
        d.pop("name")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: Named recipes. avw-4k is the paper scale (76 scenes, ~4,500 trajectories, ~720k frames).
PRESETS: dict[str, DatasetConfig] = {
    "avw-tiny": DatasetConfig(
        name="avw-tiny", num_scenes=3, rooms=(2, 2), trajectories_per_scene=3, trajectories_per_shard=3,
        trajectory=TrajectoryConfig(image_size=64, max_frames=40, min_path_m=1.0, max_path_m=3.0),
    ),
    "avw-small": DatasetConfig(
        name="avw-small", num_scenes=9, rooms=(2, 4), trajectories_per_scene=12, trajectories_per_shard=12,
        trajectory=TrajectoryConfig(max_frames=200),
    ),
    # 6-12 room houses and >= 10 m paths give ~160 frames per trajectory, as in AVW-4k
    # (planned, not recorded: mean 160, median 150, max 299 frames over 90 trajectories of 10 scenes)
    "avw-4k": DatasetConfig(
        name="avw-4k", num_scenes=76, rooms=(6, 12), trajectories_per_scene=60, trajectories_per_shard=20,
        trajectory=TrajectoryConfig(min_path_m=10.0, max_path_m=30.0, max_source_distance_m=20.0),
    ),
}


def preset(name: str, **overrides) -> DatasetConfig:
    """A named recipe (:data:`PRESETS`) with field overrides; ``trajectory`` fields may be
    given as a dict that updates the preset's :class:`TrajectoryConfig`."""
    if name not in PRESETS:
        raise DatasetConfigError(f"unknown dataset preset {name!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[name]
    traj = overrides.pop("trajectory", None)
    if isinstance(traj, dict):
        overrides["trajectory"] = replace(base.trajectory, **traj)
    elif traj is not None:
        overrides["trajectory"] = traj
    try:
        return replace(base, **overrides)
    except TypeError as exc:
        raise DatasetConfigError(f"bad override for preset {name!r}: {exc}") from None
