"""The beam planner with the Oracle WM: it maximizes reward + value of the real env, never touches the
real env, and is deterministic for a seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avworld.planning.agent import PlanningAgent
from avworld.planning.beam import BeamPlanner, PlannerConfig, PlannerConfigError
from avworld.planning.policy import PolicyHead
from avworld.planning.world_models import OracleWorldModel, clone_env

from .conftest import make_env, tiny_policy

GAMMA = 0.9


def walk(env, head, actions):
    """Reset episode 0, take ``actions``, feeding every observation to the policy; -> (obs, root PolicyOut)."""
    obs, _ = env.reset(seed=0, options={"episode_index": 0})
    out = head.evaluate([obs], head.initial_state(1), start=True)
    for a in actions:
        obs, *_ = env.step(a)
        out = head.evaluate([obs], out.hidden)
    return obs, out


def true_scores(env, avw_episodes, head, root) -> np.ndarray:
    """r(a) + gamma V(o'(a)) for every action, each from a fresh env rebuilt by replaying the real env's
    actions (its ``state`` setter), not from the planner's clones."""
    scores = []
    for a in range(4):
        twin = make_env(avw_episodes)
        twin.reset(seed=0)
        twin.unwrapped.state = env.unwrapped.state
        o, r, term, _, _ = twin.step(a)
        v = 0.0 if term else float(head.evaluate([o], root.hidden).value[0])
        scores.append(r + GAMMA * v)
        twin.close()
    return np.array(scores)


@pytest.mark.parametrize("prefix", [[], [1, 1, 2], [3, 1, 1, 1]])
def test_h1_all_actions_picks_the_true_best_of_reward_plus_value(env, avw_episodes, prefix):
    head = PolicyHead(tiny_policy(env, seed=len(prefix)))
    _, root = walk(env, head, prefix)
    planner = BeamPlanner(head, OracleWorldModel(), PlannerConfig(candidates=4, beam=4, horizon=1, gamma=GAMMA))
    plan = planner.plan(env, root)
    want = true_scores(env, avw_episodes, head, root)
    assert sorted(plan.candidates) == [(0,), (1,), (2,), (3,)]
    got = np.array([plan.candidates[(a,)] for a in range(4)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.sort(want)[-1] - np.sort(want)[-2] > 1e-4  # a clear winner, so the check means something
    assert plan.action == int(np.argmax(want)) and plan.sequence == (plan.action,)


def fingerprint(env):
    b = env.unwrapped
    return (repr(b.state), b.sim.pose.tobytes(), b.sim.step_index, b._dist, b._steps, b._path_m, b._done,
            {k: np.asarray(v).tobytes() for k, v in b._last.items() if isinstance(v, np.ndarray)})


def test_look_ahead_never_touches_the_real_env(avw_episodes):
    env, ref = make_env(avw_episodes), make_env(avw_episodes)
    head = PolicyHead(tiny_policy(env))
    walk(ref, head, [1, 2])
    _, root = walk(env, head, [1, 2])
    before = fingerprint(env)
    planner = BeamPlanner(head, OracleWorldModel(), PlannerConfig(candidates=3, beam=2, horizon=3, gamma=GAMMA))
    plan = planner.plan(env, root)
    assert len(plan.candidates) > 3  # it did look ahead several steps
    assert fingerprint(env) == before
    # and the real env continues exactly like one that never planned
    for a in (1, 1, 3):
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = ref.step(a)
        assert r1 == r2
        for k in ("rgb", "depth", "audio", "spectrogram"):
            assert o1[k].tobytes() == o2[k].tobytes(), k
    env.close()
    ref.close()


def test_clone_env_steps_like_the_env(env):
    env.reset(seed=0, options={"episode_index": 1})
    env.step(1)
    c = clone_env(env)
    a = c.step(1)
    b = env.step(1)
    assert a[1] == b[1] and a[0]["audio"].tobytes() == b[0]["audio"].tobytes()
    assert a[0]["rgb"].tobytes() == b[0]["rgb"].tobytes()


def run_agent(avw_episodes, seed: int, steps: int = 4):
    env = make_env(avw_episodes)
    agent = PlanningAgent(tiny_policy(env), OracleWorldModel(),
                          PlannerConfig(candidates=2, beam=2, horizon=2, gamma=GAMMA, seed=seed))
    obs, info = env.reset(seed=0, options={"episode_index": 0})
    agent.reset(env.unwrapped)
    acts, plans = [], []
    for _ in range(steps):
        a = agent.act(obs, info)
        acts.append(a)
        plans.append(sorted(agent.plans[-1].candidates.items()))
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    env.close()
    return acts, plans


def test_same_seed_same_plan(avw_episodes):
    a1, p1 = run_agent(avw_episodes, seed=5)
    a2, p2 = run_agent(avw_episodes, seed=5)
    assert a1 == a2 and p1 == p2
    # K = 2 of 4 actions: the candidates are drawn, and other seeds draw other ones somewhere
    others = [run_agent(avw_episodes, seed=s, steps=2)[1] for s in (6, 7, 8)]
    assert any(o != p1[: len(o)] for o in others)


def test_bad_settings_are_typed_errors():
    with pytest.raises(PlannerConfigError, match="beam"):
        PlannerConfig(beam=0)
    with pytest.raises(PlannerConfigError, match="gamma"):
        PlannerConfig(gamma=1.5)


class FakeHead:
    """Uniform policy; value = the observation's "v"."""

    num_actions = 4

    def initial_state(self, n=1):
        return torch.zeros(1, n, 1)

    def evaluate(self, obs, hidden, start=False):
        from avworld.planning.policy import PolicyOut

        n = len(obs)
        return PolicyOut(torch.full((n, 4), 0.25), torch.tensor([float(o["v"]) for o in obs]), hidden)


class TableWM:
    """State = the action sequence so far; reward from a table (0 elsewhere); STOP ends the episode."""

    name, predicts_stop = "table", True

    def __init__(self, rewards, values=None):
        self.rewards, self.values, self.calls = rewards, values or {}, []

    def root(self, env):
        return ()

    def step(self, states, actions):
        from avworld.planning.world_models import Prediction

        self.calls.append(len(states))
        nxt = [s + (a,) for s, a in zip(states, actions, strict=True)]
        term = np.array([a == 0 for a in actions])
        return Prediction([{"v": self.values.get(s, 0.0)} for s in nxt],
                          np.array([self.rewards.get(s, 0.0) for s in nxt]), term, term, nxt)


def test_beam_width_finds_what_greedy_misses():
    # greedy (B = 1) keeps (1,) for its reward 1.0; a beam of 2 also keeps (2,) and finds (2, 1): 0.5 + 2.0
    rewards = {(1,): 1.0, (2,): 0.5, (2, 1): 2.0}
    root = FakeHead().evaluate([{"v": 0.0}], torch.zeros(1, 1, 1))
    greedy = BeamPlanner(FakeHead(), TableWM(rewards), PlannerConfig(candidates=4, beam=1, horizon=2, gamma=1.0))
    assert greedy.plan(None, root).sequence[0] == 1
    wm = TableWM(rewards)
    beam = BeamPlanner(FakeHead(), wm, PlannerConfig(candidates=4, beam=2, horizon=2, gamma=1.0)).plan(None, root)
    assert beam.sequence == (2, 1) and beam.score == pytest.approx(2.5)
    assert wm.calls == [4, 8]  # one batched call per depth: 4 actions, then 2 beams x 4 actions
    assert beam.model_calls == 2


def test_discounting_and_leaf_values():
    g = 0.5
    wm = TableWM({(1,): 1.0, (1, 3): 2.0}, values={(1, 3): 8.0, (2,): 3.0})
    root = FakeHead().evaluate([{"v": 0.0}], torch.zeros(1, 1, 1))
    plan = BeamPlanner(FakeHead(), wm, PlannerConfig(candidates=4, beam=4, horizon=2, gamma=g)).plan(None, root)
    c = plan.candidates
    assert c[(0,)] == pytest.approx(0.0)  # STOP: terminal, no value
    assert c[(2,)] == pytest.approx(g * 3.0)  # depth-1 leaf: r + g V
    assert c[(1, 3)] == pytest.approx(1.0 + g * 2.0 + g * g * 8.0)  # r0 + g r1 + g^2 V
    assert plan.sequence == (1, 3)


def test_any_nav_policy_with_rgb_and_audio_plans(env):
    """AGSA too: the planner only needs the NavPolicy core (GRU step, actor, critic)."""
    from avworld.models.nav import build_policy, model_config

    shapes = {k: tuple(s.shape) for k, s in env.observation_space.spaces.items()}
    torch.manual_seed(0)
    policy = build_policy("agsa", shapes, 4, False, model_config("agsa", hidden_size=16, visual_size=16,
                                                                 audio_size=16, visual_keys=("rgb",))).eval()
    head = PolicyHead(policy)
    head.check_predictable()
    _, root = walk(env, head, [1])
    assert torch.allclose(root.probs.sum(-1), torch.ones(1))
    plan = BeamPlanner(head, OracleWorldModel(), PlannerConfig(candidates=2, beam=2, horizon=2)).plan(env, root)
    assert plan.action in range(4) and len(plan.candidates) >= 2
