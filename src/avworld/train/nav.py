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
from avworld.train.checkpoint import CheckpointError, build_from_checkpoint, latest_checkpoint, resume_trainer
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
                      world_cache=env_cfg.num_scenes, episodes_per_scene=env_cfg.episodes_per_scene)
    return make_vector_env(num_envs, episodes, asynchronous=env_cfg.asynchronous and num_envs > 1,
                           env_id=env_cfg.env_id, **kwargs)


def resumed_env_config(saved_env: dict) -> EnvConfig:
    """The EnvConfig of a run being resumed. Runs saved before ``episodes_per_scene`` existed sampled a new
    episode at every reset, so a missing key means 0, not today's default pool."""
    return override(EnvConfig(), {"episodes_per_scene": 0, **saved_env}, "env")


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
            env_cfg = resumed_env_config(saved["env"])
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
                resume_trainer(trainer, out, info.device, info.is_main)
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

    def get_state(self) -> dict:
        """What carries over between episodes (JSON-able): the action generator and the ω sums."""
        import base64

        raw = self.generator.get_state().numpy().tobytes()
        return {"generator": base64.b64encode(raw).decode("ascii"), "omega": list(self._omega)}

    def set_state(self, state: dict) -> None:
        import base64

        raw = np.frombuffer(base64.b64decode(state["generator"]), dtype=np.uint8).copy()
        self.generator.set_state(torch.from_numpy(raw))
        self._omega = [float(state["omega"][0]), float(state["omega"][1]), int(state["omega"][2])]

    def omega_stats(self) -> dict | None:
        s0, s1, n = self._omega
        if not n:
            return None
        mean = s0 / n
        return {"mean": mean, "std": math.sqrt(max(s1 / n - mean * mean, 0.0))}


def check_episode_motion(episodes: str | Path, motion: str, what: str = "the checkpoint") -> None:
    """Refuse an episode file planned for other steps than the motion preset ``motion``, naming the fix."""
    from avworld.sim.config import PRESETS as MOTION
    from avworld.tasks.episodes import episode_config_of, load_episodes

    header, _ = load_episodes(episodes)
    ec = episode_config_of(header)
    want = MOTION[motion]
    have = (ec.forward_step_m, ec.turn_deg)
    if have != (want["forward_step_m"], want["turn_deg"]):
        planned = [k for k, v in MOTION.items() if (v["forward_step_m"], v["turn_deg"]) == have]
        made = f" (motion preset {planned[0]!r})" if planned else ""
        raise TrainConfigError(
            f"{episodes}: episodes were planned for {have[0]} m / {have[1]:g} deg steps{made}, but {what} was "
            f"trained with motion {motion!r} ({want['forward_step_m']} m / {want['turn_deg']:g} deg). Evaluate it on "
            f"episodes planned for its motion: `avworld episodes make --preset {motion} ...` (the test set of "
            f"docs/results.md: --split test --scenes 10 --per-scene 5 --preset {motion} --seed 0)")


def evaluate_nav(checkpoint: str | Path, episodes: str | Path, num: int | None = None, no_vision: bool = False,
                 deterministic: bool = False, seed: int = 0, device: str | None = None, progress=None,
                 out: str | Path | None = None, threads: int | None = None, say=None) -> dict:
    """Run a checkpoint over an episode file: per-episode metrics, aggregate and ω statistics.

    With ``out``, each finished episode's row goes to ``out/episodes.csv`` at once, and a rerun with the
    same arguments resumes after the last finished episode (:mod:`avworld.eval.resume`) with identical
    results. ``threads``: torch CPU threads (default: the free cores, :mod:`avworld.train.threads`).
    ``say(text)`` receives notes (resuming, starting over).
    """
    import gymnasium as gym

    import avworld.tasks  # noqa: F401
    from avworld.eval.nav_metrics import aggregate
    from avworld.eval.nav_runner import agent_state, evaluate, set_agent_state
    from avworld.eval.resume import EpisodeLog, file_digest
    from avworld.train.threads import set_inference_threads

    set_inference_threads(threads)
    overrides = {"zero_visual": True} if no_vision else {}
    path = latest_checkpoint(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint)
    agent = LearnedAgent.from_checkpoint(path, deterministic, seed, device, **overrides)
    ckpt, policy = agent.checkpoint, agent.policy
    saved_env = ckpt.get("run_info", {}).get("env", {})
    motion = saved_env.get("motion", "soundspaces2")
    check_episode_motion(episodes, motion)
    image = policy.obs_shapes.get("depth", policy.obs_shapes.get("rgb", (128,)))
    size = int(saved_env.get("size", image[0]))
    env = gym.make(saved_env.get("env_id", "avworld/AudioGoal-v0"), episodes=str(episodes), width=size, height=size,
                   observations=saved_env.get("observations", "audiovisual"),
                   step_limit=int(saved_env.get("step_limit", 500)),
                   pointgoal=bool(saved_env.get("pointgoal", False)), preset=motion)
    try:
        n = len(env.unwrapped.episodes) if num is None else min(num, len(env.unwrapped.episodes))
        if n < 1:
            raise TrainConfigError(f"{episodes} has no episodes to evaluate" if num is None or num >= 1 else
                                   f"--num {num}: evaluate at least one episode")
        label = f"{ckpt.get('agent')}{' (no vision)' if no_vision else ''}"
        done: list[dict] = []
        on_episode = None
        if out is not None:
            identity = {"command": "eval nav", "checkpoint": str(path.resolve()),
                        "checkpoint_sha256": file_digest(path), "update": ckpt.get("update"),
                        "global_step": ckpt.get("global_step"), "episodes": str(Path(episodes).resolve()),
                        "episodes_sha256": file_digest(episodes), "no_vision": no_vision,
                        "deterministic": deterministic, "seed": seed, "device": agent.device.type}
            log = EpisodeLog(out, identity)
            if log.note and say is not None:
                say(log.note)
            done = log.resume(label, n, say)
            if done:
                set_agent_state(agent, log.states[label])

            def on_episode(_k, metrics):
                log.add(label, metrics, agent_state(agent))
        for k, m in enumerate(done):
            if progress is not None:
                progress(k, m)
        per_episode = done + evaluate(env, agent, n, seed=seed, progress=progress, start=len(done),
                                      on_episode=on_episode)
    finally:
        env.close()
    result = {"checkpoint": str(checkpoint), "episodes": str(episodes), "num_episodes": n, "no_vision": no_vision,
              "deterministic": deterministic, "agent": ckpt.get("agent"), "label": label,
              "global_step": ckpt.get("global_step"), "resumed_episodes": len(done),
              "aggregate": aggregate(per_episode), "per_episode": per_episode}
    if agent.omega_stats() is not None:
        result["omega"] = agent.omega_stats()
    return result
