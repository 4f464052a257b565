"""Training the memory and the motion policy alternately with PPO, f^P frozen (``avworld separation train active``).

:class:`SeparationPPOTrainer` is the recurrent PPO / DD-PPO trainer of :mod:`avworld.train.ppo`
over a :class:`~avworld.train.separation_env.SeparatedVecEnv` (observations and reward from the
separator): every update is one 20-step rollout and the PPO epochs on the policy, then one
memory phase: ``memory_epochs`` Adam steps (lr 5e-3, the seed's) on Eq. 2 over the episodes that
ended since the last update (at most ``memory_batch``; gradients averaged over DD-PPO ranks; a rank
without finished episodes contributes zero gradients so the collectives stay aligned). So the
two learners alternate after every parameter update, as the seed's joint training. The memory
is used in eval mode (no dropout) while collecting. ``active.reward=novelty`` trains the novelty
baseline (count-based exploration reward, :func:`~avworld.train.separation_env.novelty_cell`) with the
same alternation; its agent is named ``separation-KIND-novelty`` and its checkpoint's
``separation.active.reward`` says which reward trained it.

Checkpoints add the memory's weights and optimizer and every rank's wrapper state (memory
banks, episode histories, finished episodes) to the PPO checkpoint; with envs that expose a
``state`` (the trainer's rule for exact resume), a resumed run continues bit-identically
(tested with a synthetic env). Without one the envs are re-seeded and the episodes in progress
restart.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import torch

from avworld.train import distributed as ddp
from avworld.train.checkpoint import CheckpointError, resume_trainer
from avworld.train.ppo import PPOTrainer
from avworld.train.run_options import check_new_run
from avworld.train.separation_config import ActiveTrainConfig, SeparationConfigError, resolve_active
from avworld.train.separation_env import SeparatedVecEnv


class SeparationPPOTrainer(PPOTrainer):
    """PPO on the policy, then Eq. 2 on the memory, after every rollout."""

    def __init__(self, envs: SeparatedVecEnv, policy, memory, ppo_cfg, active: ActiveTrainConfig, **kw) -> None:
        super().__init__(envs, policy, ppo_cfg, **kw)
        self.memory, self.active = memory.to(self.device), active
        ddp.broadcast_parameters(self.memory, self.dist)
        self.memory_params = [p for p in self.memory.parameters() if p.requires_grad]
        self.memory_optimizer = (torch.optim.Adam(self.memory_params, lr=active.memory_lr)
                                 if self.memory_params and active.train_memory else None)

    def learn(self, next_value: torch.Tensor) -> dict:
        stats = super().learn(next_value)
        return {**stats, "separation/l1": self.envs.take_l1(), **self.learn_memory()}

    def learn_memory(self) -> dict:
        from avworld.models.separation import sequence_loss

        episodes = self.envs.take_finished()[-self.active.memory_batch:]
        if self.memory_optimizer is None:
            return {}
        n_local = len(episodes)
        if episodes:
            t_max = max(len(p) for p, _ in episodes)
            pad = [(torch.cat([p, p.new_zeros(t_max - len(p), *p.shape[1:])]),
                    torch.cat([t, t.new_zeros(t_max - len(t), *t.shape[1:])])) for p, t in episodes]
            passive = torch.stack([p for p, _ in pad]).to(self.device)
            target = torch.stack([t for _, t in pad]).to(self.device)
            length = torch.tensor([len(p) for p, _ in episodes], device=self.device)
        self.memory.train()
        loss_v = float("nan")
        for _ in range(self.active.memory_epochs):
            self.memory_optimizer.zero_grad(set_to_none=False)
            if n_local:
                loss = sequence_loss(self.memory, passive, target, length)
                loss.backward()
                loss_v = loss.item()
            ddp.average_gradients(self.memory_params, self.dist)
            grad = torch.nn.utils.clip_grad_norm_(self.memory_params, self.active.memory_grad_norm)
            self.memory_optimizer.step()
        self.memory.eval()
        return {"memory/loss": loss_v, "memory/grad_norm": grad.item(), "memory/episodes": float(n_local)}

    # -------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["separation"] = {
            "memory": self.memory.state_dict(), "memory_config": asdict(self.memory.config),
            "memory_optimizer": self.memory_optimizer.state_dict() if self.memory_optimizer else None,
            "active": asdict(self.active), "wrapper": ddp.gather_objects(self.envs.get_state(), self.dist)}
        return state

    def load_state_dict(self, ckpt: dict, path="checkpoint") -> bool:
        sep = ckpt.get("separation")
        if sep is None:
            raise CheckpointError(f"{path}: not an active-separation checkpoint (no memory state)")
        mine = asdict(self.memory.config)
        if json.loads(json.dumps(sep["memory_config"])) != json.loads(json.dumps(mine)):
            raise CheckpointError(f"{path}: memory config {sep['memory_config']} differs from {mine}; resume with "
                                  "the run's own options (its config.json)")
        exact = super().load_state_dict(ckpt, path)
        self.memory.load_state_dict(sep["memory"])
        if self.memory_optimizer is not None and sep["memory_optimizer"] is not None:
            self.memory_optimizer.load_state_dict(sep["memory_optimizer"])
        ranks = sep.get("wrapper", [])
        if exact and len(ranks) > self.dist.rank:
            self.envs.set_state(ranks[self.dist.rank])
        return exact


def make_separation_envs(env_cfg, num_envs: int, rank: int = 0, world_size: int = 1, seed: int = 0):
    """This rank's vector env of ``avworld/ActiveSeparation-v0`` (episodes sharded over ranks)."""
    import avworld.tasks  # noqa: F401  (registers the env ids)
    from avworld.tasks import make_vector_env

    kwargs = {"width": env_cfg.width, "height": env_cfg.height, "rgb": env_cfg.rgb, "num_sources": env_cfg.num_sources,
              "sounds": env_cfg.sounds, "split": env_cfg.split, "num_scenes": env_cfg.num_scenes, "seed": seed}
    episodes = None
    if env_cfg.episodes:
        from avworld.tasks.separation_episodes import load_separation_episodes

        episodes = load_separation_episodes(env_cfg.episodes)[1][rank::world_size]
        kwargs = {k: v for k, v in kwargs.items() if k not in ("num_sources", "sounds", "split", "num_scenes")}
    return make_vector_env(num_envs, episodes, asynchronous=env_cfg.asynchronous and num_envs > 1,
                           env_id="avworld/ActiveSeparation-v0", **kwargs)


