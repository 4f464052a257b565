"""A tiny synthetic stand-in for avworld/ActiveSeparation-v0 (same observation/info interface, numpy only).

The target is a tone whose pitch depends on the target type; its level at the listener falls
with the agent's distance from it (MOVE_FORWARD walks away, turns walk back), a noise
distractor is added. ``state`` (get/set) makes a resumed trainer continue exactly.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class FakeSeparationEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, num_steps: int = 4, size: int = 16, rgb: bool = True) -> None:
        self.num_steps, self.size, self.rgb = num_steps, size, rgb
        obs = {"audio": spaces.Box(-10, 10, (2, 16000), np.float32), "target_type": spaces.Discrete(3),
               "step": spaces.Discrete(num_steps)}
        if rgb:
            obs["rgb"] = spaces.Box(0, 255, (size, size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Discrete(3)
        self._t, self._dist, self._type = 0, 0, 0
        self._rng = np.random.default_rng(0)

    @property
    def state(self) -> dict:
        return {"t": self._t, "dist": self._dist, "type": self._type, "rng": self._rng.bit_generator.state}

    @state.setter
    def state(self, s: dict) -> None:
        self._t, self._dist, self._type = s["t"], s["dist"], s["type"]
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = s["rng"]

    def _observe(self):
        n = np.arange(16000) / 16000
        phase = self._rng.uniform(0, 2 * np.pi)
        mono = (0.05 * np.sin(2 * np.pi * (300 + 200 * self._type) * n + phase)).astype(np.float32)
        gain = 1.0 / (1.0 + self._dist)
        tb = np.stack([mono * gain, mono * gain * 0.7]).astype(np.float32)
        mix = (tb + 0.02 * self._rng.standard_normal((2, 16000))).astype(np.float32)
        obs = {"audio": mix, "target_type": self._type, "step": self._t}
        if self.rgb:
            obs["rgb"] = np.full((self.size, self.size, 3), 40 * self._dist % 255, np.uint8)
        return obs, {"target_mono": mono, "target_binaural": tb}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._t, self._dist = 0, 0
        self._type = int(self._rng.integers(3))
        return self._observe()

    def step(self, action):
        self._t += 1
        self._dist = min(self._dist + 1, 5) if int(action) == 0 else max(self._dist - 1, 0)
        obs, info = self._observe()
        return obs, 0.0, False, self._t >= self.num_steps - 1, info


def fake_vector_env(n: int = 2, **kw):
    return gym.vector.SyncVectorEnv([lambda: FakeSeparationEnv(**kw) for _ in range(n)])


class FakeSeparationEnvWithInfo(FakeSeparationEnv):
    """The fake env with the info keys ``separation_baselines.rollout`` reads."""

    def _observe(self):
        obs, info = super()._observe()
        info.update(pose=np.array([float(self._dist), 0.0, 0.0]), target_distance_m=float(self._dist),
                    target_direction_rad=0.0, collided=False, episode_id="fake", scene="fake")
        return obs, info
