"""Training and evaluating the navigation agents on ``avworld/AudioGoal-v0`` (what the CLI runs).

:func:`train_nav` resolves a preset, builds the per-process vector env (episodes sharded
over DD-PPO ranks), the policy and the :class:`~avworld.train.ppo.PPOTrainer`, saves the
resolved ``config.json`` and resumes from the run's latest checkpoint on request.
:func:`evaluate_nav` runs a checkpoint over an episode file and returns the task metrics
with the AGDF gate statistics.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from avworld.train import distributed as ddp
from avworld.train.checkpoint import CheckpointError, build_from_checkpoint, latest_checkpoint, load_checkpoint
from avworld.train.config import EnvConfig, PPOConfig, TrainConfigError, override, resolve
from avworld.train.ppo import PPOTrainer


def make_nav_envs(env_cfg: EnvConfig, num_envs: int, rank: int = 0, world_size: int = 1):
    """This rank's vector env: ``num_envs`` AudioGoal envs over its shard of the episodes (or sampled houses)."""
    import avworld.tasks  # noqa: F401  (registers the env ids)
    from avworld.tasks import load_episodes, make_vector_env

    kwargs = {"width": env_cfg.size, "height": env_cfg.size, "observations": env_cfg.observations,
              "step_limit": env_cfg.step_limit, "pointgoal": env_cfg.pointgoal, "preset": env_cfg.motion}
    episodes = None
    if env_cfg.episodes:
        episodes = load_episodes(env_cfg.episodes)[1][rank::world_size]
        if len(episodes) < num_envs:
            raise TrainConfigError(f"{env_cfg.episodes}: {len(episodes)} episodes for rank {rank} cannot feed "
                                   f"{num_envs} envs; use more episodes or fewer envs / processes")
        # keep every house of the file built: rebuilding a world on a cache miss costs ~70 ms, a whole
        # step's budget many times over, and with an LRU smaller than the house count it happens every reset
        kwargs["world_cache"] = len({ep.scene for ep in episodes})
    else:
        kwargs.update(split=env_cfg.split, num_scenes=env_cfg.num_scenes, rooms=env_cfg.rooms,
                      world_cache=env_cfg.num_scenes)
    return make_vector_env(num_envs, episodes, asynchronous=env_cfg.asynchronous and num_envs > 1,
                           env_id=env_cfg.env_id, **kwargs)


def _episode_metrics(outcome: dict) -> dict:
    from avworld.eval.nav_metrics import episode_metrics

    return episode_metrics(outcome)


def train_nav(agent: str, preset: str, out_dir: str | Path, ablations: tuple[str, ...] = (), ppo: dict | None = None,
              env: dict | None = None, model: dict | None = None, resume: bool = False, device: str | None = None,
              progress: bool = True, tensorboard: bool = True) -> dict:
    """Train ``agent`` with ``preset`` (+ overrides) into ``out_dir``; returns the last logged values."""
    from avworld.models.nav import build_policy, model_config

    out = Path(out_dir)
    info = ddp.setup(device)
    try:
        if resume:
            saved = _saved_config(out)
            total = (ppo or {}).get("total_steps")
            ppo_cfg = override(PPOConfig(), saved["ppo"], "PPO")
            ppo_cfg = replace(ppo_cfg, total_steps=total) if total else ppo_cfg
            ppo_cfg = replace(ppo_cfg, time_limit_s=(ppo or {}).get("time_limit_s"))  # this job's wall time
            env_cfg = override(EnvConfig(), saved["env"], "env")
            agent, preset, ablations, model_kw = (saved["agent"], saved["preset"], tuple(saved["ablations"]),
                                                  saved["model"])
        else:
            ppo_cfg, env_cfg, model_kw = resolve(preset, ppo, env)
            model_kw = {**model_kw, **(model or {})}
        mcfg = model_config(agent, ablations, **model_kw)
        torch.manual_seed(ppo_cfg.seed)  # identical initial weights on every rank (rank 0's are broadcast anyway)
        envs = make_nav_envs(env_cfg, ppo_cfg.num_envs, info.rank, info.world_size)
        try:
            obs_space, act_space = envs.single_observation_space, envs.single_action_space
            shapes = {k: tuple(s.shape) for k, s in obs_space.spaces.items()}
            continuous = not hasattr(act_space, "n")
            policy = build_policy(agent, shapes, int(act_space.shape[0]) if continuous else int(act_space.n),
                                  continuous, mcfg)
            run_info = {"agent": agent, "preset": preset, "ablations": list(ablations), "ppo": asdict(ppo_cfg),
                        "env": asdict(env_cfg), "model": asdict(mcfg), "world_size": info.world_size,
                        "parameters": policy.num_parameters()}
            if info.is_main and not resume:
                out.mkdir(parents=True, exist_ok=True)
                (out / "config.json").write_text(json.dumps(run_info, indent=2) + "\n")
            trainer = PPOTrainer(envs, policy, ppo_cfg, agent=agent, out_dir=out, dist=info,
                                 episode_metrics=_episode_metrics, tensorboard=tensorboard,
                                 progress=progress and info.is_main, run_info=run_info)
            if resume:
                path = latest_checkpoint(out)
                exact = trainer.load_state_dict(load_checkpoint(path, info.device), path)
                if info.is_main:
                    how = "exactly" if exact else "with re-seeded envs (episodes in progress restart)"
                    print(f"resuming {path} at update {trainer.update}, step {trainer.global_step:,} {how}")
            return trainer.train()
        finally:
            envs.close()
    finally:
        ddp.teardown()