def build_trainer(envs, passive, groups: dict, out_dir=None, dist=None, tensorboard=True, progress=False,
                  run_info=None) -> SeparationPPOTrainer:
    """The wrapper, memory, policy and trainer for a vector env and a frozen f^P."""
    from avworld.models.separation import SeparationPolicy, build_memory

    ppo, active, mem_cfg, pol_cfg = groups["ppo"], groups["active"], groups["memory"], groups["policy"]
    torch.manual_seed(ppo.seed)
    device = (dist.device if dist is not None else torch.device("cpu"))
    memory = build_memory(mem_cfg).to(device)
    wrapped = SeparatedVecEnv(envs, passive.to(device), memory, active.reward_scale, active.episode_buffer, device,
                              active.reward, active.novelty_cell_m, active.novelty_heading_bins)
    shapes = {k: tuple(s.shape) for k, s in wrapped.single_observation_space.spaces.items()}
    if "rgb" not in shapes and pol_cfg.visual_keys:
        pol_cfg = replace(pol_cfg, visual_keys=())
    policy = SeparationPolicy(pol_cfg, shapes, int(wrapped.single_action_space.n))
    agent = f"separation-{mem_cfg.kind}" + ("" if active.reward == "separation" else f"-{active.reward}")
    return SeparationPPOTrainer(wrapped, policy, memory, ppo, active, agent=agent, out_dir=out_dir, dist=dist,
                                tensorboard=tensorboard, progress=progress, run_info=run_info)


def train_active(preset: str, overrides, passive_path: str | Path, out_dir: str | Path, resume: bool = False,
                 progress: bool = True, tensorboard: bool = True, device: str | None = None,
                 time_limit_s: float | None = None) -> dict:
    """Resolve ``preset`` + overrides, build envs and models, train (or resume) into ``out_dir``."""
    from avworld.train.separation_passive import load_passive

    out = Path(out_dir)
    info = ddp.setup(device)
    try:
        if resume:
            cfg_path = out / "config.json"
            if not cfg_path.is_file():
                raise CheckpointError(f"{out}: no config.json to resume from; train without --resume first")
            saved = json.loads(cfg_path.read_text())
            preset, overrides, passive_path = saved["preset"], saved["overrides"], saved["passive"]
        else:
            check_new_run(out, False, SeparationConfigError)
        groups = resolve_active(preset, overrides)
        groups["ppo"] = replace(groups["ppo"], time_limit_s=time_limit_s)
        passive = load_passive(passive_path, info.device)
        envs = make_separation_envs(groups["env"], groups["ppo"].num_envs, info.rank, info.world_size,
                                    groups["ppo"].seed)
        run_info = {"phase": "active", "preset": preset, "overrides": list(overrides), "passive": str(passive_path),
                    **{k: asdict(v) for k, v in groups.items()}, "world_size": info.world_size}
        try:
            trainer = build_trainer(envs, passive, groups, out, info, tensorboard, progress and info.is_main,
                                    json.loads(json.dumps(run_info, default=str)))
            if info.is_main and not resume:
                out.mkdir(parents=True, exist_ok=True)
                (out / "config.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n")
            if resume:
                resume_trainer(trainer, out, info.device, info.is_main)
            return trainer.train()
        finally:
            envs.close()
    finally:
        ddp.teardown()
