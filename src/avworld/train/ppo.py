"""Recurrent PPO and DD-PPO for gymnasium 1.x vector envs with Dict observations.

One update = a rollout of ``T = num_steps`` steps in ``N = num_envs`` envs per process
into preallocated ``(T, N, ...)`` tensors, GAE, then ``epochs`` passes over minibatches
of whole env sequences (so the GRU replays each sequence from its stored initial hidden
state), the clipped PPO objective, a (clipped) value loss and an entropy bonus. With
``torchrun`` every process does this with its own envs and the gradients are averaged
(DD-PPO, :mod:`avworld.train.distributed`).

Autoreset (gymnasium's NEXT_STEP mode): the step *after* an episode ends returns the first
observation of the next episode with reward 0, ignoring the action. That step is stored
with ``valid = False`` and masked out of every loss; the observation it acted on is the
final observation of the ended episode, so its value bootstraps truncated episodes. The
GRU state is zeroed where ``episode_start`` is true (the observation after such a step).

    advantage  A_t = δ_t + γλ (1 - done_t) A_{t+1},   δ_t = r_t + γ (1 - terminated_t) V_{t+1} - V_t
    loss = max(-A ρ, -A clip(ρ, 1 ± ε)) + c_v · ½ max((V - R)², (V_clip - R)²) - c_e · H

Randomness (action sampling, minibatch order, modality dropout) comes from one
``torch.Generator`` per process; checkpoints hold it with the optimizer, the step count,
the rollout carry-over and, for envs with a ``state`` attribute, the env states, so a
resumed run continues bit-identically (otherwise the envs are re-seeded on resume).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from avworld.train import distributed as ddp
from avworld.train.checkpoint import (
    CheckpointError,
    check_architecture,
    checkpoint_dir,
    checkpoint_name,
    policy_header,
    prune_checkpoints,
    save_checkpoint,
)
from avworld.train.config import PPOConfig, TrainConfigError
from avworld.train.logs import RunLogger
from avworld.train.rollout import Rollout, _info_at, compute_gae, env_minibatches, masked_mean, to_tensors
from avworld.train.stop import StopRequest

__all__ = ["PPOTrainer", "Rollout", "compute_gae", "env_minibatches", "masked_mean", "to_tensors"]


class PPOTrainer:
    """Recurrent PPO over a gymnasium vector env (``num_envs`` envs per process, NEXT_STEP autoreset)."""

    def __init__(self, envs, policy, config: PPOConfig, *, agent: str = "custom", out_dir: str | Path | None = None,
                 dist: ddp.DistInfo | None = None, episode_metrics=None, tensorboard: bool = True,
                 progress: bool = False, run_info: dict | None = None) -> None:
        cfg = self.cfg = config
        self.envs, self.agent, self.out_dir = envs, agent, Path(out_dir) if out_dir else None
        self.dist = dist or ddp.DistInfo(device=next(policy.parameters()).device)
        self.device = self.dist.device
        self.episode_metrics, self.tensorboard, self.progress, self.run_info = (
            episode_metrics, tensorboard, progress, run_info or {})
        mode = envs.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) != AutoresetMode.NEXT_STEP:
            raise TrainConfigError(f"the vector env uses autoreset mode {mode}; build it with NEXT_STEP (the default)")
        if envs.num_envs != cfg.num_envs:
            raise TrainConfigError(f"the vector env has {envs.num_envs} envs, PPOConfig.num_envs is {cfg.num_envs}")
        if self.dist.enabled:  # checkpointing is collective: every rank must agree on it
            n_out = ddp.all_sum(torch.tensor([float(self.out_dir is not None)], device=self.device), self.dist)
            if n_out.item() not in (0, self.dist.world_size):
                raise TrainConfigError("give every DD-PPO rank the same out_dir (only rank 0 writes to it)")
        self.policy = policy.to(self.device)
        ddp.broadcast_parameters(self.policy, self.dist)
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=cfg.adam_eps)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(cfg.seed * 7919 + 104729 * self.dist.rank + 1)
        obs_space, act_space = envs.single_observation_space, envs.single_action_space
        obs_specs = {}
        for k in policy.obs_keys:
            box = obs_space[k]
            obs_specs[k] = (tuple(box.shape), torch.uint8 if box.dtype == np.uint8 else torch.float32)
        if isinstance(act_space, spaces.Discrete):
            action_shape, action_dtype = (), torch.long
        elif isinstance(act_space, spaces.Box):
            action_shape, action_dtype = tuple(act_space.shape), torch.float32
        else:
            raise TrainConfigError(f"action space {act_space} is not supported; use Discrete or Box")
        self.act_low_high = (act_space.low, act_space.high) if isinstance(act_space, spaces.Box) else None
        if cfg.mask_actions and cfg.mask_until_step > 0:
            if not isinstance(act_space, spaces.Discrete):
                raise TrainConfigError("PPOConfig.mask_actions needs a Discrete action space")
            if max(cfg.mask_actions) >= act_space.n or len(set(cfg.mask_actions)) >= act_space.n:
                raise TrainConfigError(f"PPOConfig.mask_actions {cfg.mask_actions} must name some, not all, of the "
                                       f"{act_space.n} actions")
        n = cfg.num_envs
        self.next_hidden = policy.initial_state(n, self.device)
        self.rollout = Rollout(cfg.num_steps, n, obs_specs, action_shape, action_dtype, self.next_hidden, self.device)
        self.steps_per_update = cfg.num_steps * n * self.dist.world_size
        self.num_updates = math.ceil(cfg.total_steps / self.steps_per_update)
        self.update, self.global_step = 0, 0
        self.stopped_by: str | None = None  # set by train(): "time_limit" or "signal" when it stopped early
        self.next_obs: dict | None = None
        self.next_start = torch.ones(n, dtype=torch.bool, device=self.device)
        self.autoreset = np.zeros(n, dtype=bool)  # env i's next step is gymnasium's autoreset step
        self.ep_return, self.ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
        self.window: deque = deque(maxlen=cfg.reward_window)

    # ------------------------------------------------------------------ rollout
    def reset_envs(self, seed: int | None = None) -> None:
        n = self.cfg.num_envs
        seed = self.cfg.seed if seed is None else seed
        obs, _ = self.envs.reset(seed=seed + self.dist.rank * n)
        self.next_obs = to_tensors(obs, self.policy.obs_keys, self.device)
        self.next_hidden = self.policy.initial_state(n, self.device)
        self.next_start = torch.ones(n, dtype=torch.bool, device=self.device)
        self.autoreset[:] = False
        self.ep_return[:], self.ep_len[:] = 0.0, 0

    @torch.no_grad()
    def collect(self) -> tuple[torch.Tensor, dict]:
        """Fill the rollout; returns the bootstrap value (N,) and the rollout's aux statistics."""
        ro, policy, cfg = self.rollout, self.policy, self.cfg
        ro.hidden0.copy_(self.next_hidden)
        aux_sums: dict[str, list] = {}
        for t in range(cfg.num_steps):
            obs = policy.drop_modalities(self.next_obs, self.generator)
            for k in ro.obs:
                ro.obs[k][t] = obs[k]
            ro.episode_start[t] = self.next_start
            ro.valid[t] = torch.as_tensor(~self.autoreset, device=self.device)
            out = policy.act(obs, self.next_hidden, self.next_start, generator=self.generator)
            ro.actions[t], ro.logprobs[t], ro.values[t] = out.action, out.log_prob, out.value
            self.next_hidden = out.hidden
            for k, v in out.aux.items():  # per-sample statistics of valid steps (e.g. AGSA's gate omega)
                x = v[ro.valid[t]].float()
                s = aux_sums.setdefault(k, [0.0, 0.0, 0])
                s[0], s[1], s[2] = s[0] + x.sum().item(), s[1] + (x * x).sum().item(), s[2] + x.numel()
            action = out.action.cpu().numpy()
            if self.act_low_high is not None:
                action = np.clip(action, *self.act_low_high)
            obs_np, reward, terminated, truncated, infos = self.envs.step(action)
            ro.rewards[t] = torch.as_tensor(reward, dtype=torch.float32, device=self.device)
            ro.terminated[t] = torch.as_tensor(terminated, device=self.device)
            ro.truncated[t] = torch.as_tensor(truncated, device=self.device)
            real = ~self.autoreset
            self.ep_return += np.where(real, reward, 0.0)
            self.ep_len += real
            done = np.logical_or(terminated, truncated)
            for i in np.flatnonzero(done):
                self._finish_episode(int(i), infos)
            self.next_start = torch.as_tensor(self.autoreset.copy(), device=self.device)  # obs_{t+1} is a reset obs
            self.autoreset = done
            self.next_obs = to_tensors(obs_np, policy.obs_keys, self.device)
        next_value = policy.get_value(self.next_obs, self.next_hidden, self.next_start)
        return next_value, aux_sums

    def _finish_episode(self, i: int, infos: dict) -> None:
        rec = {"return": float(self.ep_return[i]), "length": float(self.ep_len[i])}
        outcome = _info_at(infos, "outcome", i)
        if outcome is not None and self.episode_metrics is not None:
            rec.update({k: float(v) for k, v in self.episode_metrics(outcome).items() if isinstance(v, (int, float))})
        elif _info_at(infos, "success", i) is not None:
            rec["success"] = float(_info_at(infos, "success", i))
        self.window.append(rec)
        self.ep_return[i], self.ep_len[i] = 0.0, 0

    # ------------------------------------------------------------------ learning
    def learn(self, next_value: torch.Tensor) -> dict:
        cfg, ro, policy = self.cfg, self.rollout, self.policy
        frac = 1.0 - self.update / self.num_updates
        lr = cfg.lr * frac if cfg.lr_decay else cfg.lr
        clip = cfg.clip_coef * frac if cfg.clip_decay else cfg.clip_coef
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        advantages, returns = compute_gae(ro.rewards, ro.values, next_value, ro.terminated, ro.truncated, ro.valid,
                                          cfg.gamma, cfg.gae_lambda)
        b_valid = ro.valid.float()
        stats: dict[str, float] = {}
        for _epoch in range(cfg.epochs):
            for mb_envs in env_minibatches(cfg.num_envs, cfg.num_minibatches, self.generator):
                mb_obs = {k: v[:, mb_envs] for k, v in ro.obs.items()}  # (T, n, ...)
                new_logprob, new_value, entropy, aux = policy.evaluate_actions(
                    mb_obs, ro.hidden0[:, mb_envs], ro.episode_start[:, mb_envs], ro.actions[:, mb_envs])
                mb_valid, mb_adv = b_valid[:, mb_envs], advantages[:, mb_envs]
                if cfg.norm_advantages:
                    mean = masked_mean(mb_adv, mb_valid)
                    std = masked_mean((mb_adv - mean) ** 2, mb_valid).sqrt()
                    mb_adv = (mb_adv - mean) / (std + 1e-8)
                logratio = new_logprob - ro.logprobs[:, mb_envs]
                ratio = logratio.exp()
                pg_loss = masked_mean(torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - clip, 1 + clip)), mb_valid)
                mb_returns, mb_old_values = returns[:, mb_envs], ro.values[:, mb_envs]
                v_loss = (new_value - mb_returns) ** 2
                if cfg.clip_value_loss:
                    v_clipped = mb_old_values + (new_value - mb_old_values).clamp(-clip, clip)
                    v_loss = torch.max(v_loss, (v_clipped - mb_returns) ** 2)
                v_loss = 0.5 * masked_mean(v_loss, mb_valid)
                entropy_mean = masked_mean(entropy, mb_valid)
                loss = pg_loss + cfg.value_coef * v_loss - cfg.entropy_coef * entropy_mean

                self.optimizer.zero_grad(set_to_none=False)
                loss.backward()
                ddp.average_gradients(self.params, self.dist)
                grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    stats = {"loss/policy": pg_loss.item(), "loss/value": v_loss.item(),
                             "loss/entropy": entropy_mean.item(), "loss/grad_norm": grad_norm.item(),
                             "loss/approx_kl": masked_mean((ratio - 1) - logratio, mb_valid).item(),
                             "loss/clip_fraction": masked_mean(((ratio - 1).abs() > clip).float(), mb_valid).item()}
                    for k, v in aux.items():
                        stats[f"train/{k}_mean"], stats[f"train/{k}_std"] = v.mean().item(), v.std().item()
        return {**stats, "lr": lr, "clip": clip}

    # ------------------------------------------------------------------ loop
    def train(self) -> dict:
        """Run updates until ``total_steps``; logs, checkpoints; returns the last logged values.

        Stops early, after the update in progress and with a checkpoint, when ``time_limit_s``
        has passed or at the first SIGINT / SIGTERM (:mod:`avworld.train.stop`); ``stopped_by``
        (also in the returned dict, with ``stop_signal``, the signal's name) then says which."""
        if self.next_obs is None:
            self.reset_envs()
        logger = None
        if self.dist.is_main:
            logger = RunLogger(self.out_dir, self.num_updates * self.steps_per_update, self.tensorboard,
                               self.progress, start_step=self.global_step,
                               resume_update=self.update if self.update else None, title=self.agent)
        self.stopped_by = None  # "time_limit" or "signal" when the run stopped early
        with StopRequest(announce=self.dist.is_main) as stop:
            return self._loop(logger, time.monotonic(), stop)

    def _loop(self, logger, started: float, stop: StopRequest) -> dict:
        cfg = self.cfg
        values: dict = {}
        try:
            while self.update < self.num_updates:
                t0 = time.perf_counter()
                # the warm-up mask is fixed for a whole update: collection and learning see the same policy
                masking = bool(cfg.mask_actions) and self.global_step < cfg.mask_until_step
                self.policy.masked_actions = cfg.mask_actions if masking else ()
                next_value, aux_sums = self.collect()
                t1 = time.perf_counter()
                learn_stats = self.learn(next_value)
                t2 = time.perf_counter()
                self.update += 1
                self.global_step += self.steps_per_update
                values = {"update": self.update, **self._window_stats(), **self._aux_stats(aux_sums),
                          **learn_stats, "perf/steps_per_s": self.steps_per_update / (t2 - t0),
                          "perf/collect_s": t1 - t0, "perf/learn_s": t2 - t1}
                if logger is not None and (self.update % cfg.log_every == 0 or self.update == self.num_updates):
                    logger.log(self.global_step, values)
                reason = self._stop_reason(started, stop.requested)
                if self.out_dir is not None and (self.update % cfg.checkpoint_every == 0 or reason
                                                 or self.update == self.num_updates):
                    self.save()
                if reason:
                    self.stopped_by = reason
                    values["stopped_by"] = reason
                    if reason == "signal":  # None on a rank that was not signalled itself
                        values["stop_signal"] = stop.signal_name
                    if self.dist.is_main and not (reason == "signal" and stop.signal_name == "SIGINT"):
                        what = (f"time limit {cfg.time_limit_s:.0f} s reached" if reason == "time_limit"
                                else f"stopped by {stop.signal_name or 'a signal on another rank'}")
                        saved = "checkpoint written; " if self.out_dir is not None else ""
                        print(f"{what} at update {self.update} (step {self.global_step:,}); {saved}"
                              "resume with --resume")
                    break
        finally:
            self.policy.masked_actions = ()
            if logger is not None:
                logger.close()
        return values

    def _stop_reason(self, started: float, signalled: bool) -> str | None:
        """``"time_limit"`` once ``time_limit_s`` has passed, ``"signal"`` after SIGINT / SIGTERM
        (:mod:`avworld.train.stop`), else None; decided over all ranks, so that every rank stops
        after the same update (one all-reduce per update)."""
        late = self.cfg.time_limit_s is not None and time.monotonic() - started > self.cfg.time_limit_s
        flags = ddp.all_sum(torch.tensor([float(late), float(signalled)], device=self.device), self.dist).cpu()
        if flags[1] > 0:
            return "signal"
        return "time_limit" if flags[0] > 0 else None

    def _window_stats(self) -> dict:
        keys = ["return", "length", "success", "spl", "soft_spl", "sna", "distance_to_goal"]
        sums = torch.zeros(2 * len(keys), dtype=torch.float64)
        for j, k in enumerate(keys):
            vals = [r[k] for r in self.window if k in r]
            sums[2 * j], sums[2 * j + 1] = sum(vals), len(vals)
        sums = ddp.all_sum(sums.to(self.device), self.dist).cpu()
        return {f"episode/{k}": (sums[2 * j] / sums[2 * j + 1]).item() if sums[2 * j + 1] > 0 else float("nan")
                for j, k in enumerate(keys)}

    def _aux_stats(self, aux_sums: dict) -> dict:
        out = {}
        for k in sorted(aux_sums):
            s = ddp.all_sum(torch.tensor(aux_sums[k], dtype=torch.float64, device=self.device), self.dist).cpu()
            n = max(s[2].item(), 1.0)
            mean = s[0].item() / n
            out[f"rollout/{k}_mean"], out[f"rollout/{k}_std"] = mean, math.sqrt(max(s[1].item() / n - mean**2, 0.0))
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to resume (collective under DD-PPO: every rank must call it)."""
        local = {"generator": self.generator.get_state(), "next_hidden": self.next_hidden.cpu(),
                 "next_obs": {k: v.cpu() for k, v in self.next_obs.items()} if self.next_obs else None,
                 "next_start": self.next_start.cpu(), "autoreset": torch.as_tensor(self.autoreset),
                 "ep_return": torch.as_tensor(self.ep_return), "ep_len": torch.as_tensor(self.ep_len),
                 "window": list(self.window), "env_states": self._env_states()}
        return {**policy_header(self.agent, self.policy), "model": self.policy.state_dict(),
                "optimizer": self.optimizer.state_dict(), "ppo_config": asdict(self.cfg), "update": self.update,
                "global_step": self.global_step, "world_size": self.dist.world_size, "run_info": self.run_info,
                "trainer": ddp.gather_objects(local, self.dist)}

    def save(self) -> Path | None:
        state = self.state_dict()
        if not self.dist.is_main:
            return None
        d = checkpoint_dir(self.out_dir)
        path = save_checkpoint(d / checkpoint_name(self.update), state)
        prune_checkpoints(d, self.cfg.keep_checkpoints)
        return path

    def load_state_dict(self, ckpt: dict, path: str | Path = "checkpoint") -> bool:
        """Restore a :meth:`state_dict`; returns whether the continuation is exact (env states restored)."""
        check_architecture(ckpt, policy_header(self.agent, self.policy), path)
        if "exported" in ckpt:
            raise CheckpointError(f"{path} is an exported policy (no optimizer or trainer state): it "
                                  "evaluates and demos but cannot be resumed; resume from the run's checkpoints")
        try:
            self.policy.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot restore the model/optimizer ({str(exc)[:300]})") from None
        self.update, self.global_step = int(ckpt["update"]), int(ckpt["global_step"])
        ranks = ckpt.get("trainer", [])
        if ckpt.get("world_size") != self.dist.world_size or len(ranks) <= self.dist.rank:
            self.reset_envs(self.cfg.seed + 7919 * self.update)
            return False
        local = ranks[self.dist.rank]
        self.generator.set_state(local["generator"].cpu())  # generator states live on the CPU
        self.window = deque(local["window"], maxlen=self.cfg.reward_window)
        exact = self._restore_envs(local["env_states"], local["autoreset"].cpu().numpy())
        if not exact:
            return False
        self.next_obs = {k: v.to(self.device) for k, v in local["next_obs"].items()}
        self.next_hidden = local["next_hidden"].to(self.device)
        self.next_start = local["next_start"].to(self.device)
        self.autoreset = local["autoreset"].cpu().numpy().copy()
        self.ep_return, self.ep_len = local["ep_return"].cpu().numpy().copy(), local["ep_len"].cpu().numpy().copy()
        return True

    def _env_states(self):
        # ask first: a failing get_attr shuts AsyncVectorEnv's workers down
        if not all(self.envs.call("has_wrapper_attr", "state")):
            return None  # envs without a `state` attribute are re-seeded on resume
        return list(self.envs.get_attr("state"))

    def _restore_envs(self, states, autoreset: np.ndarray) -> bool:
        self.reset_envs(self.cfg.seed + 7919 * self.update)
        if states is None or len(states) != self.cfg.num_envs:
            return False
        pending = getattr(self.envs, "_autoreset_envs", None)  # SyncVectorEnv keeps the NEXT_STEP flags here
        if autoreset.any() and not isinstance(pending, np.ndarray):
            return False  # an async worker's pending autoreset cannot be set from outside
        self.envs.set_attr("state", list(states))
        if isinstance(pending, np.ndarray):
            pending[:] = autoreset
        return True
