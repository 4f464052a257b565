"""An agent with the baseline interface (``reset(env)``, ``act(obs, info)``) that plans every step.

Without a world model it is the plain policy (actions sampled from it); with one it runs
:class:`~avworld.planning.beam.BeamPlanner` and executes the first action of the best sequence.
Both carry the policy's GRU state along the real trajectory.
"""

from __future__ import annotations

import time
import zlib

import torch

from avworld.planning.beam import BeamPlanner, PlannerConfig, PlanResult
from avworld.planning.policy import PolicyHead
from avworld.planning.world_models import WorldModel


class PlanningAgent:
    """``PlanningAgent(policy, world_model | None, PlannerConfig)``; per-step plans in ``self.plans``."""

    def __init__(self, policy, world_model: WorldModel | None = None, config: PlannerConfig = PlannerConfig(),  # noqa: B008
                 name: str | None = None) -> None:
        self.head = PolicyHead(policy)
        self.wm, self.config = world_model, config
        self.planner = BeamPlanner(self.head, world_model, config) if world_model is not None else None
        self.generator = torch.Generator().manual_seed(int(config.seed))
        self.name = name or ("policy" if world_model is None else world_model.name)
        self.env = None
        self.step_seconds: list[float] = []
        self.plans: list[PlanResult] = []

    def reset(self, env) -> None:
        """A new episode in ``env``; the random streams restart from (seed, episode id), so an episode's
        actions do not depend on which episodes ran before it."""
        self.env = env
        self.hidden = self.head.initial_state(1)
        self.first = True
        self.plans = []
        ep = getattr(getattr(env, "unwrapped", env), "episode", None)
        key = zlib.crc32(str(getattr(ep, "episode_id", "")).encode())
        seed = (int(self.config.seed) * 1_000_003 + key) % 2**63
        self.generator.manual_seed(seed)
        if self.planner is not None:
            self.planner.reseed(seed + 1)

    def act(self, obs, info=None) -> int:
        t0 = time.perf_counter()
        if self.wm is not None:
            if self.first:
                self.wm.reset(self.env, obs)
            else:
                self.wm.observe(obs)
        out = self.head.evaluate([obs], self.hidden, start=self.first)
        self.hidden, self.first = out.hidden, False
        if self.planner is None:
            action = int(torch.multinomial(out.probs[0].float().cpu(), 1, generator=self.generator))
        else:
            plan = self.planner.plan(self.env, out)
            self.plans.append(plan)
            action = plan.action
        self.step_seconds.append(time.perf_counter() - t0)
        return action
