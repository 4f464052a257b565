"""The novelty baseline: count-based exploration reward in place of Eq. 3, same trainer, same memory updates."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from avworld.cli import main
from avworld.train.separation_active import build_trainer
from avworld.train.separation_config import SeparationConfigError, resolve_active
from avworld.train.separation_env import SeparatedVecEnv, novelty_cell
from tests.train.separation_fakes import FakeSeparationEnvWithInfo, fake_vector_env
from tests.train.test_separation_active import SMALL, _passive

NOVELTY = ["active.reward=novelty"]


def _info_envs(n=2, num_steps=4):
    return gym.vector.SyncVectorEnv([lambda: FakeSeparationEnvWithInfo(num_steps=num_steps) for _ in range(n)])


def _trainer(tmp_path=None, extra=(), num_steps=4):
    groups = resolve_active("cpu", SMALL + NOVELTY + list(extra))
    return build_trainer(_info_envs(2, num_steps), _passive(), groups, out_dir=tmp_path, tensorboard=False)


def test_cells_quantize_position_and_heading():
    assert novelty_cell((0.74, -0.1, 0.0)) == (1, -1, 0)
    assert novelty_cell((0.74, -0.1, math.pi / 2 + 0.01)) == (1, -1, 1)
    assert novelty_cell((0.0, 0.0, -0.01)) == (0, 0, 3)  # just clockwise of +x: the last of 4 sectors
    assert novelty_cell((1.0, 2.0, math.pi), cell_m=1.0, heading_bins=12) == (1, 2, 6)
    assert novelty_cell((0.2, 0.2, 0.0), cell_m=0.5) == novelty_cell((0.45, 0.01, 0.3), cell_m=0.5)


def test_reward_is_one_over_sqrt_of_the_visits_in_the_episode():
    from avworld.models.separation import NoMemory

    env = SeparatedVecEnv(_info_envs(1, num_steps=6), _passive(), NoMemory(), reward="novelty")
    env.reset(seed=0)  # dist 0: the start cell, visit 1
    # fake dynamics: action 0 walks 1 m along +x (pose x = dist, capped at 5), others walk back (floored at 0)
    got = [float(env.step(np.array([a]))[1][0]) for a in (0, 1, 1, 0, 0)]
    expect = [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 1 / math.sqrt(2), 1.0]  # cells x=1, 0, 0, 1, 2
    assert got == pytest.approx(expect, abs=1e-7)
    assert float(env.step(np.array([0]))[1][0]) == 0.0  # gymnasium's autoreset step: no reward
    assert float(env.step(np.array([1]))[1][0]) == pytest.approx(1 / math.sqrt(2))  # counts restart: start twice
    assert float(env.step(np.array([0]))[1][0]) == 1.0


def test_novelty_reaches_the_ppo_rollout_and_the_memory_still_trains(tmp_path):
    tr = _trainer(tmp_path)
    mem0 = {k: v.clone() for k, v in tr.memory.state_dict().items()}
    assert tr.agent == "separation-transformer-novelty"
    tr.reset_envs()
    tr.collect()
    ro = tr.rollout
    actions, rewards = ro.actions.cpu().numpy(), ro.rewards.cpu().numpy()
    for i in range(2):  # replay the fake env (4 observations = 3 actions per episode) and count cells by hand
        dist, counts, actions_taken = 0, {0: 1}, 0
        for t in range(len(actions)):
            if actions_taken == 3:  # gymnasium's autoreset step: a new episode at dist 0, no reward
                dist, counts, actions_taken = 0, {0: 1}, 0
                assert rewards[t, i] == 0.0
                continue
            dist = min(dist + 1, 5) if actions[t, i] == 0 else max(dist - 1, 0)
            counts[dist] = counts.get(dist, 0) + 1
            actions_taken += 1
            assert rewards[t, i] == pytest.approx(1 / math.sqrt(counts[dist]), abs=1e-6)
    out = tr.train()
    assert np.isfinite(out["memory/loss"]) and np.isfinite(out["separation/l1"])
    assert any(not torch.equal(mem0[k], v) for k, v in tr.memory.state_dict().items())
    from avworld.eval.separation_eval import LearnedSeparationPolicy
    from avworld.train.checkpoint import latest_checkpoint, load_checkpoint

    ckpt = load_checkpoint(latest_checkpoint(tmp_path))
    assert ckpt["separation"]["active"]["reward"] == "novelty" and ckpt["agent"] == "separation-transformer-novelty"
    agent = LearnedSeparationPolicy.from_checkpoint(latest_checkpoint(tmp_path), _passive())
    assert agent.reward == "novelty"


def test_resume_restores_the_visit_counts(tmp_path):
    full = _trainer(tmp_path / "a", ["ppo.total_steps=36"])
    full.train()
    part = _trainer(tmp_path / "b", ["ppo.total_steps=24"])
    part.train()
    from avworld.train.checkpoint import latest_checkpoint, load_checkpoint

    resumed = _trainer(tmp_path / "b", ["ppo.total_steps=36"])
    path = latest_checkpoint(tmp_path / "b")
    assert resumed.load_state_dict(load_checkpoint(path), path) is True
    assert resumed.envs.visits == part.envs.visits
    resumed.train()
    for (k, va), vb in zip(full.policy.state_dict().items(), resumed.policy.state_dict().values()):
        assert torch.equal(va, vb), k


def test_bad_reward_is_refused():
    with pytest.raises(SeparationConfigError, match="did you mean 'novelty'"):
        resolve_active("cpu", ["active.reward=novelt"])
    with pytest.raises(SeparationConfigError, match="separation, novelty"):
        resolve_active("cpu", ["active.reward=curiosity"])
    with pytest.raises(SeparationConfigError, match="novelty_heading_bins"):
        resolve_active("cpu", ["active.novelty_heading_bins=0"])


def test_bad_reward_on_the_command_line_is_a_typed_error(tmp_path, capsys):
    rc = main(["separation", "train", "active", "--passive", str(tmp_path / "none"), "--out", str(tmp_path / "r"),
               "--set", "active.reward=bogus", "--no-progress", "--no-tensorboard"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "SeparationConfigError" in err and "active.reward" in err


def test_novelty_needs_poses():
    groups = resolve_active("cpu", SMALL + NOVELTY)
    with pytest.raises(SeparationConfigError, match="pose"):
        build_trainer(fake_vector_env(2, num_steps=4), _passive(), groups, tensorboard=False).envs.reset(seed=0)
    with pytest.raises(SeparationConfigError, match="unknown"):
        SeparatedVecEnv(fake_vector_env(1), _passive(), None, reward="curiosity")


def test_eval_active_shows_the_reward_and_agent_novelty_checks_it(tmp_path, capsys):
    from tests.train.test_separation_cli import write_dataset

    write_dataset(tmp_path / "data", 4)
    assert main(["separation", "train", "passive", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "p"),
                 "--no-progress", "--no-tensorboard", "--set", "train.channels=(4,8,8,8,8)", "--set",
                 "train.steps=1", "--set", "train.batch_size=2", "--set", "train.val_examples=0"]) == 0
    eps = tmp_path / "eps.jsonl"
    assert main(["separation", "episodes", "make", "--scenes", "1", "--per-scene", "1", "--out", str(eps)]) == 0
    novelty, plain = tmp_path / "novelty", tmp_path / "plain"
    _trainer(novelty, ["ppo.total_steps=12"]).train()  # fake-env runs: rgb 16 x 16, three actions
    groups = resolve_active("cpu", SMALL + ["ppo.total_steps=12"])
    build_trainer(_info_envs(2), _passive(), groups, out_dir=plain, tensorboard=False).train()
    common = ["separation", "eval", "active", "--passive", str(tmp_path / "p"), "--episodes", str(eps), "--size", "16"]
    capsys.readouterr()
    rc = main([*common, "--agent", "novelty", "--checkpoint", str(plain)])
    assert rc != 0 and "trained with active.reward=separation" in capsys.readouterr().err
    out = tmp_path / "ev"
    assert main([*common, "--agent", "novelty", "--checkpoint", str(novelty), "--out", str(out),
                 "--report-episodes", "0"]) == 0
    text = capsys.readouterr().out
    assert "agent separation-transformer-novelty (motion reward: novelty)" in text
    m = json.loads((out / "metrics.json").read_text())
    assert m["reward"] == "novelty" and m["num_episodes"] == 1 and not (out / "index.html").exists()
