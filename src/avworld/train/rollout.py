"""Rollout storage and the per-rollout math of :mod:`avworld.train.ppo`: GAE, minibatches, masks.

The issue asks for one readable PPO module; these helpers are the parts that do not touch
the trainer's state, kept apart so ``ppo.py`` stays one screenful of algorithm.
"""

from __future__ import annotations

import numpy as np
import torch


def compute_gae(rewards, values, next_value, terminated, truncated, valid, gamma: float, lam: float):
    """(T, N) rewards, values, terminated, truncated, valid and (N,) next_value -> advantages, returns (T, N)."""
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(next_value)
    not_terminal = 1.0 - terminated.float()
    not_done = 1.0 - (terminated | truncated).float()
    for t in reversed(range(num_steps)):
        next_v = next_value if t == num_steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * not_terminal[t] * next_v - values[t]
        last_gae = (delta + gamma * lam * not_done[t] * last_gae) * valid[t].float()
        advantages[t] = last_gae
    return advantages, advantages + values


def env_minibatches(num_envs: int, num_minibatches: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random split of the env indices into ``num_minibatches`` groups: each minibatch holds whole sequences."""
    return list(torch.randperm(num_envs, generator=generator, device=generator.device).chunk(num_minibatches))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


class Rollout:
    """Preallocated (T, N, ...) storage of one rollout, plus the GRU state (L, N, H) at t = 0."""

    def __init__(self, num_steps: int, num_envs: int, obs_specs: dict, action_shape: tuple, action_dtype,
                 hidden: torch.Tensor, device: torch.device) -> None:
        tn = (num_steps, num_envs)
        self.obs = {k: torch.zeros(tn + shape, dtype=dtype, device=device) for k, (shape, dtype) in obs_specs.items()}
        self.actions = torch.zeros(tn + action_shape, dtype=action_dtype, device=device)
        self.logprobs, self.rewards, self.values = (torch.zeros(tn, device=device) for _ in range(3))
        self.terminated, self.truncated, self.episode_start, self.valid = (
            torch.zeros(tn, dtype=torch.bool, device=device) for _ in range(4))
        self.hidden0 = torch.zeros_like(hidden)


def to_tensors(obs: dict, keys, device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(np.asarray(obs[k]), device=device) for k in keys}


def _info_at(infos: dict, key: str, i: int):
    """Env ``i``'s entry ``key`` of gymnasium vector infos (dicts become dicts again), or None."""
    if key not in infos or not bool(infos.get("_" + key, np.ones(i + 1, bool))[i]):
        return None
    v = infos[key]
    if isinstance(v, dict):
        return {k: _info_at(v, k, i) for k in v if not k.startswith("_")}
    return v[i]
