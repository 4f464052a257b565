"""A small avw-motion AudioGoal env and tiny untrained AV-Nav policies (RGB + spectrogram)."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import pytest
import torch

import avworld.tasks  # noqa: F401
from avworld.models.nav import build_policy, model_config
from avworld.sim.config import PRESETS
from avworld.tasks.episodes import EpisodeConfig, make_episodes, split_scenes

TINY = {"hidden_size": 16, "visual_size": 16, "audio_size": 16, "visual_channels": (4, 8, 8),
        "audio_channels": (4, 8, 8), "visual_keys": ("rgb",)}


@pytest.fixture(scope="session")
def avw_episodes():
    p = PRESETS["avw"]
    cfg = replace(EpisodeConfig(), forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"], max_geodesic_m=6.0)
    return make_episodes(split_scenes("test", 1, rooms=(2, 2)), per_scene=2, config=cfg, seed=3)


def make_env(episodes, size: int = 32, step_limit: int = 500):
    return gym.make("avworld/AudioGoal-v0", episodes=list(episodes), preset="avw", width=size, height=size,
                    observations="audiovisual", step_limit=step_limit)


def tiny_policy(env, seed: int = 0):
    """An untrained AV-Nav policy on RGB + spectrogram; the actor is re-initialised with larger weights so
    that its action probabilities depend on the observation (the default init is nearly uniform)."""
    shapes = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        policy = build_policy("avnav", shapes, 4, False, model_config("avnav", **TINY))
        torch.nn.init.normal_(policy.actor.weight, std=0.5)
        torch.nn.init.normal_(policy.critic.weight, std=0.5)
    return policy.eval()


@pytest.fixture()
def env(avw_episodes):
    e = make_env(avw_episodes)
    yield e
    e.close()
