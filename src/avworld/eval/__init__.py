"""Evaluation metrics: navigation (here), separation and generation (later)."""

from avworld.eval.nav_metrics import (
    EpisodeOutcome,
    MetricError,
    aggregate,
    episode_metrics,
    format_table,
    sna,
    soft_spl,
    spl,
)

__all__ = ["EpisodeOutcome", "MetricError", "aggregate", "episode_metrics", "format_table", "soft_spl", "sna", "spl"]
