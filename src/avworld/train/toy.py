"""A tiny audio-goal grid world for testing learners in seconds (numpy only, no simulator).

:class:`ToyAudioGoalEnv` has the AudioGoal interface (same actions, observation keys and
reward rules) on a ``size`` x ``size`` empty grid, so a trainer that cannot learn it has a
bug. Importing this module registers it as ``avworld/ToyAudioGoal-v0``.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register, registry

HEADINGS = ((1, 0), (0, 1), (-1, 0), (0, -1))  # +x, +y, -x, -y; TURN_LEFT = counter-clockwise = +1


class ToyAudioGoalEnv(gym.Env):
    """Walk to the sounding cell and STOP on it, steering by the binaural spectrogram.

    ## Action Space
    ``Discrete(4)``: 0 STOP, 1 MOVE_FORWARD (one cell; blocked by the border), 2 TURN_LEFT,
    3 TURN_RIGHT (90°), as ``avworld/AudioGoal-v0``.

    ## Observation Space
    ``Dict``: ``rgb`` (S, S, 3) uint8 (a flat colour: green facing the goal cell, grey facing
    free space, dark facing the border); ``depth`` (S, S, 1) float32 in [0, 1] (free cells
    ahead / size); ``audio`` (2, 64) float32 (a tone, louder in the ear nearer the goal);
    ``spectrogram`` (2, 65, T) float32: both ears' level falls with distance, the ear on
    the goal's side is louder (interaural level difference from the bearing's sine) and
    the upper half of the frequency bins is damped when the goal is behind (a pinna cue).

    ## Rewards
    ``+10`` for STOP on the goal cell, ``-0.01`` per step, plus the decrease of the grid
    (Manhattan, i.e. geodesic) distance to the goal.

    ## Episode End
    Terminated on STOP; truncated after ``step_limit`` actions. The final ``info`` has
    ``success`` and an ``outcome`` dict with the fields of :mod:`avworld.eval.nav_metrics`.

    ## State
    ``get_state()`` / ``set_state(state)`` save and restore everything (pose, goal, RNG),
    so trainers can resume bit-identically.
    """

    metadata = {"render_modes": []}

    def __init__(self, size: int = 5, image_size: int = 16, spec_frames: int = 7, step_limit: int = 40) -> None:
        if size < 2 or image_size < 1 or spec_frames < 1 or step_limit < 1:
            raise ValueError("ToyAudioGoalEnv: need size >= 2, image_size >= 1, spec_frames >= 1, step_limit >= 1")
        self.size, self.image_size, self.spec_frames, self.step_limit = size, image_size, spec_frames, step_limit
        s = image_size
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (s, s, 3), np.uint8),
            "depth": spaces.Box(0.0, 1.0, (s, s, 1), np.float32),
            "audio": spaces.Box(-10.0, 10.0, (2, 64), np.float32),
            "spectrogram": spaces.Box(0.0, 10.0, (2, 65, spec_frames), np.float32),
        })
        self.action_space = spaces.Discrete(4)
        self.pos = np.zeros(2, np.int64)
        self.heading, self.goal = 0, np.zeros(2, np.int64)
        self.steps, self.path, self.d0, self._optimal = 0, 0, 0, 1

    # ---------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        n = self.size
        cells = self.np_random.choice(n * n, size=2, replace=False)
        self.pos = np.array(divmod(int(cells[0]), n), np.int64)
        self.goal = np.array(divmod(int(cells[1]), n), np.int64)
        self.heading = int(self.np_random.integers(4))
        self.steps, self.path = 0, 0
        self.d0 = self._dist()
        self._optimal = self._plan()
        return self._obs(), {"success": False}

    def step(self, action):
        action = int(action)
        d_before = self._dist()
        stop = action == 0
        if action == 1:
            nxt = self.pos + np.array(HEADINGS[self.heading])
            if (nxt >= 0).all() and (nxt < self.size).all():
                self.pos, self.path = nxt, self.path + 1
        elif action == 2:
            self.heading = (self.heading + 1) % 4
        elif action == 3:
            self.heading = (self.heading - 1) % 4
        self.steps += 1
        d = self._dist()
        success = stop and d == 0
        reward = -0.01 + (d_before - d) + (10.0 if success else 0.0)
        truncated = not stop and self.steps >= self.step_limit
        info = {"success": bool(success)}
        if stop or truncated:
            info["outcome"] = {"episode_id": "toy", "success": bool(success), "called_stop": stop,
                               "distance_to_goal_m": float(d),
                               "start_distance_m": float(self.d0), "shortest_m": float(self.d0),
                               "path_m": float(self.path), "actions": self.steps,
                               "optimal_actions": self.optimal_actions()}
        return self._obs(), float(reward), bool(stop), bool(truncated), info

    # ---------------------------------------------------------------- state
    def get_state(self) -> dict:
        return {"pos": self.pos.tolist(), "heading": self.heading, "goal": self.goal.tolist(), "steps": self.steps,
                "path": self.path, "d0": self.d0, "optimal": self._optimal, "rng": self.np_random.bit_generator.state}

    def set_state(self, state: dict) -> None:
        self.pos, self.goal = np.array(state["pos"], np.int64), np.array(state["goal"], np.int64)
        self.heading, self.steps, self.path, self.d0 = state["heading"], state["steps"], state["path"], state["d0"]
        self._optimal = state["optimal"]
        self.np_random.bit_generator.state = state["rng"]

    @property
    def state(self) -> dict:
        """The full state (see ``get_state``); settable, so vector envs can restore it with ``set_attr``."""
        return self.get_state()

    @state.setter
    def state(self, value: dict) -> None:
        self.set_state(value)

    # ---------------------------------------------------------------- helpers
    def _dist(self) -> int:
        return int(np.abs(self.goal - self.pos).sum())

    def bearing(self) -> float:
        """Goal direction relative to the heading, radians counter-clockwise (0 when on the goal)."""
        dx, dy = (self.goal - self.pos).tolist()
        if dx == 0 and dy == 0:
            return 0.0
        return math.remainder(math.atan2(dy, dx) - self.heading * math.pi / 2, 2 * math.pi)

    def optimal_actions(self) -> int:
        """Actions of a shortest path from the episode start (breadth-first over cell x heading), STOP included."""
        return self._optimal

    def _plan(self) -> int:
        n, start = self.size, (int(self.pos[0]), int(self.pos[1]), self.heading)
        seen, frontier, depth = {start}, [start], 0
        while frontier:
            if any(x == self.goal[0] and y == self.goal[1] for x, y, _ in frontier):
                return depth + 1
            nxt = []
            for x, y, h in frontier:
                fx, fy = x + HEADINGS[h][0], y + HEADINGS[h][1]
                for state in ((fx, fy, h) if 0 <= fx < n and 0 <= fy < n else None, (x, y, (h + 1) % 4),
                              (x, y, (h - 1) % 4)):
                    if state is not None and state not in seen:
                        seen.add(state)
                        nxt.append(state)
            frontier, depth = nxt, depth + 1
        raise AssertionError("the goal is always reachable on an empty grid")

    def _obs(self) -> dict:
        s, d = self.image_size, self._dist()
        ahead = self.pos + np.array(HEADINGS[self.heading])
        free = 0
        cell = self.pos.copy()
        while True:
            cell = cell + np.array(HEADINGS[self.heading])
            if not ((cell >= 0).all() and (cell < self.size).all()):
                break
            free += 1
        colour = (40, 40, 40) if free == 0 else ((60, 200, 60) if (ahead == self.goal).all() else (150, 150, 150))
        rgb = np.empty((s, s, 3), np.uint8)
        rgb[:] = colour
        depth = np.full((s, s, 1), free / self.size, np.float32)
        b = self.bearing()
        level = 1.0 / (1.0 + d)
        ild = 0.8 * math.sin(b) if d else 0.0
        left, right = level * (1 + ild), level * (1 - ild)
        spec = np.empty((2, 65, self.spec_frames), np.float32)
        spec[0], spec[1] = left, right
        if d and math.cos(b) < -1e-6:
            spec[:, 33:] *= 0.3  # behind: high frequencies shadowed by the pinna
        tone = np.sin(np.linspace(0, 8 * math.pi, 64, dtype=np.float32))
        audio = np.stack([left * tone, right * tone]).astype(np.float32)
        return {"rgb": rgb, "depth": depth, "audio": audio, "spectrogram": spec}


if "avworld/ToyAudioGoal-v0" not in registry:
    register(id="avworld/ToyAudioGoal-v0", entry_point="avworld.train.toy:ToyAudioGoalEnv")


#: Small networks and PPO settings that learn the toy world in about 15k steps.
TOY_MODEL = {"hidden_size": 64, "visual_size": 64, "audio_size": 64, "visual_channels": (8, 16, 16),
             "audio_channels": (8, 16, 16), "visual_keys": ("depth",), "sam_heads": 4, "fusion_heads": 4}
TOY_PPO = {"num_envs": 8, "num_steps": 32, "epochs": 4, "num_minibatches": 2, "lr": 1e-3, "clip_coef": 0.2,
           "entropy_coef": 0.01, "checkpoint_every": 10}


def make_toy_envs(num_envs: int, **env_kwargs) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv([lambda: ToyAudioGoalEnv(**env_kwargs) for _ in range(num_envs)])


def make_toy_trainer(agent: str = "avnav", total_steps: int = 20000, seed: int = 0, out_dir=None,
                     progress: bool = False, ppo: dict | None = None, model: dict | None = None, dist=None):
    """A :class:`~avworld.train.ppo.PPOTrainer` of ``agent`` (small sizes) on ``num_envs`` toy worlds."""
    import torch

    from avworld.models.nav import build_policy, model_config
    from avworld.train.config import PPOConfig, override
    from avworld.train.ppo import PPOTrainer

    cfg = override(PPOConfig(), {**TOY_PPO, "total_steps": total_steps, "seed": seed, **(ppo or {})}, "PPO")
    model_kw = {**TOY_MODEL, **(model or {})}
    if agent == "avnav":
        model_kw = {k: v for k, v in model_kw.items() if k not in ("sam_heads", "fusion_heads")}
    torch.manual_seed(seed)
    envs = make_toy_envs(cfg.num_envs)
    shapes = {k: s.shape for k, s in envs.single_observation_space.spaces.items()}
    policy = build_policy(agent, shapes, 4, config=model_config(agent, **model_kw))
    return PPOTrainer(envs, policy, cfg, agent=agent, out_dir=out_dir, dist=dist, progress=progress,
                      episode_metrics=_toy_metrics)


def train_toy(agent: str = "avnav", total_steps: int = 20000, seed: int = 0, out_dir=None, progress: bool = False,
              ppo: dict | None = None, model: dict | None = None) -> dict:
    """Train ``agent`` (small sizes) on the toy world; returns the last logged values (``episode/success`` ...)."""
    trainer = make_toy_trainer(agent, total_steps, seed, out_dir, progress, ppo, model)
    try:
        return trainer.train()
    finally:
        trainer.envs.close()


def _toy_metrics(outcome: dict) -> dict:
    from avworld.eval.nav_metrics import episode_metrics

    return episode_metrics(outcome)
