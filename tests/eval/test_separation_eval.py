"""Separation metrics and episode evaluation: closed forms, final estimates, learned and baseline policies."""

import math

import numpy as np
import pytest
import torch

from avworld.eval.separation_eval import LearnedSeparationPolicy, evaluate, separate_episode
from avworld.eval.separation_metrics import FinalEstimates, aggregate, step_metrics
from avworld.models.separation import (
    MemoryConfig,
    NoMemory,
    PassiveConfig,
    PassiveSeparator,
    TransformerMemory,
    magnitudes,
    phases,
)


def _tone(n=2, f=440.0):
    t = torch.arange(16000) / 16000
    return torch.stack([0.1 * torch.sin(2 * math.pi * (f + 50 * i) * t) for i in range(n)]).unsqueeze(1)


def test_true_magnitudes_give_a_near_perfect_si_sdr_and_zero_stft_distance():
    x = _tone()
    m = step_metrics(magnitudes(x), magnitudes(x), phases(x), x)
    assert np.all(m["si_sdr"] > 60) and np.allclose(m["stft_distance"], 0)


def test_known_distortions():
    x = _tone(1)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 1, 16000, generator=g)
    noise = noise / noise.norm() * x.norm() / math.sqrt(10)  # 10 dB below the target
    mix = torch.cat([x + noise, x + noise], dim=1)
    m = step_metrics(magnitudes(x) * 3.0, magnitudes(x), phases(x), x, mix)
    assert m["si_sdr"][0] > 60  # a gain does not change SI-SDR
    assert m["stft_distance"][0] == pytest.approx(2 * magnitudes(x).norm().item(), rel=1e-5)
    assert m["si_sdr_mixture"][0] == pytest.approx(10.0, abs=0.3)  # noise nearly orthogonal to the tone
    assert m["si_sdri"][0] == pytest.approx(m["si_sdr"][0] - m["si_sdr_mixture"][0])
    # the mixture's magnitudes with the target's phase: between the mixture and the clean target
    assert m["si_sdr_mixture"][0] - 1 < m["si_sdr_mixture_tp"][0] < m["si_sdr"][0]
    assert m["si_sdri_tp"][0] == pytest.approx(m["si_sdr"][0] - m["si_sdr_mixture_tp"][0])


def test_aggregate_t_interval():
    agg = aggregate({"a": [1.0, 2.0, 3.0, 4.0], "b": [np.nan, 1.0]})
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2  # t_{0.975, 3}
    assert agg["a"]["mean"] == 2.5 and agg["a"]["ci_high"] == pytest.approx(2.5 + half)
    assert agg["b"]["n"] == 1 and agg["b"]["ci_low"] == agg["b"]["ci_high"] == 1.0


def test_final_estimates_keep_the_last_refinement():
    f = FinalEstimates(1, 3)
    e = torch.zeros(1, 2, 16, 32, 32)
    f.update(e, torch.tensor([[-1, 0]]), torch.tensor([[False, True]]))
    f.update(e + 1, torch.tensor([[0, 1]]), torch.tensor([[True, True]]))
    f.update(e + 2, torch.tensor([[1, 2]]), torch.tensor([[True, True]]))
    ep = f.episode(0)
    assert [float(ep[u].mean()) for u in range(3)] == [1.0, 2.0, 2.0]
    assert f.revisions[0].tolist() == [2, 2, 1]
    f.reset(0)
    with pytest.raises(ValueError, match="no estimate"):
        f.episode(0)


def _passive():
    torch.manual_seed(0)
    return PassiveSeparator(PassiveConfig(channels=(4, 8, 8, 8, 8), num_types=3)).eval()


def test_separate_episode_counts_revisions_and_an_identity_memory_equals_no_memory():
    audio = torch.randn(5, 2, 16000).numpy() * 0.05
    mono = audio.mean(axis=1)
    mem = TransformerMemory(MemoryConfig(memory_size=4, refine_past=2, token_channels=4, heads=2, ff_size=16,
                                         layers=1))
    a = separate_episode(_passive(), mem, audio, mono, 1)
    b = separate_episode(_passive(), NoMemory(), audio, mono, 1)
    assert a["revisions"].tolist() == [3, 3, 3, 2, 1]  # step u is refined at steps u .. min(u + E, T - 1)
    assert b["revisions"].tolist() == [1] * 5
    assert np.allclose(a["si_sdr"], b["si_sdr"], atol=1e-3)  # untrained f^T is the identity


def test_evaluate_learned_and_baseline_policies_on_a_fake_env():
    from avworld.models.separation import SeparationPolicy, SeparationPolicyConfig
    from avworld.tasks.separation_baselines import RotateInPlace
    from tests.train.separation_fakes import FakeSeparationEnvWithInfo

    env = FakeSeparationEnvWithInfo(num_steps=4)
    passive, mem = _passive(), NoMemory()
    shapes = {"rgb": (16, 16, 3), "sep_binaural": (32, 32, 32), "sep_mono": (16, 32, 32)}
    policy = SeparationPolicy(SeparationPolicyConfig(hidden_size=8, visual_size=8, audio_size=8, mono_size=8),
                              shapes, 3)
    learned = LearnedSeparationPolicy(policy, passive, mem, seed=0)
    r1 = evaluate(env, learned, passive, mem, 3, seed=0)
    r2 = evaluate(env, RotateInPlace(), passive, mem, 3, seed=0)
    for r in (r1, r2):
        assert len(r["per_episode"]) == 3 and r["aggregate"]["si_sdr"]["n"] == 3
        assert all(e["steps"] == 4 for e in r["per_episode"])
    # same seeds -> same mixtures at the start of each episode; rotate never moves away, so its
    # target stays loudest: its SI-SDR of the mixture is at least the learned (random) agent's
    assert r2["aggregate"]["si_sdr_mixture"]["mean"] >= r1["aggregate"]["si_sdr_mixture"]["mean"] - 1e-6


def test_a_trained_checkpoint_loads_as_a_learned_policy(tmp_path):
    from avworld.train.checkpoint import latest_checkpoint
    from tests.train.separation_fakes import FakeSeparationEnvWithInfo
    from tests.train.test_separation_active import _passive as frozen
    from tests.train.test_separation_active import _trainer

    tr = _trainer(tmp_path, ["ppo.total_steps=12"])
    tr.train()
    agent = LearnedSeparationPolicy.from_checkpoint(latest_checkpoint(tmp_path), frozen(), seed=0)
    assert agent.name == "separation-transformer"
    for (k, v), w in zip(agent.memory.state_dict().items(), tr.memory.state_dict().values()):
        assert torch.equal(v, w), k
    r = evaluate(FakeSeparationEnvWithInfo(num_steps=4), agent, agent.passive, agent.memory, 2, seed=0)
    assert r["aggregate"]["si_sdr"]["n"] == 2
