"""Beam-search planning with a world model (seed 001 §5.5).

At every real step: sample K candidate actions from the policy, roll each through the world
model, score a branch by the discounted predicted rewards plus the policy's value at its leaf,
keep the best B branches at each depth (later actions again K samples of the policy, run on the
predicted observations with its GRU state carried), and after H depths execute the first
action of the best sequence. All candidates of a depth go through the world model in one
batched call and through the policy in one forward pass.

Score of a branch a_0 .. a_{d-1}: sum_i gamma^i r_i + gamma^d V(o_d), with V = 0 after a terminal
step. A world model that cannot predict STOP's outcome (a learned one: no STOP in its data)
scores a STOP taken at depth i as gamma^i V(o_i): the policy's own estimate of where it stands.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from avworld.planning.policy import PolicyHead, PolicyOut
from avworld.planning.world_models import WorldModel

STOP = 0


class PlannerConfigError(ValueError):
    """Bad planner settings (K, B, H, gamma)."""


@dataclass(frozen=True)
class PlannerConfig:
    candidates: int = 3  # K: actions sampled from the policy per expanded branch
    beam: int = 1  # B: branches kept per depth
    horizon: int = 1  # H: look-ahead depth
    gamma: float = 0.99
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("candidates", "beam", "horizon"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise PlannerConfigError(f"PlannerConfig.{name} must be an integer >= 1, got {v!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise PlannerConfigError(f"PlannerConfig.gamma must lie in [0, 1], got {self.gamma}")


@dataclass
class Branch:
    actions: tuple[int, ...]
    prefix: float  # discounted sum of the rewards so far
    score: float
    state: object = None
    probs: torch.Tensor | None = None  # policy at the leaf (A,)
    value: float = 0.0  # policy value at the leaf
    hidden: torch.Tensor | None = None  # (L, 1, H) GRU state after the leaf's observation
    done: bool = False


@dataclass
class PlanResult:
    action: int
    sequence: tuple[int, ...]
    score: float
    candidates: dict[tuple[int, ...], float] = field(default_factory=dict)  # every scored branch
    model_calls: int = 0
    seconds: float = 0.0


class BeamPlanner:
    """``plan(env, root)`` -> :class:`PlanResult`; ``root`` is the policy's output on the real observation."""

    def __init__(self, policy: PolicyHead, world_model: WorldModel, config: PlannerConfig = PlannerConfig()) -> None:  # noqa: B008
        self.policy, self.wm, self.config = policy, world_model, config
        self.generator = torch.Generator().manual_seed(int(config.seed))

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def _sample(self, probs: torch.Tensor) -> list[int]:
        k, a = self.config.candidates, probs.numel()
        if k >= a:
            return list(range(a))  # every action, in order: no draw
        p = probs.detach().float().cpu().clamp_min(1e-8)
        return [int(i) for i in torch.multinomial(p, k, replacement=False, generator=self.generator)]

    def plan(self, env, root: PolicyOut) -> PlanResult:
        t0 = time.perf_counter()
        cfg, g = self.config, self.config.gamma
        start = Branch((), 0.0, float(root.value[0]), self.wm.root(env), root.probs[0], float(root.value[0]),
                       root.hidden)
        frontier, finished, scored, calls = [start], [], {}, 0
        for depth in range(cfg.horizon):
            pairs = [(b, a) for b in frontier for a in self._sample(b.probs)]
            sim = [(b, a) for b, a in pairs if self.wm.predicts_stop or a != STOP]
            pred = self.wm.step([b.state for b, _ in sim], [a for _, a in sim]) if sim else None
            calls += bool(sim)
            children, live = [], []
            j = 0
            for b, a in pairs:
                acts = b.actions + (a,)
                if not self.wm.predicts_stop and a == STOP:  # a learned model cannot say where STOP ends
                    s = b.prefix + g ** depth * b.value
                    children.append(Branch(acts, s, s, done=True))
                    continue
                r = float(pred.reward[j])
                prefix = b.prefix + g ** depth * r
                c = Branch(acts, prefix, prefix, pred.states[j], done=bool(pred.done[j]))
                if not pred.terminal[j]:
                    live.append((c, pred.obs[j], b.hidden))
                children.append(c)
                j += 1
            if live:
                out = self.policy.evaluate([o for _, o, _ in live], torch.cat([h for _, _, h in live], dim=1))
                for i, (c, _, _) in enumerate(live):
                    c.probs, c.value, c.hidden = out.probs[i], float(out.value[i]), out.hidden[:, i : i + 1]
                    c.score = c.prefix + g ** (depth + 1) * c.value
            for c in children:
                scored[c.actions] = c.score
            pool = finished + children
            order = sorted(range(len(pool)), key=lambda i: -pool[i].score)  # stable: ties keep sampling order
            keep = [pool[i] for i in order[: cfg.beam]]
            finished = [c for c in keep if c.done]
            frontier = [c for c in keep if not c.done]
            if not frontier:
                break
        best = max(finished + frontier, key=lambda c: c.score)
        return PlanResult(best.actions[0], best.actions, best.score, scored, calls, time.perf_counter() - t0)
