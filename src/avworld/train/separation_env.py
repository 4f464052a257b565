"""The separator between the ActiveSeparation env and the motion policy: observations and the dense reward.

:class:`SeparatedVecEnv` wraps a gymnasium vector env of ``avworld/ActiveSeparation-v0`` (or anything
with its interface: ``audio`` (2, 16000), ``target_type``, ``step`` observations, ``target_mono``
(16000,) in ``info``; NEXT_STEP autoreset) and, at every step of every env:

1. f^P (frozen) separates the step's mixture given the target type: B~ and M~;
2. the memory takes M~ at the episode step (a new episode where ``step == 0``) and returns the
   refined estimates of steps t-E..t;
3. the policy observes ``rgb`` (passed through), ``sep_binaural`` = log1p(B~) and ``sep_mono`` =
   M.._t (the refined current estimate);
4. the reward of the action that led here is ``r = -reward_scale * mean |M.._t - M*_t|`` (element
   mean over the 16 x 32 x 32 magnitudes; the seed's Eq. 3 with its index shifted to the step
   the action produced); 0 on gymnasium's autoreset steps (masked out of PPO anyway).
   With ``reward="novelty"`` (the count-based exploration baseline) the reward is instead
   ``1 / sqrt(N)``, ``N`` the visits so far in the episode (this one included; the start pose
   counts as the first visit of its cell) to the cell :func:`novelty_cell` of ``info["pose"]``;
   the separation L1 is still computed (and logged as ``separation/l1``).

Every episode's passive estimates and ground-truth magnitudes are kept; when it ends it joins
:attr:`finished`, the memory's training data (Eq. 2 over whole episodes, f^P being frozen the
passive estimates stay valid). ``get_state`` / ``set_state`` hold all of this for exact resume.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import torch
from gymnasium import spaces

from avworld.models.separation import BINAURAL_KEY, MONO_KEY
from avworld.models.separation.spectrogram import CHUNKS, log_features, magnitudes


def novelty_cell(pose, cell_m: float = 0.5, heading_bins: int = 4) -> tuple[int, int, int]:
    """The count cell of a pose (x, y, yaw): ``(floor(x / cell_m), floor(y / cell_m), heading bin)``, the
    heading bin ``floor((yaw mod 2 pi) / (2 pi / heading_bins))`` (sectors counter-clockwise from +x)."""
    x, y, yaw = (float(v) for v in np.asarray(pose, dtype=np.float64)[:3])
    width = 2.0 * math.pi / int(heading_bins)
    return (math.floor(x / cell_m), math.floor(y / cell_m), int(math.floor((yaw % (2.0 * math.pi)) / width))
            % int(heading_bins))


class SeparatedVecEnv:
    """A vector env whose observations are the separator's outputs and whose reward is Eq. 3 (or novelty)."""

    def __init__(self, envs, passive, memory, reward_scale: float = 10.0, episode_buffer: int = 64,
                 device="cpu", reward: str = "separation", novelty_cell_m: float = 0.5,
                 novelty_heading_bins: int = 4) -> None:
        from avworld.train.separation_config import REWARDS, SeparationConfigError

        if reward not in REWARDS:
            raise SeparationConfigError(f"reward {reward!r} is unknown; choose one of {', '.join(REWARDS)}")
        self.envs, self.passive, self.memory = envs, passive, memory
        self.reward_name, self.novelty_cell_m, self.novelty_heading_bins = reward, float(novelty_cell_m), \
            int(novelty_heading_bins)
        self.reward_scale, self.device = float(reward_scale), torch.device(device)
        self.num_envs = envs.num_envs
        self.metadata = envs.metadata
        inner = envs.single_observation_space
        obs = {}
        if "rgb" in inner.spaces:
            obs["rgb"] = inner["rgb"]
        obs[BINAURAL_KEY] = spaces.Box(0.0, np.inf, (2 * CHUNKS, 32, 32), np.float32)
        obs[MONO_KEY] = spaces.Box(0.0, np.inf, (CHUNKS, 32, 32), np.float32)
        self.single_observation_space = spaces.Dict(obs)
        self.single_action_space = envs.single_action_space
        self.action_space = envs.action_space
        self.finished: deque = deque(maxlen=int(episode_buffer))
        self._fresh_state()

    def _fresh_state(self) -> None:
        n = self.num_envs
        self.mem_state = self.memory.initial_state(n, self.device)
        self.history: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(n)]
        self.done = np.zeros(n, dtype=bool)
        self.last_l1 = np.zeros(n)
        self.visits: list[dict[tuple[int, int, int], int]] = [{} for _ in range(n)]
        self.last_novelty = np.zeros(n)
        self._l1_sum, self._l1_count = 0.0, 0

    # -------------------------------------------------------------- gymnasium vector API
    @property
    def _autoreset_envs(self):  # PPOTrainer restores the inner env's NEXT_STEP flags through this
        return getattr(self.envs, "_autoreset_envs", None)

    def reset(self, *, seed=None, options=None):
        obs, info = self.envs.reset(seed=seed, options=options)
        self._fresh_state()
        out, _ = self._process(obs, info, np.zeros(self.num_envs, dtype=bool))
        return out, info

    def step(self, actions):
        obs, _, terminated, truncated, info = self.envs.step(actions)
        autoreset = self.done.copy()
        out, l1 = self._process(obs, info, autoreset)
        live = ~autoreset
        self._l1_sum += float(l1[live].sum())
        self._l1_count += int(live.sum())
        raw = self.last_novelty if self.reward_name == "novelty" else -self.reward_scale * l1
        reward = np.where(autoreset, 0.0, raw).astype(np.float32)
        self.done = np.logical_or(terminated, truncated)
        for i in np.flatnonzero(self.done):
            self._finish(int(i))
        return out, reward, terminated, truncated, info

    def call(self, name, *args, **kwargs):
        return self.envs.call(name, *args, **kwargs)

    def get_attr(self, name):
        return self.envs.get_attr(name)

    def set_attr(self, name, values):
        return self.envs.set_attr(name, values)

    def close(self) -> None:
        self.envs.close()

    # -------------------------------------------------------------- separation
    @torch.no_grad()
    def _process(self, obs, info, autoreset: np.ndarray):
        dev = self.device
        mix = magnitudes(torch.as_tensor(np.asarray(obs["audio"]), dtype=torch.float32, device=dev))
        ttype = torch.as_tensor(np.asarray(obs["target_type"]), dtype=torch.long, device=dev)
        step_idx = torch.as_tensor(np.asarray(obs["step"]), dtype=torch.long, device=dev)
        sep = self.passive(mix, ttype)
        was = self.memory.training
        self.memory.eval()
        mem = self.memory.step(sep.mono, step_idx, self.mem_state, step_idx == 0)
        self.memory.train(was)
        self.mem_state = mem.state
        current = mem.estimates[:, -1]
        target = magnitudes(torch.as_tensor(np.asarray(info["target_mono"]), dtype=torch.float32,
                                            device=dev).unsqueeze(1))
        l1 = (current - target).abs().mean(dim=(1, 2, 3)).double().cpu().numpy()
        for i in range(self.num_envs):
            if int(step_idx[i]) == 0:
                self.history[i] = []
            self.history[i].append((sep.mono[i].cpu(), target[i].cpu()))
        self.last_l1 = l1
        if self.reward_name == "novelty":
            self._count_visits(info, step_idx.cpu().numpy())
        out = {BINAURAL_KEY: log_features(sep.binaural).cpu().numpy(), MONO_KEY: current.cpu().numpy()}
        if "rgb" in self.single_observation_space.spaces:
            out["rgb"] = np.asarray(obs["rgb"])
        return out, l1

    def _count_visits(self, info, step_idx: np.ndarray) -> None:
        if "pose" not in info:
            from avworld.train.separation_config import SeparationConfigError

            raise SeparationConfigError("active.reward=novelty counts visits to the agent's pose cells, but the "
                                        "env's info has no 'pose'; use avworld/ActiveSeparation-v0 (or an env "
                                        "reporting info['pose'] = (x, y, yaw))")
        poses = np.asarray(info["pose"], dtype=np.float64)
        for i in range(self.num_envs):
            if int(step_idx[i]) == 0:
                self.visits[i] = {}
            cell = novelty_cell(poses[i], self.novelty_cell_m, self.novelty_heading_bins)
            self.visits[i][cell] = self.visits[i].get(cell, 0) + 1
            self.last_novelty[i] = 1.0 / math.sqrt(self.visits[i][cell])

    def take_l1(self) -> float:
        """The mean separation L1 (of the refined current estimate) over the steps since the last call."""
        mean = self._l1_sum / self._l1_count if self._l1_count else float("nan")
        self._l1_sum, self._l1_count = 0.0, 0
        return mean

    def _finish(self, i: int) -> None:
        if self.history[i]:
            p, t = zip(*self.history[i])
            self.finished.append((torch.stack(p), torch.stack(t)))
        self.history[i] = []

    def take_finished(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The finished episodes since the last call ((T, 16, 32, 32) passive, target), oldest first."""
        eps = list(self.finished)
        self.finished.clear()
        return eps

    # -------------------------------------------------------------- resume
    def get_state(self) -> dict:
        return {"mem_state": {k: v.cpu() for k, v in self.mem_state.items()},
                "history": [[(p, t) for p, t in h] for h in self.history], "done": torch.as_tensor(self.done),
                "finished": list(self.finished),
                "visits": [[[*cell, n] for cell, n in v.items()] for v in self.visits],
                "novelty": torch.as_tensor(self.last_novelty)}

    def set_state(self, state: dict) -> None:
        self.mem_state = {k: v.to(self.device) for k, v in state["mem_state"].items()}
        self.history = [[(p, t) for p, t in h] for h in state["history"]]
        self.done = state["done"].cpu().numpy().copy()
        self.finished.clear()
        self.finished.extend((p, t) for p, t in state["finished"])
        if "visits" in state:
            self.visits = [{(int(a), int(b), int(c)): int(n) for a, b, c, n in v} for v in state["visits"]]
            self.last_novelty = state["novelty"].cpu().numpy().copy()
