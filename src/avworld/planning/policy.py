"""Batched look-ahead calls of a recurrent navigation policy (:class:`avworld.models.nav.NavPolicy`).

The planner needs, for N imagined observations and the GRU states they continue from, the
policy's action probabilities, its value and the next GRU states, in one forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class PlanningPolicyError(ValueError):
    """A policy the planner cannot use (continuous actions, observations no world model predicts)."""


@dataclass
class PolicyOut:
    probs: torch.Tensor  # (N, A)
    value: torch.Tensor  # (N,)
    hidden: torch.Tensor  # (L, N, H)


class PolicyHead:
    """``evaluate(obs_list, hidden)`` -> :class:`PolicyOut` for a discrete-action NavPolicy."""

    #: observations a world model can give the policy (images and sound; never depth)
    PREDICTABLE = ("rgb", "spectrogram", "audio")

    def __init__(self, policy) -> None:
        if getattr(policy, "continuous", False):
            raise PlanningPolicyError("the planner samples discrete candidate actions; this policy is continuous "
                                      "(AudioGoalContinuous-v0); use an AudioGoal-v0 checkpoint")
        self.policy = policy.eval()
        self.device = next(policy.parameters()).device
        self.obs_keys = tuple(policy.obs_keys)
        self.num_actions = int(policy.action_dim)

    def check_predictable(self) -> None:
        """:class:`PlanningPolicyError` unless every observation the policy needs can be predicted."""
        bad = [k for k in self.obs_keys if k not in self.PREDICTABLE]
        if bad:
            raise PlanningPolicyError(
                f"the policy observes {list(self.obs_keys)}; a learned world model predicts only RGB and binaural "
                f"audio, not {bad}: train the agent with --visual rgb (or plan with --world-model oracle)")

    def initial_state(self, n: int = 1) -> torch.Tensor:
        return self.policy.initial_state(n, self.device)

    @torch.no_grad()
    def evaluate(self, obs: list[dict], hidden: torch.Tensor, start: bool = False) -> PolicyOut:
        """One GRU step for each of N observation dicts from ``hidden`` (L, N, H)."""
        batch = {k: torch.as_tensor(np.stack([np.asarray(o[k]) for o in obs]), device=self.device)
                 for k in self.obs_keys}
        n = len(obs)
        seq = {k: v.unsqueeze(0) for k, v in batch.items()}
        starts = torch.full((1, n), bool(start), dtype=torch.bool, device=self.device)
        out, new_hidden, _ = self.policy._core(seq, hidden, starts)
        h = out[0]
        return PolicyOut(self.policy._dist(h).probs, self.policy.critic(h).squeeze(-1), new_hidden)
