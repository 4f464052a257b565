"""Active audio-visual separation of dynamic sound sources as a gymnasium environment.

``gymnasium.make("avworld/ActiveSeparation-v0", **SeparationConfig fields)``: the agent
hears a binaural mixture of k dynamic sources and moves for ``num_steps`` (20) steps of 1 s
to hear the target better; the ground truth the separator is trained and scored on comes in
``info``. See :class:`ActiveSeparationEnv` and docs/separation.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from avworld.geometry.actions import Action
from avworld.geometry.navigation import wrap_angle
from avworld.sim.config import PRESETS, SimConfig
from avworld.sim.simulator import Simulator
from avworld.sim.sources import SoundSourceSpec
from avworld.tasks.episodes import split_scenes
from avworld.tasks.separation_episodes import (
    SPLITS,
    SeparationEpisode,
    SeparationEpisodeConfig,
    SeparationError,
    SeparationFileError,
    load_separation_episodes,
    sample_separation_episode,
    separation_types,
    sound_bank,
)
from avworld.tasks.worlds import WorldCache, chosen_episode, env_config
from avworld.vision.camera import CameraConfig

ENV_ID = "avworld/ActiveSeparation-v0"
#: the env's actions (no STOP): index -> simulator action; index 3 (STAY) only with ``allow_stay=True``
ACTIONS = (Action.MOVE_FORWARD, Action.TURN_LEFT, Action.TURN_RIGHT, Action.STOP)
MOVE_FORWARD, TURN_LEFT, TURN_RIGHT, STAY = 0, 1, 2, 3


@dataclass(frozen=True)
class SeparationConfig:
    """Options of :class:`ActiveSeparationEnv` (each can be passed to ``gymnasium.make``).

    ``preset``: motion and step length (``grid``: 1 m forward, 90 deg turns, 1 s steps, the
    SoundSpaces grid of the paper). ``num_steps``: observations per episode (T = 20; the
    episode is truncated after ``num_steps - 1`` actions). ``rgb`` / ``depth``: the visual
    observations (both off = audio only: no rendering, ~25 % faster steps). ``num_sources``,
    ``min_separation_m``, ``sounds`` (``unheard`` / ``heard``): episode rules for episodes
    drawn on the fly in ``scenes`` (default: ``num_scenes`` houses of ``split`` with ``rooms``
    rooms; None = 5-8 rooms for up to 2 sources, 8-12 for more); an episode file overrides
    them. ``noise_snr_db``: microphone noise on the mixture (None = none). ``warmup_steps``:
    seconds the sources play before the first observation, so that step 0 already hears the
    room's reverberation. ``allow_stay``: add action 3 STAY
    (keep the pose for a step; for the stand-in-place and DoA baselines, not the task's agent).
    """

    preset: str = "grid"
    width: int = 128
    height: int = 128
    rgb: bool = True
    depth: bool = False
    max_depth_m: float = 10.0
    num_steps: int = 20
    num_sources: int = 2
    min_separation_m: float = 8.0
    sounds: str = "unheard"
    noise_snr_db: float | None = None
    hrtf: str = "kemar"
    scenes: tuple[str, ...] = ()
    split: str = "train"
    num_scenes: int = 8
    rooms: tuple[int, int] | None = None
    episode: SeparationEpisodeConfig | None = None
    episodes_per_scene: int = 1000
    warmup_steps: int = 1
    allow_stay: bool = False
    world_cache: int | None = None
    bank_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise SeparationError(f"SeparationConfig.{name}: {msg}")

        if self.preset not in PRESETS:
            bad("preset", f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.split not in SPLITS:
            bad("split", f"unknown split {self.split!r}; choose one of {SPLITS}")
        for name, lo in (("num_steps", 1), ("num_scenes", 1), ("episodes_per_scene", 1), ("warmup_steps", 0),
                         ("width", 8), ("height", 8)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
                bad(name, f"must be an integer >= {lo}, got {v!r}")
        if self.noise_snr_db is not None and not math.isfinite(self.noise_snr_db):
            bad("noise_snr_db", f"must be a finite number of dB or None, got {self.noise_snr_db!r}")
        object.__setattr__(self, "scenes", tuple(self.scenes))
        if self.rooms is not None:
            object.__setattr__(self, "rooms", tuple(self.rooms))
        self.episode_config()  # validates num_sources, min_separation_m, sounds

    @property
    def house_rooms(self) -> tuple[int, int]:
        """``rooms``, or when None houses large enough for the sources to stand 8 m apart."""
        if self.rooms is not None:
            return self.rooms
        return (5, 8) if self.num_sources <= 2 else (8, 12)

    def episode_config(self) -> SeparationEpisodeConfig:
        base = self.episode or SeparationEpisodeConfig()
        return replace(base, num_sources=self.num_sources, min_separation_m=self.min_separation_m,
                       sounds=self.sounds)

    def sim_config(self) -> SimConfig:
        outputs = tuple(k for k, on in (("rgb", self.rgb), ("depth", self.depth)) if on)
        return SimConfig.preset(self.preset, camera=CameraConfig(width=self.width, height=self.height),
                                outputs=outputs, spectrogram=False, hrtf=self.hrtf, noise_snr_db=self.noise_snr_db,
                                seed=self.seed)


class ActiveSeparationEnv(gym.Env):
    """Move so as to hear one dynamic source among several; recover its sound at every step.

    ## Description
    ``num_sources`` (2) sources of distinct dynamic sound types (speech, music, background)
    stand >= 8 m apart (Euclidean, horizontal); the first is the target, and the agent starts
    under it. Every step lasts 1 s (``grid`` preset) and yields the binaural mixture heard in
    it; the separator must recover the target's dry (monaural) signal of that second.

    ## Action Space
    ``Discrete(3)``: 0 MOVE_FORWARD (1 m; blocked moves stop at the obstacle,
    ``info["collided"]``), 1 TURN_LEFT, 2 TURN_RIGHT (90 deg). No STOP. With
    ``allow_stay=True``, ``Discrete(4)``: 3 STAY keeps the pose for the step (baselines only).

    ## Observation Space
    ``rgb`` (H, W, 3) uint8 (if ``rgb``), ``depth`` (H, W, 1) float32 in [0, 1] (metres /
    ``max_depth_m``; if ``depth``), ``audio`` (2, 16000) float32: the binaural mixture of the
    step (left ear first, microphone noise included), ``target_type`` the target's index in
    :attr:`source_types` (``Discrete(len(source_types))``), ``step`` the step index
    (``Discrete(num_steps)``).

    ## Info
    ``target_mono`` (16000,) float32: the target's dry clip during the step (what must be
    recovered); ``target_binaural`` (2, 16000): the target's share of the mixture;
    ``source_binaurals`` (k, 2, 16000): every source's share (the mixture is their sum, plus
    noise); ``target_distance_m`` geodesic agent-target distance; ``target_direction_rad``
    the target's bearing counter-clockwise from the heading; ``scene``, ``episode_id``,
    ``source_types``, ``pose``, ``collided``, ``step``.

    ## Rewards
    Always 0: the dense reward of the task, ``-||M_{t+1} - M*_{t+1}||_1``, needs the
    separator's estimate, so the trainer computes it from ``info["target_mono"]``.

    ## Episode End
    Truncated after ``num_steps - 1`` actions (``num_steps`` observations); never terminated.

    ## Arguments
    ``gymnasium.make("avworld/ActiveSeparation-v0", episodes=PATH_OR_LIST, **SeparationConfig
    fields)``; ``reset(options={"episode_index": i})``, ``{"episode_id": ...}`` or
    ``{"episode": SeparationEpisode}`` pick an episode.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(self, config: SeparationConfig | None = None, episodes: str | Path | Sequence | None = None,
                 render_mode: str | None = None, **overrides) -> None:
        self.config = cfg = env_config(SeparationConfig, config, overrides, render_mode, "ActiveSeparationEnv",
                                       SeparationError)
        self.render_mode = render_mode
        self.sim_config = cfg.sim_config()
        self.episode_config = cfg.episode_config()
        self.episodes: list[SeparationEpisode] = []
        if isinstance(episodes, (str, Path)):
            _, self.episodes = load_separation_episodes(episodes)
            if not self.episodes:
                raise SeparationFileError(f"{episodes}: holds no episodes")
        elif episodes is not None:
            self.episodes = list(episodes)
        self.scenes = cfg.scenes or tuple(split_scenes(cfg.split, cfg.num_scenes, cfg.house_rooms))
        n_scenes = len({ep.scene for ep in self.episodes}) if self.episodes else len(self.scenes)
        self.worlds = WorldCache(self.sim_config, cfg.world_cache or min(n_scenes, 8))
        self.bank = sound_bank(cfg.bank_seed, self.sim_config.sample_rate_hz)
        #: the dynamic sound types; ``target_type`` observations index this tuple
        self.source_types = separation_types(self.bank)
        self._type_index = {n: i for i, n in enumerate(self.source_types)}
        n = self.sim_config.step_samples
        big = float(np.finfo(np.float32).max)
        obs = {}
        if cfg.rgb:
            obs["rgb"] = spaces.Box(0, 255, (cfg.height, cfg.width, 3), np.uint8)
        if cfg.depth:
            obs["depth"] = spaces.Box(0.0, 1.0, (cfg.height, cfg.width, 1), np.float32)
        obs["audio"] = spaces.Box(-big, big, (2, n), np.float32)
        obs["target_type"] = spaces.Discrete(len(self.source_types))
        obs["step"] = spaces.Discrete(cfg.num_steps)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Discrete(4 if cfg.allow_stay else 3)
        self.sim: Simulator | None = None
        self.episode: SeparationEpisode | None = None

    # ------------------------------------------------------------------ episodes
    def pick_episode(self, options: dict) -> SeparationEpisode:
        ep = chosen_episode(options, self.episodes, self.np_random, SeparationError)
        if ep is not None:
            return ep
        i = int(self.np_random.integers(len(self.scenes)))
        return self.scene_episode(i, int(self.np_random.integers(self.config.episodes_per_scene)))

    def scene_episode(self, scene_index: int, k: int) -> SeparationEpisode:
        """Episode ``k`` of ``scenes[scene_index]``: drawn with seed ``(seed, scene_index, k)``, exactly as
        ``avworld separation episodes make`` draws it."""
        spec, cfg = self.scenes[scene_index], self.config
        return sample_separation_episode(self.worlds.get(spec), spec,
                                         np.random.default_rng([cfg.seed, scene_index, k]), self.episode_config,
                                         f"{cfg.split}-{scene_index:04d}-{k:04d}", cfg.split, cfg.bank_seed)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        # what `state` needs to rebuild this episode: the generator before its draws, the options, the actions
        plain = {k: v.to_dict() if isinstance(v, SeparationEpisode) else v for k, v in options.items()}
        self._replay = {"rng": self.np_random.bit_generator.state, "options": plain, "actions": []}
        ep = self.pick_episode(options)
        world = self.worlds.get(ep.scene)
        if ep.scene_hash and ep.scene_hash != world.scene.content_hash:
            raise SeparationError(f"episode {ep.episode_id}: scene {ep.scene} has hash {world.scene.content_hash[:12]},"
                                  f" the episode expects {ep.scene_hash[:12]}; regenerate the episodes")
        unknown = [s.sound for s in ep.sources if s.sound not in self._type_index]
        if unknown:
            raise SeparationError(f"episode {ep.episode_id}: sound types {unknown} are not dynamic types of the bank")
        warm = self.config.warmup_steps * self.sim_config.step_s
        specs = [SoundSourceSpec(s.position, s.sound, s.clip_index, start_offset_s=self._start_time(s, warm))
                 for s in ep.sources]
        self.sim = Simulator(world, sound_bank=self.bank)
        obs = self.sim.reset(agent_pose=ep.start_pose, sources=specs, seed=int(self.np_random.integers(2**31)))
        for _ in range(self.config.warmup_steps):
            obs = self.sim.step(Action.STOP)
        self.episode, self._world = ep, world
        self._step = 0
        self._last = obs
        return self._obs(obs), self._info(obs)

    def step(self, action):
        if self.sim is None or self._step >= self.config.num_steps - 1:
            raise SeparationError("call reset() before step() (the episode has ended)")
        a = self._action_index(action)
        obs = self.sim.step(ACTIONS[a])
        self._replay["actions"].append(a)
        self._step += 1
        self._last = obs
        truncated = self._step >= self.config.num_steps - 1
        return self._obs(obs), 0.0, False, truncated, self._info(obs)

    @property
    def state(self) -> dict | None:
        """The env's state as plain data (None before the first reset); settable.

        The random generator's state before the current episode was drawn, the reset options
        and the actions since; setting it replays them (the simulator is deterministic), so the
        episode and the later ones continue bit-identically (exact resume of a trainer's envs).
        """
        r = getattr(self, "_replay", None)
        return None if r is None else {"rng": r["rng"], "options": dict(r["options"]), "actions": list(r["actions"])}

    @state.setter
    def state(self, value: dict | None) -> None:
        if value is None:
            return
        try:
            rng, options, actions = value["rng"], dict(value["options"]), value["actions"]
        except (TypeError, KeyError):
            raise SeparationError("ActiveSeparationEnv.state must be a dict with 'rng', 'options' and 'actions', "
                                  "as the state property returns it") from None
        if isinstance(options.get("episode"), dict):
            options["episode"] = SeparationEpisode.from_dict(options["episode"])
        self.np_random.bit_generator.state = rng
        self.reset(options=options)
        for a in actions:
            self.step(int(a))

    def render(self):
        if self.render_mode == "rgb_array" and self.sim is not None:
            frame = self._last.get("rgb")
            return frame if frame is not None else self._world.renderer.render(self.sim.pose, outputs=("rgb",))["rgb"]
        return None

    # ------------------------------------------------------------------ helpers
    def _start_time(self, source, warm_s: float) -> float:
        """When the looping clip starts, so that its sample at ``offset_s`` plays at the first observed
        step (``warm_s``): ``warm_s - offset_s``, moved a whole clip earlier if that is after 0."""
        t = warm_s - source.offset_s
        return t - self.bank.natural_duration_s(source.sound) if t > 0 else t

    def _action_index(self, action) -> int:
        a = action
        if isinstance(a, np.ndarray) and a.size == 1 and np.issubdtype(a.dtype, np.integer):
            a = a.reshape(()).item()
        n = int(self.action_space.n)
        if isinstance(a, int | np.integer) and not isinstance(a, bool | np.bool_) and 0 <= int(a) < n:
            return int(a)
        stay = ", 3 (STAY)" if n == 4 else " (3 STAY needs allow_stay=True)"
        raise SeparationError(f"action must be an integer 0 (MOVE_FORWARD), 1 (TURN_LEFT), 2 (TURN_RIGHT){stay}, "
                              f"got {action!r}")

    def _obs(self, sim_obs: dict) -> dict:
        out = {}
        if self.config.rgb:
            out["rgb"] = sim_obs["rgb"]
        if self.config.depth:
            out["depth"] = np.clip(sim_obs["depth"] / np.float32(self.config.max_depth_m), 0, 1).astype(np.float32)
        out["audio"] = sim_obs["audio"].astype(np.float32, copy=False)
        out["target_type"] = self._type_index[self.episode.target.sound]
        out["step"] = self._step
        return out

    def _info(self, sim_obs: dict) -> dict:
        per_source = np.asarray(sim_obs["source_binaural"], np.float32)
        x, y, yaw = self.sim.pose
        tx, ty = self.episode.target.position[:2]
        return {
            "target_mono": np.asarray(sim_obs["source_dry"][0], np.float32),
            "target_binaural": per_source[0],
            "source_binaurals": per_source,
            "target_distance_m": float(sim_obs["geodesic_distance_m"][0]),
            "target_direction_rad": float(wrap_angle(math.atan2(ty - y, tx - x) - yaw)),
            "scene": self.episode.scene,
            "episode_id": self.episode.episode_id,
            "source_types": self.episode.source_types,
            "pose": self.sim.pose.copy(),
            "collided": bool(sim_obs.get("collided", False)),
            "step": self._step,
        }
