"""Inference threads follow the free cores (torch's default takes them all, even when they are busy)."""

from __future__ import annotations

import pytest

from avworld.train import threads
from avworld.train.config import TrainConfigError


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("load, expected", [(0.0, 4), (1.2, 3), (2.6, 1), (3.4, 1), (9.0, 1)])
def test_free_cores_subtract_the_load(four_cores, monkeypatch, load, expected):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    assert threads.inference_threads() == expected


def test_explicit_threads_and_omp_num_threads_win(four_cores, monkeypatch):
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.inference_threads(2) == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.inference_threads() == 1
    with pytest.raises(TrainConfigError, match="--threads 0"):
        threads.inference_threads(0)
