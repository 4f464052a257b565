"""The static dataset of random poses that pretrains the passive separator of active separation.

Each example is one second heard at a random agent pose while 2-4 dynamic sources play (the
episodes' rules: distinct types, >= 8 m apart, heard / unheard clips): the binaural
``mixture``, the target's binaural share ``target_binaural``, its dry ``target_mono`` and its
``target_type`` (index into the bank's dynamic types, as the env's observation). Examples
come from the houses of each split (``train`` / ``val`` / ``test`` scenes are disjoint, and
under ``unheard`` sounds so are their clips).

Layout: ``ROOT/manifest.json`` (config, the type list, shards) and one HDF5 file per (split,
scene, part) under ``ROOT/<split>/``, written to a temporary name and renamed when whole, so
an interrupted build resumes at the first missing shard. Same config, same bytes.
Reading: :class:`~avworld.data.separation_reader.SeparationData` (numpy) and
:class:`~avworld.data.separation_torch.SeparationTorchDataset` (torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from avworld.tasks.separation_episodes import SPLITS, SeparationEpisodeConfig, SeparationError

SEP_DATA_FORMAT = "avworld-separation-static"
SEP_DATA_VERSION = 1
FIELDS = ("mixture", "target_binaural", "target_mono", "target_type", "source_types", "num_sources", "agent_pose",
          "target_position", "target_distance_m", "target_direction_rad")


class SeparationDataError(SeparationError):
    """A static separation dataset cannot be built or read (bad config, other format, missing shard)."""


@dataclass(frozen=True)
class SeparationDataConfig:
    """What a static dataset holds (``avworld separation data make`` flags map to these fields).

    ``scenes``: houses per split (train, val, test) with ``rooms`` rooms (the env's
    ``split_scenes``); ``per_scene``: examples per house and split. Every ``poses_per_placement``
    examples share one placement of the sources (new clip segments and agent pose each); the
    number of sources is uniform in ``num_sources`` (inclusive range). The agent stands within
    ``near_radius_m`` of the target with probability ``near_prob`` (where the active agent
    mostly is), else anywhere navigable. ``shard_size``: examples per HDF5 file.
    """

    scenes: tuple[int, int, int] = (8, 2, 2)
    per_scene: tuple[int, int, int] = (500, 150, 150)
    rooms: tuple[int, int] = (5, 8)
    num_sources: tuple[int, int] = (2, 2)
    min_separation_m: float = 8.0
    sounds: str = "unheard"
    poses_per_placement: int = 4
    near_prob: float = 0.5
    near_radius_m: float = 3.0
    noise_snr_db: float | None = None
    warmup_steps: int = 1
    shard_size: int = 250
    bank_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise SeparationDataError(f"SeparationDataConfig.{name}: {msg}")

        for name in ("scenes", "per_scene", "rooms", "num_sources"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.scenes) != 3 or min(self.scenes) < 0 or self.scenes[0] < 1:
            bad("scenes", f"need (train >= 1, val >= 0, test >= 0) houses, got {self.scenes}")
        if len(self.per_scene) != 3 or min(self.per_scene) < 1:
            bad("per_scene", f"need three counts >= 1 (train, val, test), got {self.per_scene}")
        lo, hi = self.num_sources
        if not 1 <= lo <= hi <= 4:
            bad("num_sources", f"need 1 <= lo <= hi <= 4, got {self.num_sources}")
        for name, low in (("poses_per_placement", 1), ("shard_size", 1), ("warmup_steps", 0)):
            if getattr(self, name) < low:
                bad(name, f"must be >= {low}, got {getattr(self, name)}")
        if not 0 <= self.near_prob <= 1 or not self.near_radius_m > 0:
            bad("near_prob", "near_prob must lie in [0, 1] and near_radius_m be > 0")
        self.episode_config(lo)  # validates separation and sounds

    def episode_config(self, num_sources: int) -> SeparationEpisodeConfig:
        return SeparationEpisodeConfig(num_sources=num_sources, min_separation_m=self.min_separation_m,
                                       sounds=self.sounds)

    def sim_config(self):
        from avworld.sim.config import SimConfig

        return SimConfig.preset("grid", outputs=(), spectrogram=False, noise_snr_db=self.noise_snr_db, seed=self.seed)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ShardJob:
    split: str
    scene_index: int
    scene: str
    part: int
    start: int  # first example index within the scene
    count: int

    @property
    def relpath(self) -> str:
        return f"{self.split}/{self.split}-{self.scene_index:04d}-{self.part:03d}.h5"


def plan_shards(config: SeparationDataConfig) -> list[ShardJob]:
    """Every shard of the dataset, in build order (train, val, test; scene by scene)."""
    from avworld.tasks.episodes import split_scenes

    jobs = []
    for split, n_scenes, per in zip(SPLITS, config.scenes, config.per_scene):
        if n_scenes == 0:
            continue
        for i, spec in enumerate(split_scenes(split, n_scenes, config.rooms)):
            for part, start in enumerate(range(0, per, config.shard_size)):
                jobs.append(ShardJob(split, i, spec, part, start, min(config.shard_size, per - start)))
    return jobs


class _SceneSampler:
    """Draws the examples of one scene (placements, poses, clip segments) and renders them."""

    def __init__(self, config: SeparationDataConfig, job: ShardJob) -> None:
        from avworld.geometry.spec import load_scene_spec
        from avworld.sim.world import SharedWorld
        from avworld.tasks.separation_episodes import separation_types, sound_bank

        self.config, self.job = config, job
        self.world = SharedWorld(load_scene_spec(job.scene), config.sim_config())
        self.bank = sound_bank(config.bank_seed)
        self.types = {n: i for i, n in enumerate(separation_types(self.bank))}
        self._placement: tuple[int, object] | None = None

    def placement(self, j: int):
        from avworld.tasks.separation_episodes import sample_separation_episode

        if self._placement is None or self._placement[0] != j:
            cfg, job = self.config, self.job
            rng = np.random.default_rng([cfg.seed, SPLITS.index(job.split), job.scene_index, j, 0])
            k = int(rng.integers(cfg.num_sources[0], cfg.num_sources[1] + 1))
            ep = sample_separation_episode(self.world, job.scene, rng, cfg.episode_config(k), f"p{j}", job.split,
                                           cfg.bank_seed)
            self._placement = (j, ep)
        return self._placement[1]

    def example(self, e: int) -> dict:
        """Example ``e`` of the scene: placement ``e // poses_per_placement``, its own pose and segments."""
        from avworld.geometry.actions import Action
        from avworld.geometry.navigation import wrap_angle
        from avworld.sim.simulator import Simulator
        from avworld.sim.sources import SoundSourceSpec

        cfg, job = self.config, self.job
        ep = self.placement(e // cfg.poses_per_placement)
        rng = np.random.default_rng([cfg.seed, SPLITS.index(job.split), job.scene_index, e, 1])
        nav = self.world.nav
        target = np.asarray(ep.target.position)
        pts = nav.sample_navigable(rng, 64)
        if rng.random() < cfg.near_prob:
            near = pts[np.linalg.norm(pts - target[:2], axis=1) <= cfg.near_radius_m]
            xy = near[0] if len(near) else nav.snap(target[:2])
        else:
            xy = pts[0]
        yaw = float(rng.uniform(-np.pi, np.pi))
        warm = cfg.warmup_steps * self.world.config.step_s
        specs = []
        for s in ep.sources:
            dur = self.bank.natural_duration_s(s.sound)
            offset = round(float(rng.uniform(0.0, dur)), 3)
            start = warm - offset
            specs.append(SoundSourceSpec(s.position, s.sound, s.clip_index, start - dur if start > 0 else start))
        sim = Simulator(self.world, sound_bank=self.bank)
        obs = sim.reset((float(xy[0]), float(xy[1]), yaw), specs, seed=int(rng.integers(2**31)))
        for _ in range(cfg.warmup_steps):
            obs = sim.step(Action.STOP)
        types = np.full(4, -1, np.int16)
        types[: len(ep.sources)] = [self.types[s.sound] for s in ep.sources]
        per = np.asarray(obs["source_binaural"], np.float32)
        return {
            "mixture": obs["audio"].astype(np.float32), "target_binaural": per[0],
            "target_mono": np.asarray(obs["source_dry"][0], np.float32), "target_type": np.int16(types[0]),
            "source_types": types, "num_sources": np.int8(len(ep.sources)),
            "agent_pose": np.array([xy[0], xy[1], yaw]), "target_position": target,
            "target_distance_m": np.float32(obs["geodesic_distance_m"][0]),
            "target_direction_rad": np.float32(wrap_angle(np.arctan2(target[1] - xy[1], target[0] - xy[0]) - yaw)),
        }


def build_shard(root: Path, config: SeparationDataConfig, job: ShardJob,
                progress: Callable[[int], None] | None = None, sampler: _SceneSampler | None = None) -> dict:
    """Write one shard (atomically); returns its manifest entry."""
    import h5py

    sampler = sampler or _SceneSampler(config, job)
    rows = []
    for e in range(job.start, job.start + job.count):
        rows.append(sampler.example(e))
        if progress is not None:
            progress(1)
    path = root / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with h5py.File(tmp, "w", track_order=True) as f:
        for name in FIELDS:
            f.create_dataset(name, data=np.stack([r[name] for r in rows]))
        f.attrs.update({"format": SEP_DATA_FORMAT, "version": SEP_DATA_VERSION, "split": job.split,
                        "scene": job.scene, "scene_index": job.scene_index, "first_example": job.start,
                        "fingerprint": config.fingerprint()})
    os.replace(tmp, path)
    return {"path": job.relpath, "split": job.split, "scene": job.scene, "num_examples": job.count}


def _shard_done(path: Path, fingerprint: str) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("fingerprint") == fingerprint
    except OSError:
        return False


def build_separation_dataset(root: str | Path, config: SeparationDataConfig,
                             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Build (or resume) the dataset in ``root``; returns the manifest.

    ``progress(event, done, total)`` is called with ``("examples", examples_done, total)``
    after every example. Shards already there with this config's fingerprint are kept; a
    ``root`` holding another config's manifest raises :class:`SeparationDataError`.
    """
    from avworld.tasks.separation_episodes import separation_types, sound_bank

    root = Path(root)
    mpath = root / "manifest.json"
    fp = config.fingerprint()
    if mpath.exists():
        old = json.loads(mpath.read_text())
        if old.get("fingerprint") != fp:
            raise SeparationDataError(f"{root} holds a dataset of another config (fingerprint "
                                      f"{old.get('fingerprint')}, this one {fp}); choose another --out or delete it")
    root.mkdir(parents=True, exist_ok=True)
    jobs = plan_shards(config)
    total = sum(j.count for j in jobs)
    manifest = {"format": SEP_DATA_FORMAT, "version": SEP_DATA_VERSION, "fingerprint": fp,
                "config": asdict(config), "source_types": list(separation_types(sound_bank(config.bank_seed))),
                "sample_rate_hz": 16000, "complete": False, "shards": []}
    mpath.write_text(json.dumps(manifest, indent=1))
    done = 0
    sampler = None
    for job in jobs:
        path = root / job.relpath
        if path.exists() and _shard_done(path, fp):
            entry = {"path": job.relpath, "split": job.split, "scene": job.scene, "num_examples": job.count}
            done += job.count
        else:
            if sampler is None or sampler.job.scene != job.scene or sampler.job.split != job.split:
                sampler = _SceneSampler(config, job)
            sampler.job = job

            def tick(n: int, _d=[done]) -> None:  # noqa: B006 - running count of this shard
                _d[0] += n
                if progress is not None:
                    progress("examples", _d[0], total)

            entry = build_shard(root, config, job, tick, sampler)
            done += job.count
        manifest["shards"].append(entry)
        mpath.write_text(json.dumps(manifest, indent=1))
        if progress is not None:
            progress("examples", done, total)
    manifest["complete"] = True
    manifest["num_examples"] = {s: sum(e["num_examples"] for e in manifest["shards"] if e["split"] == s)
                                for s in SPLITS}
    mpath.write_text(json.dumps(manifest, indent=1))
    return json.loads(mpath.read_text())  # as a reader sees it (lists, not tuples)


def with_overrides(config: SeparationDataConfig, **kw) -> SeparationDataConfig:
    """``config`` with the non-None keyword values replaced."""
    return replace(config, **{k: v for k, v in kw.items() if v is not None})
