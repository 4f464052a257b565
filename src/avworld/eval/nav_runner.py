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
             progress: Callable[[int, dict], None] | None = None, start: int = 0,
             on_episode: Callable[[int, dict], None] | None = None) -> list[dict]:
    """Metrics of episodes ``start .. num_episodes - 1``: the env's episode file in order, or seeded samples.

    Episode ``k`` resets the env with seed ``seed + k``, so an evaluation continued at ``start`` (with the
    agent's state restored by :func:`set_agent_state`) gives the rows an uninterrupted one would.
    ``on_episode(k, metrics)`` runs after each episode (e.g. to write its row).
    """
    base = env.unwrapped
    results = []
    for k in range(start, num_episodes):
        index = k if base.episodes else None
        metrics, _ = run_episode(env, agent, episode_index=index, seed=seed + k)
        results.append(metrics)
        if on_episode is not None:
            on_episode(k, metrics)
        if progress is not None:
            progress(k, metrics)
    return results


def agent_state(agent):
    """The state an agent carries from one episode to the next (JSON-able), for resuming an evaluation.

    An agent may define ``get_state()`` / ``set_state(state)``; otherwise a numpy generator in its
    ``rng`` attribute is saved (the baselines), and an agent with neither carries nothing (``None``).
    """
    if hasattr(agent, "get_state"):
        return agent.get_state()
    rng = getattr(agent, "rng", None)
    if isinstance(rng, np.random.Generator):
        return {"rng": rng.bit_generator.state}
    return None


def set_agent_state(agent, state) -> None:
    """Restore what :func:`agent_state` returned (``None``: nothing to restore)."""
    if state is None:
        return
    if hasattr(agent, "set_state"):
        agent.set_state(state)
    elif "rng" in state:
        agent.rng.bit_generator.state = state["rng"]
