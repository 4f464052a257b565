"""Evaluating active separation: any motion policy, the shared f^P, a memory, final estimates per step.

One episode (:func:`separate_episode`): the policy moves through the env
(:func:`avworld.tasks.separation_baselines.rollout`, the same loop for the baselines and the
learned agent); f^P separates every step's mixture; the memory refines the estimates step by
step; :class:`~avworld.eval.separation_metrics.FinalEstimates` keeps, for every step, the
estimate after its last refinement (made at step min(t + E, T - 1)); SI-SDR, SI-SDRi and STFT
distance of those final estimates are averaged over the T steps of the episode.
:func:`evaluate` runs ``n`` episodes and aggregates them with 95 % Student-t intervals.

:class:`LearnedSeparationPolicy` is the trained agent of ``avworld separation train active``: it
runs f^P and its own memory online (its observations are the separator's outputs) and its GRU
policy; the memory that produces its final estimates is the same one.
"""

from __future__ import annotations

import numpy as np
import torch

from avworld.eval.separation_metrics import FinalEstimates, aggregate, step_metrics
from avworld.models.separation.spectrogram import log_features, magnitudes, phases

EPISODE_METRICS = ("si_sdr", "si_sdr_mixture", "si_sdri", "si_sdr_mixture_tp", "si_sdri_tp", "stft_distance")


@torch.no_grad()
def separate_episode(passive, memory, audio: np.ndarray, target_mono: np.ndarray, target_type: int,
                     device="cpu") -> dict:
    """An episode's mixtures (T, 2, 16000), dry targets (T, 16000) and target type -> per-step metrics of the
    final estimates (arrays of T), their revision counts, and the final estimates (T, 16, 32, 32)."""
    dev = torch.device(device)
    mix_w = torch.as_tensor(audio, dtype=torch.float32, device=dev)
    tgt_w = torch.as_tensor(target_mono, dtype=torch.float32, device=dev).unsqueeze(1)
    t_len = len(mix_w)
    sep = passive(magnitudes(mix_w), torch.full((t_len,), int(target_type), device=dev))
    memory.eval()
    state = memory.initial_state(1, dev)
    final = FinalEstimates(1, t_len)
    for t in range(t_len):
        out = memory.step(sep.mono[t:t + 1], torch.tensor([t], device=dev), state, torch.tensor([t == 0], device=dev))
        state = out.state
        final.update(out.estimates, out.steps, out.valid)
    est = final.episode(0)
    m = step_metrics(est, magnitudes(tgt_w), phases(tgt_w), tgt_w, mix_w)
    return {**m, "revisions": final.revisions[0].copy(), "estimates": est.cpu()}


class LearnedSeparationPolicy:
    """A trained active-separation agent with the baselines' ``reset()`` / ``act(obs, info)`` interface."""

    name = "learned"
    reward = "separation"  # the reward its motion policy was trained with (a checkpoint's active.reward)

    def __init__(self, policy, passive, memory, deterministic: bool = False, seed: int = 0, device="cpu") -> None:
        self.policy, self.passive, self.memory = policy.eval(), passive.eval(), memory.eval()
        self.deterministic, self.device = deterministic, torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.reset()

    @classmethod
    def from_checkpoint(cls, path, passive, deterministic: bool = False, seed: int = 0, device="cpu"):
        from avworld.models.separation import MemoryConfig, SeparationPolicy, SeparationPolicyConfig, build_memory
        from avworld.train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path, device)
        if "separation" not in ckpt:
            from avworld.train.checkpoint import CheckpointError

            raise CheckpointError(f"{path}: not an active-separation checkpoint (`avworld separation train active`)")
        cfg = dict(ckpt["model_config"])
        cfg = SeparationPolicyConfig(**cfg)
        policy = SeparationPolicy(cfg, {k: tuple(v) for k, v in ckpt["obs_shapes"].items()}, ckpt["action_dim"])
        policy.load_state_dict(ckpt["model"])
        memory = build_memory(MemoryConfig(**ckpt["separation"]["memory_config"]))
        memory.load_state_dict(ckpt["separation"]["memory"])
        agent = cls(policy.to(device), passive, memory.to(device), deterministic, seed, device)
        agent.name = str(ckpt.get("agent", "learned"))
        agent.reward = str(ckpt["separation"].get("active", {}).get("reward", "separation"))
        return agent

    def reset(self) -> None:
        self.hidden = self.policy.initial_state(1, self.device)
        self.start = torch.ones(1, dtype=torch.bool, device=self.device)
        self.mem_state = self.memory.initial_state(1, self.device)

    @torch.no_grad()
    def act(self, obs, info) -> int:
        dev = self.device
        mix = magnitudes(torch.as_tensor(np.asarray(obs["audio"]), dtype=torch.float32, device=dev).unsqueeze(0))
        sep = self.passive(mix, torch.tensor([int(obs["target_type"])], device=dev))
        t = int(obs["step"])
        out = self.memory.step(sep.mono, torch.tensor([t], device=dev), self.mem_state, torch.tensor([t == 0],
                                                                                                     device=dev))
        self.mem_state = out.state
        o = {"sep_binaural": log_features(sep.binaural), "sep_mono": out.estimates[:, -1]}
        if "rgb" in self.policy.obs_keys:
            o["rgb"] = torch.as_tensor(np.asarray(obs["rgb"]), device=dev).unsqueeze(0)
        act = self.policy.act(o, self.hidden, self.start, self.deterministic, self.generator)
        self.hidden, self.start = act.hidden, torch.zeros_like(self.start)
        return int(act.action[0])


def evaluate(env, policy, passive, memory, num_episodes: int, seed: int = 0, device="cpu", progress=None,
             keep: int = 0) -> dict:
    """Run ``num_episodes`` episodes (``reset(options={"episode_index": k})`` when the env holds an episode
    list) -> {"per_episode": [...], "aggregate": {metric: mean/CI}}. With ``keep`` > 0, ``"examples"`` also
    holds what :func:`avworld.eval.separation_report.write_separation_report` shows of the first ``keep``
    episodes: the rollout's mixtures, targets, poses and sources and the final estimates scored."""
    from avworld.tasks.separation_baselines import rollout

    per, examples = [], []
    has_list = bool(getattr(env.unwrapped, "episodes", None))
    for k in range(num_episodes):
        ep = rollout(env, policy, options={"episode_index": k} if has_list else None, seed=seed + k)
        m = separate_episode(passive, memory, ep["audio"], ep["target_mono"], ep["target_type"], device)
        rec = {name: float(np.nanmean(m[name])) for name in EPISODE_METRICS}
        rec.update(episode_id=str(ep.get("episode_id")), scene=str(ep.get("scene")), steps=int(len(ep["audio"])),
                   mean_target_distance_m=float(np.mean(ep["target_distance_m"])))
        per.append(rec)
        if k < keep:
            episode = getattr(env.unwrapped, "episode", None)
            sources = [(tuple(float(v) for v in s.position), str(s.sound)) for s in episode.sources] \
                if episode is not None else []
            examples.append({**{n: ep[n] for n in ("audio", "target_mono", "poses", "actions", "target_type")},
                             "estimates": m["estimates"], "step_metrics": {n: m[n] for n in EPISODE_METRICS},
                             "record": rec, "sources": sources})
        if progress is not None:
            progress(k, rec)
    out = {"per_episode": per, "aggregate": aggregate({n: [r[n] for r in per] for n in EPISODE_METRICS})}
    if keep:
        out["examples"] = examples
    return out
