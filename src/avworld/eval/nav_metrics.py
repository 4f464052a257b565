"""Navigation metrics with SoundSpaces' (and habitat-lab's) definitions.

Per episode, with ``S`` success (1 if the agent called STOP within the success distance
of the goal), ``l`` the geodesic distance from start to goal, ``p`` the length of the
path the agent walked, ``d_T`` the geodesic distance to the goal at the end, ``d_0``
the one at the start, ``n`` the number of actions taken (STOP included) and ``n*`` the
number of actions of the shortest-path oracle:

* SPL      = S * l / max(p, l)                               (Anderson et al. 2018)
* SoftSPL  = max(0, 1 - d_T / d_0) * l / max(p, l)            (habitat-lab)
* NA       = n
* SNA      = S * n* / max(n, n*)                              (SoundSpaces)
* DTG      = d_T, the distance to goal in metres

:func:`aggregate` gives the mean of each over episodes with a 95 % Student-t
confidence interval (``mean ± t_{0.975, N-1} * sd / sqrt(N)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


class MetricError(ValueError):
    """Inputs to a metric are inconsistent (negative lengths, no episodes, ...)."""


def _check(name: str, value: float, positive: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        need = "> 0" if positive else ">= 0"
        raise MetricError(f"{name} must be a finite number {need}, got {value!r}")
    return v


def spl(success: bool, shortest_m: float, path_m: float) -> float:
    """Success weighted by (normalized inverse) path length."""
    l, p = _check("shortest_m", shortest_m, positive=True), _check("path_m", path_m)
    return float(bool(success)) * l / max(p, l)


def soft_spl(distance_to_goal_m: float, start_distance_m: float, shortest_m: float, path_m: float) -> float:
    """habitat-lab's SoftSPL: progress toward the goal weighted like SPL (no success needed)."""
    d_t = _check("distance_to_goal_m", distance_to_goal_m)
    d_0 = _check("start_distance_m", start_distance_m, positive=True)
    l, p = _check("shortest_m", shortest_m, positive=True), _check("path_m", path_m)
    return max(0.0, 1.0 - d_t / d_0) * l / max(p, l)


def sna(success: bool, optimal_actions: int, actions: int) -> float:
    """SoundSpaces' success weighted by number of actions."""
    n_opt, n = _check("optimal_actions", optimal_actions, positive=True), _check("actions", actions)
    return float(bool(success)) * n_opt / max(n, n_opt)


@dataclass(frozen=True)
class EpisodeOutcome:
    """What happened in one episode (the raw inputs of the metrics)."""

    episode_id: str
    success: bool
    called_stop: bool
    distance_to_goal_m: float
    start_distance_m: float
    shortest_m: float
    path_m: float
    actions: int
    optimal_actions: int


def episode_metrics(o: EpisodeOutcome | dict) -> dict:
    """All metrics of one episode as a flat dict (plus its id); ``o`` may be the env's ``info["outcome"]``."""
    if isinstance(o, dict):
        try:
            o = EpisodeOutcome(**o)
        except TypeError as exc:
            raise MetricError(f"episode outcome has wrong fields ({exc})") from None
    return {
        "episode_id": o.episode_id,
        "success": float(bool(o.success)),
        "spl": spl(o.success, o.shortest_m, o.path_m),
        "soft_spl": soft_spl(o.distance_to_goal_m, o.start_distance_m, o.shortest_m, o.path_m),
        "distance_to_goal": float(o.distance_to_goal_m),
        "na": float(o.actions),
        "sna": sna(o.success, o.optimal_actions, o.actions),
    }


METRICS = ("success", "spl", "soft_spl", "distance_to_goal", "na", "sna")


def aggregate(per_episode: list[dict], confidence: float = 0.95) -> dict:
    """Mean and Student-t confidence interval of every metric over episodes.

    Returns ``{metric: {"mean", "ci_low", "ci_high", "n"}}``; with one episode the
    interval is (mean, mean).
    """
    if not per_episode:
        raise MetricError("no episodes to aggregate; run at least one episode")
    out = {}
    for name in METRICS:
        v = np.array([float(m[name]) for m in per_episode])
        mean = float(v.mean())
        if len(v) > 1 and v.std() > 0:
            half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
        else:
            half = 0.0
        out[name] = {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": len(v)}
    return out


def format_table(results: dict[str, dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of an agent -> aggregate table, cells as ``mean ± half-width``."""
    header = ["agent", *METRICS]
    rows = []
    for agent, agg in results.items():
        row = [agent]
        for name in METRICS:
            m = agg[name]
            digits = 1 if name == "na" else 3
            row.append(f"{m['mean']:.{digits}f} ± {(m['ci_high'] - m['mean']):.{digits}f}")
        rows.append(row)
    return header, rows


def print_table(results: dict[str, dict], title: str) -> None:
    """Print an agent -> aggregate table (:func:`format_table`) to the terminal."""
    from rich.console import Console
    from rich.table import Table

    header, rows = format_table(results)
    table = Table(title=title)
    for h in header:
        table.add_column(h)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def write_episodes_csv(path, per_agent: dict[str, list[dict]]) -> None:
    """One CSV row per (agent, episode) with every metric of :func:`episode_metrics`."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        keys = ["episode_id", *METRICS]
        w.writerow(["agent", *keys])
        for name, per in per_agent.items():
            for m in per:
                w.writerow([name, *(m[k] for k in keys)])
