"""Evaluation metrics: navigation (here), images (:mod:`avworld.eval.image_metrics`) and binaural audio
(:mod:`avworld.eval.audio_metrics`); separation later."""

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
