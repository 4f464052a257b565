"""The AudioGoal gymnasium environments: API conformance, determinism, rewards, errors."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import avworld.tasks  # noqa: F401  (registers the ids)
from avworld.geometry.actions import Action
from avworld.tasks import ENV_IDS, AudioGoalEnv
from avworld.tasks.baselines import OracleAgent
from avworld.tasks.episodes import EpisodeError

SMALL = {"width": 32, "height": 32}

OPTION_SETS = [
    {},
    {"observations": "audio"},
    {"observations": "vision"},
    {"observations": "audiodepth"},
    {"pointgoal": True},
    {"observations": "audio", "pointgoal": True},
]


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_check_env_passes(env_id, options, episode_file):
    env = gym.make(env_id, episodes=episode_file, **SMALL, **options)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert set(obs) == set(env.observation_space.spaces)
    assert env.observation_space.contains(obs)


def test_observation_layout(episode_file):
    env = AudioGoalEnv(episodes=episode_file, pointgoal=True, **SMALL)
    obs, info = env.reset(seed=1)
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (32, 32, 1) and obs["depth"].dtype == np.float32
    assert 0.0 <= obs["depth"].min() and obs["depth"].max() <= 1.0
    assert obs["audio"].shape == (2, 4000) and obs["audio"].dtype == np.float32  # 0.25 s at 16 kHz
    assert obs["spectrogram"].shape == (2, 65, 7)
    assert np.abs(obs["audio"]).max() > 0  # the phone rings from the first step
    ep = env.unwrapped.episode
    dx, dy = ep.goal_xy[0] - ep.start_pose[0], ep.goal_xy[1] - ep.start_pose[1]
    assert obs["pointgoal"][0] == pytest.approx(np.hypot(dx, dy), rel=1e-5)


def test_seeded_resets_replay_identically(episode_file):
    def rollout(seed):
        env = gym.make("avworld/AudioGoal-v0", episodes=episode_file, **SMALL)
        obs, _ = env.reset(seed=seed)
        seq = [obs]
        for a in [1, 2, 1, 3, 1, 1]:
            obs, r, *_ = env.step(a)
            seq.append({**obs, "r": np.array(r)})
        return seq

    a, b, c = rollout(5), rollout(5), rollout(6)
    for x, y in zip(a, b):
        for k in x:
            assert x[k].tobytes() == y[k].tobytes(), k
    assert any(x["audio"].tobytes() != z["audio"].tobytes() for x, z in zip(a, c))


def test_reward_is_slack_plus_geodesic_progress_and_success_bonus(episode_file):
    env = AudioGoalEnv(episodes=episode_file, observations="vision", **SMALL)
    obs, info = env.reset(options={"episode_index": 0})
    agent = OracleAgent()
    agent.reset(env)
    field = env.world_.nav.geodesic_field(env.goal_xy)
    d_prev = float(field.distance_at(env.sim.pose[:2]))
    while True:
        action = agent.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        d = float(field.distance_at(env.sim.pose[:2]))
        bonus = 10.0 if (action == Action.STOP and d <= 1.0) else 0.0
        assert reward == pytest.approx(-0.01 + (d_prev - d) + bonus, abs=1e-9)
        d_prev = d
        if terminated or truncated:
            break
    assert terminated and info["success"] and info["outcome"]["success"]
    assert info["outcome"]["actions"] == info["steps"]


def test_stop_far_from_goal_fails_and_ends(episode_file):
    env = AudioGoalEnv(episodes=episode_file, observations="vision", **SMALL)
    env.reset(options={"episode_index": 1})
    _, reward, terminated, truncated, info = env.step(int(Action.STOP))
    assert terminated and not truncated and not info["success"]
    assert reward == pytest.approx(-0.01)
    with pytest.raises(EpisodeError, match="reset"):
        env.step(1)


def test_step_limit_truncates(episode_file):
    env = AudioGoalEnv(episodes=episode_file, observations="vision", step_limit=3, **SMALL)
    env.reset(options={"episode_index": 0})
    results = [env.step(int(Action.TURN_LEFT)) for _ in range(3)]
    assert [r[3] for r in results] == [False, False, True] and not any(r[2] for r in results)
    assert results[-1][4]["outcome"]["actions"] == 3


def test_continuous_actions_move_and_stop(episode_file):
    env = AudioGoalEnv(episodes=episode_file, continuous=True, observations="vision", **SMALL)
    env.reset(options={"episode_index": 0})
    x0 = env.sim.pose.copy()
    env.step(np.array([0.0, 1.0, -1.0], np.float32))  # turn at full rate for 0.25 s
    assert env.sim.pose[2] == pytest.approx(float(np.angle(np.exp(1j * (x0[2] + np.pi / 8)))), abs=1e-9)
    _, _, terminated, _, _ = env.step(np.array([0.0, 0.0, 1.0], np.float32))
    assert terminated
    with pytest.raises(EpisodeError, match="3 finite numbers"):
        env.reset(options={"episode_index": 0})
        env.step(np.array([0.0, np.nan, 0.0]))


def test_bad_actions_and_options(episode_file):
    env = AudioGoalEnv(episodes=episode_file, observations="vision", **SMALL)
    env.reset(options={"episode_index": 0})
    with pytest.raises(EpisodeError, match="action must be one of"):
        env.step(7)
    with pytest.raises(EpisodeError, match="out of range"):
        env.reset(options={"episode_index": 99})
    with pytest.raises(EpisodeError, match="no episode with id"):
        env.reset(options={"episode_id": "nope"})
    with pytest.raises(EpisodeError, match="unknown AudioGoalEnv options"):
        AudioGoalEnv(episodes=episode_file, colour=True)
    with pytest.raises(EpisodeError, match="observations"):
        AudioGoalEnv(observations="smell")


def test_on_the_fly_episodes_are_seeded():
    env = AudioGoalEnv(num_scenes=2, observations="vision", **SMALL)
    _, i1 = env.reset(seed=11)
    e1 = env.unwrapped.episode
    _, i2 = env.reset(seed=11)
    assert env.unwrapped.episode.start_pose == e1.start_pose and e1.scene.startswith("house:")
    assert i1["distance_to_goal"] >= 2.0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_state_restores_an_episode_in_progress_bit_identically(env_id, episode_file):
    discrete = env_id == "avworld/AudioGoal-v0"
    rng = np.random.default_rng(0)
    actions = ([int(a) for a in rng.choice([1, 1, 1, 2, 3, 0], size=40)] if discrete
               else [rng.uniform(-1, 1, 3).astype(np.float32) for _ in range(40)])

    def run(env, acts):
        out = []
        for a in acts:
            obs, r, term, trunc, info = env.step(a)
            out.append((obs, r, term, info["pose"]))
            if term or trunc:
                obs, info = env.reset()  # the next episode is drawn from the env's generator
                out.append((obs, 0.0, False, info["pose"]))
        return out

    a = gym.make(env_id, episodes=episode_file, **SMALL)
    a.reset(seed=11)
    run(a, actions[:9])
    saved = a.unwrapped.state
    b = gym.make(env_id, episodes=episode_file, **SMALL)
    assert b.unwrapped.state is None
    b.reset(seed=99)  # gymnasium's wrappers want a reset before steps (vector envs do this too)
    b.unwrapped.state = saved  # another episode in another env: it replays the saved one
    assert b.unwrapped.state == saved
    ra, rb = run(a, actions[9:]), run(b, actions[9:])
    assert len(ra) == len(rb) > len(actions[9:])  # at least one episode ended and a new one was drawn
    for (oa, xa, ta, pa), (ob, xb, tb, pb) in zip(ra, rb):
        assert xa == xb and ta == tb and np.array_equal(pa, pb)
        for k in oa:
            assert oa[k].tobytes() == ob[k].tobytes(), k
    with pytest.raises(EpisodeError, match="state must be a dict"):
        b.unwrapped.state = {"rng": 1}


def test_envs_of_one_process_share_worlds_without_changing_outputs(episode_file):
    def run(env, seed, actions):
        obs, _ = env.reset(seed=seed, options={"episode_index": 0})
        seq = [obs]
        for a in actions:
            obs, r, term, trunc, _ = env.step(a)
            seq.append({**obs, "r": np.array(r)})
            if term or trunc:
                break
        return seq

    acts = [1, 2, 1, 1, 3, 1, 2, 2, 1]
    alone = run(gym.make("avworld/AudioGoal-v0", episodes=episode_file, **SMALL), 4, acts)
    b = gym.make("avworld/AudioGoal-v0", episodes=episode_file, **SMALL)
    c = gym.make("avworld/AudioGoal-v0", episodes=episode_file, **SMALL)
    for k in (1, 0, 2):  # c fills the shared world's caches with other and overlapping positions first
        c.reset(seed=k, options={"episode_index": k})
        for a in [1, 1, 3, 1, 2, 1]:
            c.step(a)
    shared = run(b, 4, acts)
    spec = b.unwrapped.episode.scene
    assert b.unwrapped.world(spec) is c.unwrapped.world(spec)
    assert len(alone) == len(shared)
    for x, y in zip(alone, shared):
        for k in x:
            assert x[k].tobytes() == y[k].tobytes(), k
