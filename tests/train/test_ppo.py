"""Recurrent PPO: GAE, NEXT_STEP autoreset masking, sequence minibatches, learning the toy world."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

torch = pytest.importorskip("torch")

from avworld.train.config import PPOConfig, TrainConfigError  # noqa: E402
from avworld.train.ppo import PPOTrainer, compute_gae, env_minibatches  # noqa: E402
from avworld.train.toy import ToyAudioGoalEnv, make_toy_trainer, train_toy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _t(x, dtype=torch.float32):
    return torch.tensor(x, dtype=dtype).view(-1, 1)


def test_gae_matches_hand_computation():
    # t=1 terminates; t=2 is gymnasium's autoreset step (invalid); t=3 starts a new episode
    adv, ret = compute_gae(_t([1.0, 2.0, 0.0, 3.0]), _t([0.5, 1.0, 0.7, 0.2]), torch.tensor([0.4]),
                           _t([0, 1, 0, 0], torch.bool), _t([0, 0, 0, 0], torch.bool), _t([1, 1, 0, 1], torch.bool),
                           gamma=0.9, lam=0.8)
    # A3 = 3 + .9*.4 - .2 = 3.16;  A2 = 0 (masked);  A1 = 2 - 1 = 1 (terminal: no bootstrap)
    # A0 = (1 + .9*1 - .5) + .9*.8*A1 = 1.4 + .72 = 2.12
    assert torch.allclose(adv.view(-1), torch.tensor([2.12, 1.0, 0.0, 3.16]))
    assert torch.allclose(ret.view(-1), torch.tensor([2.62, 2.0, 0.7, 3.36]))


def test_gae_bootstraps_truncated_episodes_from_the_final_observation():
    # t=1 is truncated: its target bootstraps from V(final obs) = values[2], stored at the autoreset step
    adv, _ = compute_gae(_t([1.0, 1.0, 0.0]), _t([2.0, 3.0, 5.0]), torch.tensor([7.0]), _t([0, 0, 0], torch.bool),
                         _t([0, 1, 0], torch.bool), _t([1, 1, 0], torch.bool), gamma=0.5, lam=1.0)
    # A1 = 1 + .5*5 - 3 = 0.5;  A0 = (1 + .5*3 - 2) + .5*A1 = 0.75
    assert torch.allclose(adv.view(-1), torch.tensor([0.75, 0.5, 0.0]))


class CountEnv(gym.Env):
    """Episodes of exactly ``length`` steps with reward 1; terminates (or truncates) at the end."""

    def __init__(self, length: int, truncate: bool = False) -> None:
        self.length, self.truncate = length, truncate
        self.observation_space = spaces.Dict({"depth": spaces.Box(0, 1, (4, 4, 1), np.float32),
                                              "spectrogram": spaces.Box(0, 1, (2, 65, 7), np.float32)})
        self.action_space = spaces.Discrete(4)
        self.t = 0

    def _obs(self):
        return {"depth": np.full((4, 4, 1), self.t / 10, np.float32), "spectrogram": np.zeros((2, 65, 7), np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        end = self.t >= self.length
        return self._obs(), 1.0, end and not self.truncate, end and self.truncate, {"success": end}


def _count_trainer(num_steps=8):
    from avworld.models.nav import build_policy, model_config

    envs = gym.vector.SyncVectorEnv([lambda: CountEnv(3), lambda: CountEnv(4, truncate=True)])
    torch.manual_seed(0)
    policy = build_policy("avnav", {"depth": (4, 4, 1), "spectrogram": (2, 65, 7)}, 4,
                          config=model_config("avnav", visual_keys=("depth",), hidden_size=8, visual_size=8,
                                              audio_size=8, visual_channels=(2, 2, 2), audio_channels=(2, 2, 2)))
    cfg = PPOConfig(num_envs=2, num_steps=num_steps, total_steps=10 * num_steps * 2, num_minibatches=2)
    return PPOTrainer(envs, policy, cfg)


def test_next_step_autoreset_steps_are_masked():
    tr = _count_trainer()
    tr.reset_envs()
    tr.collect()
    ro = tr.rollout
    # env 0: 3 real steps, then the autoreset step (action ignored, reward 0) -> pattern of period 4
    assert ro.valid[:, 0].tolist() == [True, True, True, False] * 2
    assert ro.episode_start[:, 0].tolist() == [True, False, False, False] * 2
    assert ro.terminated[:, 0].tolist() == [False, False, True, False] * 2
    assert ro.rewards[:, 0].tolist() == [1, 1, 1, 0] * 2
    # env 1: 4 steps then truncation, autoreset at t = 4
    assert ro.valid[:, 1].tolist() == [True] * 4 + [False] + [True] * 3
    assert ro.truncated[:, 1].tolist() == [False, False, False, True, False, False, False, False]
    assert ro.episode_start[:, 1].tolist() == [True] + [False] * 4 + [True] + [False] * 2
    # the observation acted on at an autoreset step is the final observation of the ended episode
    assert float(ro.obs["depth"][3, 0, 0, 0, 0]) == pytest.approx(0.3)
    assert float(ro.obs["depth"][4, 1, 0, 0, 0]) == pytest.approx(0.4)
    returns = sorted(r["return"] for r in tr.window)
    assert returns == [3.0, 3.0, 4.0]  # no reward leaks from the autoreset step into the next episode
    assert all(r["success"] == 1.0 for r in tr.window)
    # the next rollout continues: env 0 has its autoreset step pending at t = 0
    tr.collect()
    assert ro.valid[:, 0].tolist() == [True, True, True, False] * 2


def test_minibatches_keep_whole_sequences():
    g = torch.Generator().manual_seed(0)
    mbs = env_minibatches(6, 3, g)
    assert len(mbs) == 3 and all(len(m) == 2 for m in mbs)
    assert sorted(torch.cat(mbs).tolist()) == list(range(6))
    # replaying a minibatch of whole sequences from the stored initial hidden state reproduces the rollout
    tr = make_toy_trainer("agsa", total_steps=1 << 20, ppo={"num_envs": 4, "num_steps": 24})
    tr.reset_envs()
    tr.collect()
    tr.collect()  # the second rollout starts from a non-zero hidden state
    ro = tr.rollout
    assert bool(ro.episode_start[1:].any())  # episodes end inside the rollout
    for mb in env_minibatches(4, 2, g):
        lp, v, _, _ = tr.policy.evaluate_actions({k: x[:, mb] for k, x in ro.obs.items()}, ro.hidden0[:, mb],
                                                 ro.episode_start[:, mb], ro.actions[:, mb])
        assert torch.allclose(lp, ro.logprobs[:, mb], atol=1e-5)
        assert torch.allclose(v, ro.values[:, mb], atol=1e-5)


def test_trainer_rejects_bad_setups():
    envs = gym.vector.SyncVectorEnv([lambda: CountEnv(3)] * 2, autoreset_mode="SameStep")
    tr = _count_trainer()
    with pytest.raises(TrainConfigError, match="NEXT_STEP"):
        PPOTrainer(envs, tr.policy, tr.cfg)
    with pytest.raises(TrainConfigError, match="num_envs"):
        PPOTrainer(tr.envs, tr.policy, PPOConfig(num_envs=3))
    with pytest.raises(TrainConfigError, match="num_minibatches"):
        PPOConfig(num_envs=2, num_minibatches=4)


def test_ppo_learns_the_toy_audio_goal_world():
    rng = np.random.default_rng(0)
    env, successes = ToyAudioGoalEnv(), []
    for k in range(200):  # a uniformly random agent
        env.reset(seed=k)
        while True:
            _, _, term, trunc, info = env.step(int(rng.integers(4)))
            if term or trunc:
                successes.append(info["success"])
                break
    random_success = float(np.mean(successes))
    result = train_toy("avnav", total_steps=16384, seed=0, ppo={"lr_decay": False, "clip_decay": False})
    assert random_success < 0.1
    assert result["episode/success"] >= 0.8, result
    assert result["episode/return"] >= 11.0, result  # optimal is about 13 (10 + start distance - step costs)
    assert result["episode/spl"] >= 0.6, result


class BoxCountEnv(CountEnv):
    """CountEnv with AudioGoalContinuous-style actions (linear, angular, stop)."""

    def __init__(self) -> None:
        super().__init__(5)
        self.action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.seen = []

    def step(self, action):
        self.seen.append(np.asarray(action))
        return super().step(action)


def test_continuous_actions_are_trained_and_clipped_for_the_env():
    from avworld.models.nav import build_policy, model_config

    envs = gym.vector.SyncVectorEnv([BoxCountEnv, BoxCountEnv])
    policy = build_policy("avnav", {"depth": (4, 4, 1), "spectrogram": (2, 65, 7)}, 3, continuous=True,
                          config=model_config("avnav", visual_keys=("depth",), hidden_size=8, visual_size=8,
                                              audio_size=8, visual_channels=(2, 2, 2), audio_channels=(2, 2, 2)))
    with torch.no_grad():
        policy.log_std.fill_(1.0)  # wide: many samples fall outside [-1, 1]
    tr = PPOTrainer(envs, policy, PPOConfig(num_envs=2, num_steps=8, total_steps=32, num_minibatches=2))
    before = [p.detach().clone() for p in policy.parameters()]
    result = tr.train()
    assert tr.rollout.actions.shape == (8, 2, 3) and float(tr.rollout.actions.abs().max()) > 1
    assert all(np.abs(a).max() <= 1 for a in envs.envs[0].unwrapped.seen)
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    assert np.isfinite(result["loss/policy"])


def test_checkpointing_async_envs_without_state_keeps_them_alive(tmp_path):
    envs = gym.vector.AsyncVectorEnv([lambda: CountEnv(3), lambda: CountEnv(4)])
    try:
        tr = _count_trainer()
        tr = PPOTrainer(envs, tr.policy, tr.cfg, out_dir=tmp_path, tensorboard=False)
        tr.reset_envs()
        assert tr.state_dict()["trainer"][0]["env_states"] is None
        tr.collect()  # the workers still answer
    finally:
        envs.close()


def test_action_mask_warmup_forbids_actions_until_the_step_then_releases_them():
    ppo = {"num_envs": 4, "num_steps": 32, "mask_actions": (0,), "mask_until_step": 256}
    tr = make_toy_trainer("avnav", total_steps=512, seed=5, ppo=ppo)
    seen = []
    collect = tr.collect

    def spy():
        out = collect()
        seen.append((tr.global_step, tr.rollout.actions[tr.rollout.valid].clone()))
        return out

    kls = []
    learn = tr.learn

    def spy_learn(next_value):
        ro = tr.rollout
        with torch.no_grad():  # before any update, learning must see the policy the rollout was collected with
            logp, _, _, _ = tr.policy.evaluate_actions(ro.obs, ro.hidden0, ro.episode_start, ro.actions)
        kls.append(float((logp - ro.logprobs)[ro.valid].abs().max()))
        return learn(next_value)

    tr.collect, tr.learn = spy, spy_learn
    try:
        result = tr.train()
    finally:
        tr.envs.close()
    masked = [a for step, a in seen if step < 256]
    free = [a for step, a in seen if step >= 256]
    assert len(masked) == 2 and len(free) == 2
    assert all((a != 0).all() for a in masked)  # no STOP during the warm-up
    assert any((a == 0).any() for a in free)  # the untrained policy calls STOP once released
    assert tr.policy.masked_actions == ()  # the trained policy is left unmasked
    assert len(kls) == 4 and max(kls) < 1e-4 and result["update"] == 4
    with pytest.raises(TrainConfigError, match="mask_actions"):
        make_toy_trainer("avnav", total_steps=64, ppo={"num_envs": 2, "num_steps": 8, "mask_actions": (0, 1, 2, 3),
                                                       "mask_until_step": 10})


@pytest.mark.parametrize("per_scene", [0, 5])
def test_on_the_fly_training_envs_take_the_episode_pool_setting(per_scene):
    from avworld.train.config import EnvConfig
    from avworld.train.nav import make_nav_envs

    vec = make_nav_envs(EnvConfig(size=16, num_scenes=1, asynchronous=False, episodes_per_scene=per_scene), 2)
    try:
        assert [e.unwrapped.config.episodes_per_scene for e in vec.envs] == [per_scene, per_scene]
    finally:
        vec.close()
    with pytest.raises(ValueError, match="episodes_per_scene"):
        EnvConfig(episodes_per_scene=-1)


def test_resuming_a_run_saved_before_the_episode_pool_keeps_a_new_episode_per_reset():
    from avworld.train.nav import resumed_env_config

    assert resumed_env_config({"size": 16}).episodes_per_scene == 0
    assert resumed_env_config({"size": 16, "episodes_per_scene": 64}).episodes_per_scene == 64
