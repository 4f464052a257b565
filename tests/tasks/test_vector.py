"""Vectorized AudioGoal: Sync and Async vector envs match single envs step by step."""

import os
import signal

import gymnasium as gym
import numpy as np
import pytest

import avworld.tasks  # noqa: F401
from avworld.tasks import make_vector_env
from avworld.tasks.episodes import EpisodeError

KW = {"width": 16, "height": 16}
ACTIONS = [1, 2, 1, 1, 3, 1, 0, 1, 1, 2]  # includes a STOP: the vector env autoresets (NEXT_STEP)


def _single_rollouts(episodes, n):
    """What env i of a vector env should produce, stepped alone with the same seeds and actions."""
    out = []
    for i in range(n):
        env = gym.make("avworld/AudioGoal-v0", episodes=episodes[i::n], **KW)
        obs, _ = env.reset(seed=100 + i)
        seq, done = [obs], False
        for a in ACTIONS:
            if done:  # NEXT_STEP autoreset: this step only resets
                obs, _ = env.reset()
                r, done = 0.0, False
            else:
                obs, r, term, trunc, _ = env.step(a)
                done = term or trunc
            seq.append({**obs, "reward": np.float64(r)})
        out.append(seq)
    return out


@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_env_matches_single_envs(small_episodes, asynchronous):
    n = 2
    expected = _single_rollouts(small_episodes, n)
    vec = make_vector_env(n, small_episodes, asynchronous=asynchronous, **KW)
    try:
        obs, _ = vec.reset(seed=100)
        for i in range(n):
            for k in obs:
                assert np.array_equal(obs[k][i], expected[i][0][k]), (i, k)
        if asynchronous:  # Ctrl-C / a scheduler's SIGTERM reach the workers too: they leave them to the trainer
            for proc in vec.processes:
                os.kill(proc.pid, signal.SIGINT)
                os.kill(proc.pid, signal.SIGTERM)
        for t, a in enumerate(ACTIONS, start=1):
            obs, rew, *_ = vec.step(np.array([a] * n))
            for i in range(n):
                for k in obs:
                    assert np.array_equal(obs[k][i], expected[i][t][k]), (t, i, k)
                assert rew[i] == pytest.approx(expected[i][t]["reward"])
    finally:
        vec.close()


def test_too_few_episodes(small_episodes):
    with pytest.raises(EpisodeError, match="cannot feed"):
        make_vector_env(10, small_episodes[:3])
