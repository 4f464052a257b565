"""Run an agent over AudioGoal episodes and collect per-episode metrics (and optionally the rollout)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from avworld.eval.nav_metrics import episode_metrics


@dataclass
class Rollout:
    """One recorded episode: poses (T+1, 3), actions (T,), and per observation rgb / depth / audio / spectrogram."""

    episode_id: str
    poses: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    rgb: list = field(default_factory=list)
    depth: list = field(default_factory=list)
    audio: list = field(default_factory=list)
    spectrogram: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def run_episode(env, agent, episode_index: int | None = None, seed: int | None = None,
                record: bool = False) -> tuple[dict, Rollout | None]:
    """One episode of ``agent`` in ``env`` (a gymnasium AudioGoal env, wrapped or not) -> (metrics, rollout)."""
    base = env.unwrapped
    options = {"episode_index": episode_index} if episode_index is not None else None
    obs, info = env.reset(seed=seed, options=options)
    agent.reset(base)
    ro = Rollout(info["episode_id"]) if record else None

    def keep(o, inf):
        if ro is not None:
            ro.poses.append(np.asarray(inf["pose"], dtype=float).copy())
            for k in ("rgb", "depth", "audio", "spectrogram"):
                if k in o:
                    getattr(ro, k).append(np.array(o[k]))

    keep(obs, info)
    while True:
        action = agent.act(obs, info)
        obs, _, terminated, truncated, info = env.step(action)
        if ro is not None:
            ro.actions.append(int(action))
        keep(obs, info)
        if terminated or truncated:
            break
    # A TimeLimit wrapper (gymnasium.make(..., max_episode_steps=N)) may truncate before the env reports its outcome.
    outcome = info["outcome"] if "outcome" in info else base.outcome(False, False)
    metrics = episode_metrics(outcome)
    if ro is not None:
        ro.metrics = metrics
    return metrics, ro


def evaluate(env, agent, num_episodes: int, seed: int = 0,
             progress: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Metrics of ``num_episodes`` episodes: the env's episode file in order, or seeded samples."""
    base = env.unwrapped
    results = []
    for k in range(num_episodes):
        index = k if base.episodes else None
        metrics, _ = run_episode(env, agent, episode_index=index, seed=seed + k)
        results.append(metrics)
        if progress is not None:
            progress(k, metrics)
    return results
