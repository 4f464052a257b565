"""The AV-CDiT world model behind the planner: batched calls, actions, context, STOP, decoded observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avworld.data.poses import relative_pose
from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, avcdit_config
from avworld.planning.avcdit import AVCDiTPlanningError, AVCDiTWorldModel
from avworld.planning.beam import BeamPlanner, PlannerConfig
from avworld.planning.policy import PlanningPolicyError, PolicyHead
from avworld.planning.world_models import clone_env

from .conftest import make_env, tiny_policy


def tiny_wm(stage: int = 3, seed: int = 0) -> AVCDiTWorldModel:
    model = AVCDiT(avcdit_config("cpu-tiny", width=32, depth=1, heads=2, freq_dim=32), seed=0)
    with torch.no_grad():  # untrained heads are zero (predict zero noise); give them weights so outputs vary
        g = torch.Generator().manual_seed(1)
        for n, p in model.named_parameters():
            if "head" in n or "adaLN" in n:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    model.diffusion = GaussianDiffusion(1000, "linear", learn_sigma=True)
    model.stage = stage
    return AVCDiTWorldModel(model.eval(), 0.15, 10.0, steps=2, seed=seed)


@pytest.fixture(scope="module")
def env64(avw_episodes):
    e = make_env(avw_episodes, size=64)
    yield e
    e.close()


def test_actions_are_the_relative_poses_of_the_env_steps(env64):
    wm = tiny_wm()
    env64.reset(seed=0, options={"episode_index": 0})
    for a in (1, 2, 3):
        c = clone_env(env64)
        before = c.sim.pose.copy()
        _, _, _, _, info = c.step(a)
        if a == 1:
            assert not info["collided"]
        np.testing.assert_allclose(relative_pose(before, c.sim.pose), wm.step_action[a], atol=1e-9)


def test_context_is_the_last_k_real_frames(env64):
    wm = tiny_wm()
    obs, _ = env64.reset(seed=0, options={"episode_index": 0})
    wm.reset(env64, obs)
    z0 = wm._encode(obs)
    ctx = wm.root(env64)
    assert ctx["rgb"].shape[0] == wm.k == 4
    for m in ("rgb", "audio"):
        assert all(torch.equal(ctx[m][i], z0[m]) for i in range(wm.k))  # padded with the first frame
    obs2, *_ = clone_env(env64).step(1)
    wm.observe(obs2)
    ctx2 = wm.root(env64)
    for m in ("rgb", "audio"):
        assert torch.equal(ctx2[m][-1], wm._encode(obs2)[m]) and torch.equal(ctx2[m][:-1], ctx[m][1:])


def test_one_batched_sampler_call_per_depth_and_decoded_observations(env64, monkeypatch):
    import avworld.models.worldmodel.generate as gen

    calls, real = [], gen.sample

    def counting(m, ctx, *a, **k):
        calls.append(ctx["rgb"].shape[0])
        return real(m, ctx, *a, **k)

    monkeypatch.setattr(gen, "sample", counting)
    wm = tiny_wm()
    head = PolicyHead(tiny_policy(env64))
    obs, _ = env64.reset(seed=0, options={"episode_index": 0})
    wm.reset(env64, obs)
    root = head.evaluate([obs], head.initial_state(1), start=True)
    plan = BeamPlanner(head, wm, PlannerConfig(candidates=3, beam=2, horizon=3, seed=0)).plan(env64, root)
    assert len(calls) == plan.model_calls <= 3 and calls[0] <= 3 and all(c <= 6 for c in calls)
    assert len(calls) >= 2  # unless everything kept was STOP, the look-ahead went on
    pred = wm.step([wm.root(env64)] * 2, [1, 3])
    o = pred.obs[0]
    assert o["rgb"].shape == obs["rgb"].shape and o["rgb"].dtype == np.uint8
    assert o["spectrogram"].shape == obs["spectrogram"].shape and o["audio"].shape == obs["audio"].shape
    assert pred.reward.shape == (2,) and np.isfinite(pred.reward).all()


def test_stop_is_scored_by_the_value_and_never_imagined(env64):
    wm = tiny_wm()
    head = PolicyHead(tiny_policy(env64))
    obs, _ = env64.reset(seed=0, options={"episode_index": 0})
    wm.reset(env64, obs)
    root = head.evaluate([obs], head.initial_state(1), start=True)
    plan = BeamPlanner(head, wm, PlannerConfig(candidates=4, beam=4, horizon=1, gamma=0.9)).plan(env64, root)
    assert plan.candidates[(0,)] == pytest.approx(float(root.value[0]))
    with pytest.raises(AVCDiTPlanningError, match="STOP"):
        wm.step([wm.root(env64)], [0])


def test_same_seed_same_prediction(env64):
    obs, _ = env64.reset(seed=0, options={"episode_index": 0})
    out = []
    for _ in range(2):
        wm = tiny_wm(seed=4)
        wm.reset(env64, obs)
        out.append(wm.step([wm.root(env64)] * 3, [1, 2, 3]))
    assert np.array_equal(out[0].reward, out[1].reward)
    assert all(np.array_equal(a["rgb"], b["rgb"]) for a, b in zip(out[0].obs, out[1].obs, strict=True))


def test_unusable_models_and_policies_are_refused(env64, avw_episodes):
    with pytest.raises(AVCDiTPlanningError, match="stage3"):
        tiny_wm(stage=1)
    import gymnasium as gym

    from avworld.models.nav import build_policy, model_config

    depth_env = gym.make("avworld/AudioGoal-v0", episodes=list(avw_episodes), preset="avw", width=32, height=32,
                         observations="audiodepth")
    shapes = {k: tuple(s.shape) for k, s in depth_env.observation_space.spaces.items()}
    policy = build_policy("avnav", shapes, 4, False, model_config("avnav", hidden_size=16, visual_size=16,
                                                                  audio_size=16, visual_keys=("depth",)))
    with pytest.raises(PlanningPolicyError, match="depth"):
        PolicyHead(policy).check_predictable()
    depth_env.close()
