"""AudioGoal navigation as a gymnasium environment (SoundSpaces semantics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from avworld.acoustics.features import spectrogram_shape
from avworld.geometry.actions import Action
from avworld.geometry.navigation import wrap_angle
from avworld.sim.config import PRESETS, SimConfig
from avworld.sim.simulator import Simulator
from avworld.sim.sources import SoundSourceSpec
from avworld.sim.world import SharedWorld
from avworld.tasks.episode_pool import fresh_episode, pooled_episode
from avworld.tasks.episodes import (
    AudioGoalEpisode,
    EpisodeConfig,
    EpisodeError,
    EpisodeFileError,
    episode_config_of,
    load_episodes,
    split_scenes,
)
from avworld.tasks.worlds import WorldCache, chosen_episode, discrete_action, env_config
from avworld.vision.camera import CameraConfig

OBSERVATION_SETS = {"audiovisual": ("rgb", "depth", "audio", "spectrogram"), "audio": ("audio", "spectrogram"),
                    "vision": ("rgb", "depth"), "audiodepth": ("depth", "audio", "spectrogram")}


@dataclass(frozen=True)
class AudioGoalConfig:
    """Options of :class:`AudioGoalEnv` (every field can be passed to ``gymnasium.make``).

    ``observations`` picks the observation set (``audiovisual``, ``audio``, ``vision``, or
    ``audiodepth``: depth and sound without RGB, what SoundSpaces' AudioGoal agents see);
    ``pointgoal`` adds the GPS+compass goal vector (AudioPointGoal). Without an episode
    file, episodes are sampled on the fly in ``scenes`` (default: ``num_scenes`` houses of
    ``split`` with ``rooms`` rooms) with ``episode`` rules: each reset draws a scene, then one
    of that scene's ``episodes_per_scene`` pooled episodes (:mod:`avworld.tasks.episode_pool`;
    episode ``k`` of scene ``i`` is sampled with seed ``(seed, i, k)`` on first use, like
    ``make_episodes``), so repeats reuse their computed state; ``episodes_per_scene=0``
    samples a new episode at every reset (unbounded variety, several times slower resets).
    ``world_cache`` is how many scene worlds the env keeps built (each ~100-200 MB); ``None``
    keeps every scene it samples from (and up to 8 scenes of an episode file or list): a
    smaller cache rebuilds a world (~1-2 s) on most resets. ``render_cache_items`` camera views
    are kept per world by exact pose (:attr:`SimConfig.render_cache_items`: same images, fewer
    renders when the agent turns back, bumps into a wall or restarts at a pooled start; ~115 kB a
    view at 128x128; 0 keeps none).
    """

    preset: str = "soundspaces2"
    width: int = 128
    height: int = 128
    observations: str = "audiovisual"
    pointgoal: bool = False
    continuous: bool = False
    success_distance_m: float = 1.0
    step_limit: int = 500
    success_reward: float = 10.0
    slack_reward: float = -0.01
    distance_reward_scale: float = 1.0
    max_depth_m: float = 10.0
    hrtf: str = "kemar"
    scenes: tuple[str, ...] = ()
    split: str = "train"
    num_scenes: int = 8
    rooms: tuple[int, int] = (2, 4)
    episode: EpisodeConfig | None = None
    episodes_per_scene: int = 64
    world_cache: int | None = None
    render_cache_items: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise EpisodeError(f"AudioGoalConfig.{name}: {msg}")

        if self.preset not in PRESETS:
            bad("preset", f"unknown preset {self.preset!r}; choose one of {sorted(PRESETS)}")
        if self.observations not in OBSERVATION_SETS:
            bad("observations", f"unknown set {self.observations!r}; choose one of {sorted(OBSERVATION_SETS)}")
        if not self.success_distance_m > 0:
            bad("success_distance_m", f"must be > 0, got {self.success_distance_m}")
        hints = {"episodes_per_scene": " (0 samples a new episode at every reset)",
                 "world_cache": " (scene worlds kept built), or None (every scene the env samples from)",
                 "render_cache_items": " (camera views kept per world; 0 keeps none)"}
        for name, lo in (("step_limit", 1), ("num_scenes", 1), ("episodes_per_scene", 0), ("world_cache", 1),
                         ("render_cache_items", 0)):
            v = getattr(self, name)
            if (v is not None or name != "world_cache") and (
                    isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo):
                bad(name, f"must be an integer >= {lo}{hints.get(name, '')}, got {v!r}")
        object.__setattr__(self, "scenes", tuple(self.scenes))
        object.__setattr__(self, "rooms", tuple(self.rooms))

    def sim_config(self) -> SimConfig:
        outputs = tuple(k for k in ("rgb", "depth") if k in OBSERVATION_SETS[self.observations])
        return SimConfig.preset(self.preset, camera=CameraConfig(width=self.width, height=self.height),
                                outputs=outputs, spectrogram="spectrogram" in self.obs_keys,
                                hrtf=self.hrtf, seed=self.seed, render_cache_items=self.render_cache_items)

    def episode_config(self) -> EpisodeConfig:
        p = PRESETS[self.preset]
        base = self.episode or EpisodeConfig()
        return replace(base, forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"])

    @property
    def obs_keys(self) -> tuple[str, ...]:
        return OBSERVATION_SETS[self.observations] + (("pointgoal",) if self.pointgoal else ())


class AudioGoalEnv(gym.Env):
    """Find the sounding object and stop next to it, by sight and binaural hearing.

    ## Description
    The agent starts at a random pose in a house; an object at ``source_position`` plays
    a looping sound (a ringing telephone by default). It must walk to the object and
    call STOP within ``success_distance_m`` (1 m) of the goal, the navigable point under
    the source. Semantics follow SoundSpaces' AudioGoal task.

    ## Action Space
    ``avworld/AudioGoal-v0``: ``Discrete(4)``: 0 STOP, 1 MOVE_FORWARD (0.25 m in the
    ``soundspaces2`` preset), 2 TURN_LEFT, 3 TURN_RIGHT (10°). Forward moves that would
    hit geometry stop at the obstacle (``info["collided"]``).
    ``avworld/AudioGoalContinuous-v0``: ``Box(-1, 1, (3,))``: linear velocity and angular
    velocity as fractions of the preset's maximum (1 m/s, 90°/s), held for one step, and
    a stop signal (STOP when > 0).

    ## Observation Space
    A ``Dict`` with the keys of the chosen set: ``rgb`` (H, W, 3) uint8; ``depth``
    (H, W, 1) float32, metres / ``max_depth_m`` clipped to [0, 1]; ``audio`` (2, n)
    float32, the binaural waveform heard during the step (left ear first; n = step
    duration x 16 kHz); ``spectrogram`` (2, 65, T) float32 (SoundSpaces features); with
    ``pointgoal=True`` also ``pointgoal`` (2,) float32, the goal's (distance m, bearing
    rad counter-clockwise from the heading).

    ## Rewards
    ``+10`` on success, ``-0.01`` every step, plus the decrease of the geodesic distance
    to the goal during the step (metres).

    ## Starting State
    An episode from the episode file (``options={"episode_index": k}``,
    ``{"episode_id": ...}`` or ``{"episode": AudioGoalEpisode}``; a seeded random one
    otherwise), or one drawn on the fly in the configured scenes (from a per-scene pool of
    ``episodes_per_scene`` episodes, see :class:`AudioGoalConfig`).

    ## Episode End
    Terminated on STOP (success if within the success distance); truncated after
    ``step_limit`` (500) actions (named so as not to clash with ``gymnasium.make``'s own
    ``max_episode_steps``, which adds a TimeLimit wrapper). The final ``info["outcome"]``
    holds what the
    metrics need (success, path length, distances, action counts); compute success, SPL,
    SoftSPL, distance to goal, NA and SNA from it with :mod:`avworld.eval.nav_metrics`.

    ## Arguments
    ``gymnasium.make("avworld/AudioGoal-v0", episodes=PATH_OR_LIST, **AudioGoalConfig
    fields)``, e.g. ``observations="audio"``, ``pointgoal=True``, ``width=64``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, config: AudioGoalConfig | None = None, episodes: str | Path | Sequence | None = None,
                 render_mode: str | None = None, **overrides) -> None:
        self.config = cfg = env_config(AudioGoalConfig, config, overrides, render_mode, "AudioGoalEnv", EpisodeError)
        self.render_mode = render_mode
        self.sim_config = cfg.sim_config()
        self.episode_config = cfg.episode_config()
        self.episodes: list[AudioGoalEpisode] = []
        if isinstance(episodes, (str, Path)):
            header, self.episodes = load_episodes(episodes)
            ec = episode_config_of(header)
            if (ec.forward_step_m, ec.turn_deg) != (self.episode_config.forward_step_m, self.episode_config.turn_deg):
                raise EpisodeFileError(
                    f"{episodes}: episodes were planned for {ec.forward_step_m} m / {ec.turn_deg} deg steps, the env "
                    f"preset {cfg.preset!r} uses {self.episode_config.forward_step_m} m / "
                    f"{self.episode_config.turn_deg} deg; pass the matching preset"
                )
        elif episodes is not None:
            self.episodes = list(episodes)
        self.scenes = cfg.scenes or tuple(split_scenes(cfg.split, cfg.num_scenes, cfg.rooms))
        if cfg.world_cache is not None:
            cache = cfg.world_cache
        elif self.episodes:
            cache = min(len({ep.scene for ep in self.episodes}), 8)
        else:
            cache = len(self.scenes)
        self.worlds = WorldCache(self.sim_config, cache)
        self._bank = None
        self.observation_space = self._make_observation_space()
        if cfg.continuous:
            self.action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        else:
            self.action_space = spaces.Discrete(len(Action))
        self.sim: Simulator | None = None
        self.episode: AudioGoalEpisode | None = None

    # ------------------------------------------------------------------ spaces
    def _make_observation_space(self) -> spaces.Dict:
        cfg, sc = self.config, self.sim_config
        h, w = cfg.height, cfg.width
        f, t = spectrogram_shape(sc.step_samples)
        big = float(np.finfo(np.float32).max)  # unbounded signals, but finite bounds (no checker warnings)
        all_spaces = {
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, 1.0, (h, w, 1), np.float32),
            "audio": spaces.Box(-big, big, (2, sc.step_samples), np.float32),
            "spectrogram": spaces.Box(0.0, big, (2, f, t), np.float32),
            "pointgoal": spaces.Box(-big, big, (2,), np.float32),
        }
        return spaces.Dict({k: all_spaces[k] for k in cfg.obs_keys})

    # ------------------------------------------------------------------ worlds
    def world(self, spec: str) -> SharedWorld:
        """The shared world of a scene spec (kept in ``self.worlds``, shared with the process's other envs)."""
        return self.worlds.get(spec)

    def _pick_episode(self, options: dict) -> AudioGoalEpisode:
        ep = chosen_episode(options, self.episodes, self.np_random, EpisodeError)
        if ep is not None:
            return ep
        i = int(self.np_random.integers(len(self.scenes)))
        if self.config.episodes_per_scene:
            return self.pool_episode(i, int(self.np_random.integers(self.config.episodes_per_scene)))
        rng = np.random.default_rng(int(self.np_random.integers(2**63)))
        return fresh_episode(self.world(self.scenes[i]), self.scenes[i], rng, self.episode_config)

    def pool_episode(self, scene_index: int, k: int) -> AudioGoalEpisode:
        """Episode ``k`` of the on-the-fly pool of ``scenes[scene_index]`` (sampled on first use)."""
        n = self.config.episodes_per_scene
        if not (0 <= scene_index < len(self.scenes) and 0 <= k < n):
            raise EpisodeError(f"pool episode ({scene_index}, {k}) out of range: this env has {len(self.scenes)} "
                               f"scenes with {n} pooled episodes each")
        spec = self.scenes[scene_index]
        return pooled_episode(self.world(spec), spec, scene_index, k, self.episode_config, self.config.seed)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        # what `state` needs to rebuild this episode: the generator before the episode draws, the options
        # and (appended by step) the actions; the simulator is deterministic, so replaying them is exact
        self._replay = {"rng": self.np_random.bit_generator.state, "options": options, "actions": []}
        ep = self._pick_episode(options)
        world = self.world(ep.scene)
        if ep.scene_hash and ep.scene_hash != world.scene.content_hash:
            raise EpisodeError(f"episode {ep.episode_id}: scene {ep.scene} has hash {world.scene.content_hash[:12]}, "
                               f"the episode expects {ep.scene_hash[:12]}; regenerate the episodes for this scene")
        nav = world.nav
        if not nav.is_navigable(ep.start_pose[:2]):
            raise EpisodeError(f"episode {ep.episode_id}: start {list(ep.start_pose[:2])} is not navigable in "
                               f"{ep.scene}; regenerate the episode file")
        if not nav.is_navigable(ep.goal_xy):
            raise EpisodeError(f"episode {ep.episode_id}: goal {list(ep.goal_xy)} is not navigable (unreachable) in "
                               f"{ep.scene}; regenerate the episode file")
        self._goal_field = nav.geodesic_field(ep.goal_xy)
        d0 = float(self._goal_field.distance_at(ep.start_pose[:2]))
        if not math.isfinite(d0):
            raise EpisodeError(f"episode {ep.episode_id}: goal {list(ep.goal_xy)} is unreachable from the start in "
                               f"{ep.scene}; regenerate the episode file")
        if self._bank is None:
            from avworld.sounds import SoundBank

            self._bank = SoundBank(sample_rate_hz=self.sim_config.sample_rate_hz, seed=self.sim_config.seed)
        self.sim = Simulator(world, sound_bank=self._bank)
        source = SoundSourceSpec(ep.source_position, ep.sound, ep.clip_index, ep.start_offset_s)
        hears = "audio" in self.config.obs_keys  # vision-only: no source is simulated (nothing to hear)
        obs = self.sim.reset(agent_pose=ep.start_pose, sources=[source] if hears else [],
                             seed=int(self.np_random.integers(2**31)))
        self.episode, self.world_ = ep, world
        self._d0 = self._dist = d0
        self._steps, self._path_m, self._done = 0, 0.0, False
        self._last = obs
        return self._obs(obs), self._info(obs, success=False)

    def step(self, action):
        if self.sim is None or self._done:
            raise EpisodeError("call reset() before step() (the episode has ended)")
        stop, move = self._parse_action(action)
        self._replay["actions"].append(np.asarray(action).tolist())
        xy0 = self.sim.pose[:2].copy()
        if stop:  # the pose does not change; hand out copies (users may keep and modify observations)
            obs = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self._last.items()}
        else:
            obs = self.sim.step(move)
            self._last = obs
        self._steps += 1
        self._path_m += float(np.linalg.norm(self.sim.pose[:2] - xy0))
        dist = float(self._goal_field.distance_at(self.sim.pose[:2]))
        success = bool(stop and dist <= self.config.success_distance_m)
        reward = self.config.slack_reward + self.config.distance_reward_scale * (self._dist - dist)
        reward += self.config.success_reward if success else 0.0
        self._dist = dist
        terminated = bool(stop)
        truncated = not terminated and self._steps >= self.config.step_limit
        self._done = terminated or truncated
        info = self._info(obs, success)
        if self._done:
            info["outcome"] = self.outcome(success, stop)
        return self._obs(obs), float(reward), terminated, truncated, info

    def outcome(self, success: bool, called_stop: bool) -> dict:
        """The raw inputs of the navigation metrics (:class:`avworld.eval.nav_metrics.EpisodeOutcome` fields)."""
        ep = self.episode
        return {"episode_id": ep.episode_id, "success": bool(success), "called_stop": bool(called_stop),
                "distance_to_goal_m": self._dist, "start_distance_m": self._d0,
                "shortest_m": ep.geodesic_distance_m, "path_m": self._path_m, "actions": self._steps,
                "optimal_actions": ep.optimal_actions}

    @property
    def state(self) -> dict | None:
        """The env's full state as plain data (None before the first reset); settable.

        Holds the random generator's state before the current episode was drawn, the reset
        options and the actions since; setting it replays them (the simulator is
        deterministic), so observations, rewards and later episodes continue bit-identically.
        Trainers restore vector envs with ``set_attr("state", ...)`` to resume exactly.
        """
        r = getattr(self, "_replay", None)
        return None if r is None else {"rng": r["rng"], "options": dict(r["options"]), "actions": list(r["actions"])}

    @state.setter
    def state(self, value: dict | None) -> None:
        if value is None:
            return
        try:
            rng, options, actions = value["rng"], value["options"], value["actions"]
        except (TypeError, KeyError):
            raise EpisodeError("AudioGoalEnv.state must be a dict with 'rng', 'options' and 'actions', as the "
                               "state property returns it") from None
        self.np_random.bit_generator.state = rng
        self.reset(options=options)
        for a in actions:
            self.step(np.asarray(a) if isinstance(a, list) else a)

    def render(self):
        if self.render_mode == "rgb_array" and self.sim is not None:
            frame = self._last.get("rgb")
            if frame is None:
                frame = self.world_.renderer.render(self.sim.pose, outputs=("rgb",))["rgb"]
            return frame
        return None

    # ------------------------------------------------------------------ helpers
    def _parse_action(self, action):
        if self.config.continuous:
            a = np.asarray(action, dtype=float).reshape(-1)
            if a.shape != (3,) or not np.all(np.isfinite(a)):
                raise EpisodeError(
                    f"continuous action must be 3 finite numbers (linear, angular, stop), got {action!r}")
            a = np.clip(a, -1.0, 1.0)
            sc = self.sim_config
            return bool(a[2] > 0), (a[0] * sc.max_speed_m_s, a[1] * sc.max_turn_rate_rad_s)
        return (act := discrete_action(action)) == Action.STOP, act

    def _obs(self, sim_obs: dict) -> dict:
        out = {}
        keys = self.config.obs_keys
        if "rgb" in keys:
            out["rgb"] = sim_obs["rgb"]
        if "depth" in keys:
            out["depth"] = np.clip(sim_obs["depth"] / np.float32(self.config.max_depth_m), 0.0, 1.0).astype(np.float32)
        if "audio" in keys:
            out["audio"] = sim_obs["audio"].astype(np.float32, copy=False)
        if "spectrogram" in keys:
            out["spectrogram"] = sim_obs["spectrogram"].astype(np.float32, copy=False)
        if "pointgoal" in keys:
            x, y, yaw = self.sim.pose
            dx, dy = self.episode.goal_xy[0] - x, self.episode.goal_xy[1] - y
            out["pointgoal"] = np.array([math.hypot(dx, dy), wrap_angle(math.atan2(dy, dx) - yaw)], np.float32)
        return out

    def _info(self, sim_obs: dict, success: bool) -> dict:
        return {"episode_id": self.episode.episode_id if self.episode else None, "distance_to_goal": self._dist,
                "success": success, "collided": bool(sim_obs.get("collided", False)),
                "pose": self.sim.pose.copy(), "steps": self._steps}

    @property
    def goal_xy(self) -> np.ndarray:
        return np.asarray(self.episode.goal_xy, dtype=float)

