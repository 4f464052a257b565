"""The recurrent actor-critic shared by the navigation agents.

A :class:`NavPolicy` is ``encode(obs) -> feature`` (the agent-specific part: AV-Nav or
AGSA) followed by a GRU over time (:class:`RNNStateEncoder`, hidden state reset where an
episode starts), a linear actor (categorical for ``Discrete``, diagonal Gaussian for
``Box`` actions) and a linear critic, as SoundSpaces' ``AudioNavBaselinePolicy``.

Shapes: a batch of single steps is ``(B, ...)``; sequences are ``(T, N, ...)`` with the
hidden state ``(L, N, H)`` at ``t = 0`` and ``episode_start`` ``(T, N)`` bool. The policy
never touches an environment; observations are dicts of tensors with the env's shapes
(``rgb`` (H, W, 3) uint8, ``depth`` (H, W, 1), ``spectrogram`` (2, F, T), ``pointgoal`` (2,)).
Random draws (actions, modality dropout) take an explicit ``torch.Generator`` so that a
trainer owns and checkpoints all randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from avworld.models.encoders import VisualCNN

IMAGE_KEYS = ("rgb", "depth")


class ModelConfigError(ValueError):
    """A model config or observation space does not fit the model."""


@dataclass(frozen=True)
class NavConfig:
    """Options common to the navigation agents (the defaults are SoundSpaces' AV-Nav sizes).

    ``visual_keys`` are the image observations the visual CNN sees (SoundSpaces' AudioGoal
    baselines use depth only; empty for a blind agent). ``zero_visual`` is the audio-only
    ablation: images are replaced by zeros before the encoder, so the agent cannot see.
    ``modality_dropout`` is the probability that a training step's images are zeroed
    (applied by the trainer through :meth:`NavPolicy.drop_modalities`, stored in the rollout).

    Two options that are *not* in SoundSpaces (off by default and in every preset; ``--set model...``):

    * ``audio_log``: the audio encoder sees ``log1p(spectrogram / audio_log_floor)`` (0 for
      silence, about the log of the level above the floor) instead of the spectrogram.
      SoundSpaces' feature is ``log1p(|STFT|)``, which compresses only when magnitudes are
      >> 1; avworld's physically scaled sound at metres from the source has magnitudes
      ~0.01-0.5, where ``log1p`` is linear, so level differences between the ears (ILD) and
      loudness changes while walking are ratios the CNN must learn to divide. In the log
      domain they are differences of inputs.
    * ``stop_prior``: the initial probability of STOP (action 0) in a ``Discrete`` actor,
      set through the actor's bias (the other actions share the rest). With a uniform
      start (STOP 1/4) episodes last about 4 steps, the agent rarely walks far enough to
      learn anything, and stopping at once (return -0.01) beats random walking, a local
      optimum PPO collapses into. ``None`` keeps SoundSpaces' uniform initialisation.
    """

    hidden_size: int = 512
    rnn_layers: int = 1
    visual_keys: tuple[str, ...] = ("rgb", "depth")
    visual_size: int = 512
    visual_channels: tuple[int, int, int] = (32, 64, 64)
    audio_key: str = "spectrogram"
    audio_size: int = 512
    audio_channels: tuple[int, int, int] = (32, 64, 64)
    use_pointgoal: bool = False
    zero_visual: bool = False
    modality_dropout: float = 0.0
    audio_log: bool = False
    audio_log_floor: float = 1e-3
    stop_prior: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "visual_keys", tuple(self.visual_keys))
        object.__setattr__(self, "visual_channels", tuple(self.visual_channels))
        object.__setattr__(self, "audio_channels", tuple(self.audio_channels))
        bad = sorted(set(self.visual_keys) - set(IMAGE_KEYS))
        if bad:
            raise ModelConfigError(f"visual_keys {bad} are not images; use a subset of {IMAGE_KEYS}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ModelConfigError(f"modality_dropout must be in [0, 1), got {self.modality_dropout}")
        if not self.audio_log_floor > 0:
            raise ModelConfigError(f"audio_log_floor must be > 0, got {self.audio_log_floor}")
        if self.stop_prior is not None and not 0.0 < self.stop_prior < 1.0:
            raise ModelConfigError(f"stop_prior must be in (0, 1) or None, got {self.stop_prior}")
        if min(self.hidden_size, self.rnn_layers, self.visual_size, self.audio_size) < 1:
            raise ModelConfigError("hidden_size, rnn_layers, visual_size and audio_size must be >= 1")


class RNNStateEncoder(nn.Module):
    """GRU over (T, N, D) sequences whose hidden state is zeroed where ``episode_start`` is true.

    Runs ``nn.GRU`` on the longest stretches without any episode start (habitat-lab's trick),
    so a rollout of T steps costs a few GRU calls, not T.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.rnn = nn.GRU(input_size, hidden_size, num_layers)
        for name, p in self.rnn.named_parameters():
            if "weight" in name:
                nn.init.orthogonal_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, x: torch.Tensor, hidden: torch.Tensor, episode_start: torch.Tensor):
        """x (T, N, D), hidden (L, N, H), episode_start (T, N) bool -> out (T, N, H), hidden (L, N, H)."""
        keep = (~episode_start).to(x.dtype)  # (T, N)
        # time steps (after the first) where some env starts an episode split the sequence
        inner = (episode_start[1:].any(dim=1).nonzero().view(-1) + 1).tolist()
        cuts = [0, *inner, x.shape[0]]
        outs = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            hidden = hidden * keep[a].view(1, -1, 1)  # (L, N, H) masked at episode starts
            out, hidden = self.rnn(x[a:b], hidden)
            outs.append(out)
        return torch.cat(outs, dim=0), hidden


class ActOutput(NamedTuple):
    action: torch.Tensor  # (B,) long or (B, A) float
    log_prob: torch.Tensor  # (B,)
    value: torch.Tensor  # (B,)
    hidden: torch.Tensor  # (L, B, H)
    aux: dict  # agent-specific per-sample tensors, e.g. AGSA's gate "omega" (B, d)


class NavPolicy(nn.Module):
    """Encoder (subclass) -> GRU -> actor and critic. Subclasses set ``feature_size`` and define ``encode``."""

    def __init__(self, config: NavConfig, obs_shapes: dict[str, tuple], action_dim: int, continuous: bool) -> None:
        super().__init__()
        self.config = config
        self.obs_shapes = {k: tuple(v) for k, v in obs_shapes.items()}
        self.continuous = continuous
        self.action_dim = action_dim
        need = [*config.visual_keys, config.audio_key] + (["pointgoal"] if config.use_pointgoal else [])
        missing = [k for k in need if k not in self.obs_shapes]
        if missing:
            raise ModelConfigError(f"the model needs observations {missing}, the env has {sorted(self.obs_shapes)}; "
                                   "choose an env observation set that has them or change visual_keys/use_pointgoal")
        self.obs_keys = tuple(need)
        #: Discrete actions given zero probability (a trainer's exploration warm-up; empty otherwise)
        self.masked_actions: tuple[int, ...] = ()

    # -------------------------------------------------------------- subclass hooks
    def encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """(B, ...) observations -> (B, feature_size) features and aux tensors."""
        raise NotImplementedError

    def _build_visual(self):
        """The visual CNN over the configured image observations stacked on channels (None if blind)."""
        cfg = self.config
        if not cfg.visual_keys:
            return None
        for k in cfg.visual_keys:
            check_shape(k, self.obs_shapes[k], 3, "(H, W, C)")
        h, w = self.obs_shapes[cfg.visual_keys[0]][:2]
        c = sum(self.obs_shapes[k][2] for k in cfg.visual_keys)
        return VisualCNN(c, (h, w), cfg.visual_size, cfg.visual_channels)

    def _build_heads(self, feature_size: int) -> None:
        cfg = self.config
        extra = 3 if cfg.use_pointgoal else 0  # (distance, cos bearing, sin bearing)
        self.state_encoder = RNNStateEncoder(feature_size + extra, cfg.hidden_size, cfg.rnn_layers)
        self.actor = nn.Linear(cfg.hidden_size, self.action_dim)
        nn.init.orthogonal_(self.actor.weight, gain=0.01)
        nn.init.zeros_(self.actor.bias)
        if cfg.stop_prior is not None and not self.continuous and self.action_dim > 1:
            # logits (b, 0, ..., 0) give P(STOP) = e^b / (e^b + A - 1) = stop_prior
            with torch.no_grad():
                self.actor.bias[0] = math.log(cfg.stop_prior * (self.action_dim - 1) / (1.0 - cfg.stop_prior))
        if self.continuous:
            self.log_std = nn.Parameter(torch.zeros(self.action_dim))
        self.critic = nn.Linear(cfg.hidden_size, 1)
        nn.init.orthogonal_(self.critic.weight)
        nn.init.zeros_(self.critic.bias)

    # -------------------------------------------------------------- helpers
    def visual_input(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, C, H, W) stacked image input; zeros in the audio-only ablation."""
        from avworld.models.encoders import image_input

        x = image_input(obs, self.config.visual_keys)
        return torch.zeros_like(x) if self.config.zero_visual else x

    def audio_input(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The (B, C, F, T) spectrogram the audio encoder sees (log-compressed with ``audio_log``)."""
        x = obs[self.config.audio_key].float()
        return torch.log1p(x.clamp_min(0.0) / self.config.audio_log_floor) if self.config.audio_log else x

    def initial_state(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(self.config.rnn_layers, n, self.config.hidden_size, device=device)

    def drop_modalities(self, obs: dict[str, torch.Tensor], generator: torch.Generator | None) -> dict:
        """Training-time modality dropout: each sample's images are zeroed with probability ``modality_dropout``."""
        p = self.config.modality_dropout
        if p <= 0 or not self.config.visual_keys:
            return obs
        first = obs[self.config.visual_keys[0]]
        gen_device = generator.device if generator is not None else first.device
        drop = (torch.rand(first.shape[0], generator=generator, device=gen_device) < p).to(first.device)
        out = dict(obs)
        for k in self.config.visual_keys:
            x = obs[k]
            out[k] = torch.where(drop.view(-1, *([1] * (x.dim() - 1))), torch.zeros_like(x), x)
        return out

    def _core(self, obs: dict, hidden: torch.Tensor, episode_start: torch.Tensor):
        """Sequences: obs (T, N, ...) -> features (T, N, H), hidden, aux (T*N, ...)."""
        t, n = episode_start.shape
        flat = {k: obs[k].reshape(t * n, *obs[k].shape[2:]) for k in self.obs_keys}  # (T, N, ...) -> (T*N, ...)
        feat, aux = self.encode(flat)  # (T*N, F)
        if self.config.use_pointgoal:
            pg = flat["pointgoal"].float()  # (T*N, 2): distance m, bearing rad
            feat = torch.cat([feat, pg[:, :1], torch.cos(pg[:, 1:]), torch.sin(pg[:, 1:])], dim=1)
        out, hidden = self.state_encoder(feat.view(t, n, -1), hidden, episode_start)
        return out, hidden, aux

    def _dist(self, h: torch.Tensor):
        logits = self.actor(h)
        if self.masked_actions and not self.continuous:
            logits = logits.clone()
            logits[:, list(self.masked_actions)] = torch.finfo(logits.dtype).min
        if self.continuous:
            return torch.distributions.Normal(logits, self.log_std.exp().expand_as(logits))
        return torch.distributions.Categorical(logits=logits)

    # -------------------------------------------------------------- API used by the trainer
    def act(self, obs: dict, hidden: torch.Tensor, episode_start: torch.Tensor, deterministic: bool = False,
            generator: torch.Generator | None = None) -> ActOutput:
        """One step for B envs: obs (B, ...), hidden (L, B, H), episode_start (B,) bool."""
        seq = {k: obs[k].unsqueeze(0) for k in self.obs_keys}  # (1, B, ...)
        out, hidden, aux = self._core(seq, hidden, episode_start.unsqueeze(0))
        h = out[0]  # (B, H)
        dist = self._dist(h)
        if deterministic:
            action = dist.mean if self.continuous else dist.probs.argmax(-1)
        elif self.continuous:
            noise = torch.randn(dist.mean.shape, generator=generator, device=dist.mean.device)
            action = dist.mean + dist.stddev * noise
        else:
            action = torch.multinomial(dist.probs, 1, generator=generator).squeeze(-1)
        log_prob = dist.log_prob(action)
        if self.continuous:
            log_prob = log_prob.sum(-1)
        return ActOutput(action, log_prob, self.critic(h).squeeze(-1), hidden, aux)

    def get_value(self, obs: dict, hidden: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
        seq = {k: obs[k].unsqueeze(0) for k in self.obs_keys}
        out, _, _ = self._core(seq, hidden, episode_start.unsqueeze(0))
        return self.critic(out[0]).squeeze(-1)  # (B,)

    def evaluate_actions(self, obs: dict, hidden: torch.Tensor, episode_start: torch.Tensor, actions: torch.Tensor):
        """Sequences (T, N, ...) from hidden (L, N, H) -> log_prob, value, entropy (each (T, N)) and aux."""
        t, n = episode_start.shape
        out, _, aux = self._core(obs, hidden, episode_start)
        dist = self._dist(out.view(t * n, -1))
        flat_actions = actions.reshape(t * n, *actions.shape[2:])
        log_prob, entropy = dist.log_prob(flat_actions), dist.entropy()
        if self.continuous:
            log_prob, entropy = log_prob.sum(-1), entropy.sum(-1)
        value = self.critic(out).squeeze(-1)
        return log_prob.view(t, n), value, entropy.view(t, n), aux

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def check_shape(name: str, shape: tuple, ndim: int, what: str) -> None:
    if len(shape) != ndim or math.prod(shape) == 0:
        raise ModelConfigError(f"observation {name!r} must be {what}, got shape {shape}")