def _saved_config(out: Path) -> dict:
    path = out / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{out}: no config.json to resume from; train into this directory first "
                              "(without --resume)")
    return json.loads(path.read_text())


class LearnedAgent:
    """A trained policy with the baseline-agent interface of :mod:`avworld.tasks.baselines`.

    ``reset(env)`` starts an episode (zero GRU state), ``act(obs, info) -> action`` takes
    one env's observation dict. Accumulates AGSA's gate ω over every step (``omega_stats``).
    ``LearnedAgent.from_checkpoint(path)`` loads one (``zero_visual=True``: without vision).
    """

    name = "learned"

    def __init__(self, policy, deterministic: bool = False, seed: int = 0, device=None) -> None:
        self.policy, self.deterministic = policy.eval(), deterministic
        self.device = torch.device(device) if device is not None else next(policy.parameters()).device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._omega = [0.0, 0.0, 0]
        self.reset(None)

    @classmethod
    def from_checkpoint(cls, path, deterministic: bool = False, seed: int = 0, device: str | None = None,
                        **config_overrides) -> LearnedAgent:
        dev = ddp.pick_device(device)
        policy, ckpt = build_from_checkpoint(path, dev, **config_overrides)
        agent = cls(policy, deterministic, seed, dev)
        agent.checkpoint = ckpt
        agent.name = str(ckpt.get("agent", "learned"))
        return agent

    def reset(self, env) -> None:
        self.hidden = self.policy.initial_state(1, self.device)
        self.start = torch.ones(1, dtype=torch.bool, device=self.device)

    @torch.no_grad()
    def act(self, obs, info=None):
        o = {k: torch.as_tensor(np.asarray(obs[k]), device=self.device).unsqueeze(0) for k in self.policy.obs_keys}
        out = self.policy.act(o, self.hidden, self.start, self.deterministic, self.generator)
        self.hidden, self.start = out.hidden, torch.zeros_like(self.start)
        if "omega" in out.aux:
            w = out.aux["omega"].float()
            s = self._omega
            self._omega = [s[0] + w.sum().item(), s[1] + (w * w).sum().item(), s[2] + w.numel()]
        action = out.action[0].cpu().numpy()
        return action if self.policy.continuous else int(action)

    def omega_stats(self) -> dict | None:
        s0, s1, n = self._omega
        if not n:
            return None
        mean = s0 / n
        return {"mean": mean, "std": math.sqrt(max(s1 / n - mean * mean, 0.0))}


def evaluate_nav(checkpoint: str | Path, episodes: str | Path, num: int | None = None, no_vision: bool = False,
                 deterministic: bool = False, seed: int = 0, device: str | None = None, progress=None) -> dict:
    """Run a checkpoint over an episode file: per-episode metrics, aggregate and ω statistics."""
    import gymnasium as gym

    import avworld.tasks  # noqa: F401
    from avworld.eval.nav_metrics import aggregate
    from avworld.eval.nav_runner import evaluate

    overrides = {"zero_visual": True} if no_vision else {}
    agent = LearnedAgent.from_checkpoint(checkpoint, deterministic, seed, device, **overrides)
    ckpt, policy = agent.checkpoint, agent.policy
    saved_env = ckpt.get("run_info", {}).get("env", {})
    image = policy.obs_shapes.get("depth", policy.obs_shapes.get("rgb", (128,)))
    size = int(saved_env.get("size", image[0]))
    env = gym.make(saved_env.get("env_id", "avworld/AudioGoal-v0"), episodes=str(episodes), width=size, height=size,
                   observations=saved_env.get("observations", "audiovisual"),
                   step_limit=int(saved_env.get("step_limit", 500)),
                   pointgoal=bool(saved_env.get("pointgoal", False)),
                   preset=saved_env.get("motion", "soundspaces2"))
    try:
        n = len(env.unwrapped.episodes) if num is None else min(num, len(env.unwrapped.episodes))
        if n < 1:
            raise TrainConfigError(f"{episodes} has no episodes to evaluate")
        per_episode = evaluate(env, agent, n, seed=seed, progress=progress)
    finally:
        env.close()
    result = {"checkpoint": str(checkpoint), "episodes": str(episodes), "num_episodes": n, "no_vision": no_vision,
              "deterministic": deterministic, "agent": ckpt.get("agent"), "global_step": ckpt.get("global_step"),
              "aggregate": aggregate(per_episode), "per_episode": per_episode}
    if agent.omega_stats() is not None:
        result["omega"] = agent.omega_stats()
    return result
