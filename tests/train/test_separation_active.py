"""Active phase: the separator wrapper's observations and reward, alternating updates, exact resume."""

import numpy as np
import pytest
import torch

from avworld.models.separation import PassiveConfig, PassiveSeparator, magnitudes
from avworld.train.separation_active import build_trainer
from avworld.train.separation_config import resolve_active
from tests.train.separation_fakes import fake_vector_env

SMALL = ["ppo.num_envs=2", "ppo.num_steps=6", "ppo.epochs=1", "ppo.checkpoint_every=1", "ppo.total_steps=48",
         "memory.memory_size=3", "memory.refine_past=2", "memory.token_channels=4", "memory.heads=2",
         "memory.ff_size=32", "memory.layers=1", "policy.hidden_size=16", "policy.visual_size=16",
         "policy.audio_size=16", "policy.mono_size=16", "active.memory_batch=4"]


def _passive():
    torch.manual_seed(0)
    p = PassiveSeparator(PassiveConfig(channels=(4, 8, 8, 8, 8), num_types=3)).eval()
    for q in p.parameters():
        q.requires_grad_(False)
    return p


def _trainer(tmp_path=None, extra=()):
    groups = resolve_active("cpu", SMALL + list(extra))
    return build_trainer(fake_vector_env(2, num_steps=4), _passive(), groups, out_dir=tmp_path, tensorboard=False)


def test_presets_resolve():
    g = resolve_active("gpu")
    assert g["ppo"].num_steps == 20 and g["memory"].memory_size == 19 and g["memory"].refine_past == 14
    assert g["policy"].hidden_size == 512 and g["ppo"].lr == 1e-4 and g["active"].memory_lr == 5e-3
    assert resolve_active("cpu", ["memory.kind=recurrent"])["memory"].kind == "recurrent"


def test_wrapper_reward_is_minus_the_scaled_l1_of_the_refined_current_estimate():
    tr = _trainer()
    env = tr.envs
    obs, _ = env.reset(seed=3)
    assert set(obs) == {"rgb", "sep_binaural", "sep_mono"}
    assert obs["sep_binaural"].shape == (2, 32, 32, 32) and obs["sep_mono"].shape == (2, 16, 32, 32)
    obs, reward, _, trunc, info = env.step(np.array([0, 1]))
    target = magnitudes(torch.as_tensor(info["target_mono"]).unsqueeze(1))
    expect = -10.0 * (torch.as_tensor(obs["sep_mono"]) - target).abs().mean(dim=(1, 2, 3)).numpy()
    assert np.allclose(reward, expect, rtol=1e-5)
    assert np.all(reward < 0)


def test_episodes_feed_the_memory_and_autoreset_steps_have_no_reward():
    tr = _trainer()
    env = tr.envs
    env.reset(seed=0)
    rewards = []
    for _ in range(5):  # 4 observations = 3 actions per episode, then gymnasium's autoreset step
        _, r, _, trunc, _ = env.step(np.array([0, 0]))
        rewards.append(r)
    assert np.all(rewards[3] == 0) and np.all(rewards[2] < 0)
    eps = env.take_finished()
    assert len(eps) == 2 and eps[0][0].shape == (4, 16, 32, 32) and eps[0][1].shape == (4, 16, 32, 32)
    assert env.take_finished() == []


def test_updates_alternate_and_change_policy_and_memory():
    tr = _trainer()
    mem0 = {k: v.clone() for k, v in tr.memory.state_dict().items()}
    pol0 = {k: v.clone() for k, v in tr.policy.state_dict().items()}
    out = tr.train()
    assert tr.update == 4 and np.isfinite(out["memory/loss"]) and out["memory/episodes"] >= 1
    assert any(not torch.equal(mem0[k], v) for k, v in tr.memory.state_dict().items())
    assert any(not torch.equal(pol0[k], v) for k, v in tr.policy.state_dict().items())


def test_resume_is_exact(tmp_path):
    full = _trainer(tmp_path / "a")
    full.train()
    part = _trainer(tmp_path / "b", ["ppo.total_steps=24"])
    part.train()
    from avworld.train.checkpoint import latest_checkpoint, load_checkpoint

    resumed = _trainer(tmp_path / "b")
    path = latest_checkpoint(tmp_path / "b")
    assert resumed.load_state_dict(load_checkpoint(path), path) is True
    assert resumed.update == 2
    resumed.train()
    for a, b in ((full.policy, resumed.policy), (full.memory, resumed.memory)):
        for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(va, vb), k


@pytest.mark.parametrize("kind", ["recurrent", "none"])
def test_baseline_memories_train(kind):
    tr = _trainer(extra=[f"memory.kind={kind}", "memory.refiner_channels=4", "ppo.total_steps=12"])
    out = tr.train()
    assert tr.agent == f"separation-{kind}"
    assert ("memory/loss" in out) == (kind == "recurrent")
