"""Navigation metrics against hand-computed values."""

import math

import numpy as np
import pytest
from scipy import stats

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


def test_spl_hand_computed():
    assert spl(True, 4.0, 5.0) == pytest.approx(0.8)
    assert spl(True, 4.0, 3.5) == pytest.approx(1.0)  # shorter than the geodesic (stopped early within radius)
    assert spl(False, 4.0, 4.0) == 0.0


def test_soft_spl_hand_computed():
    # 6 m to go at the start, 1.5 m left, walked 9 m of a 6 m shortest path: (1 - 1.5/6) * 6/9 = 0.5
    assert soft_spl(1.5, 6.0, 6.0, 9.0) == pytest.approx(0.5)
    assert soft_spl(8.0, 6.0, 6.0, 2.0) == 0.0  # ended farther than it started
    assert soft_spl(0.0, 6.0, 6.0, 6.0) == pytest.approx(1.0)


def test_sna_hand_computed():
    assert sna(True, 30, 40) == pytest.approx(0.75)
    assert sna(True, 30, 25) == pytest.approx(1.0)
    assert sna(False, 30, 30) == 0.0


def test_episode_metrics_from_outcome_dict():
    o = EpisodeOutcome("e1", True, True, 0.4, 5.0, 5.0, 6.25, 50, 40)
    m = episode_metrics(o)
    assert m == episode_metrics(o.__dict__)
    assert m["spl"] == pytest.approx(0.8)
    assert m["soft_spl"] == pytest.approx((1 - 0.4 / 5.0) * 0.8)
    assert m["sna"] == pytest.approx(0.8)
    assert m["na"] == 50 and m["success"] == 1.0 and m["distance_to_goal"] == 0.4


def test_aggregate_student_t_interval():
    vals = [0.2, 0.5, 0.9, 0.4]
    per = [{"success": v, "spl": v, "soft_spl": v, "distance_to_goal": v, "na": v, "sna": v} for v in vals]
    agg = aggregate(per)
    half = stats.t.ppf(0.975, 3) * np.std(vals, ddof=1) / math.sqrt(4)
    assert agg["spl"]["mean"] == pytest.approx(np.mean(vals))
    assert agg["spl"]["ci_high"] - agg["spl"]["mean"] == pytest.approx(half)
    header, rows = format_table({"x": agg})
    assert header[0] == "agent" and rows[0][0] == "x" and "±" in rows[0][2]


def test_bad_inputs_raise():
    with pytest.raises(MetricError, match="shortest_m"):
        spl(True, 0.0, 1.0)
    with pytest.raises(MetricError, match="path_m"):
        spl(True, 1.0, -1.0)
    with pytest.raises(MetricError, match="no episodes"):
        aggregate([])
    with pytest.raises(MetricError, match="wrong fields"):
        episode_metrics({"episode_id": "x"})
