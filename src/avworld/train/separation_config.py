"""Configs and presets of active-separation training (no torch import: the CLI builds its help from it).

Two phases (the seed's Sec. 4.3):

* ``passive``: f^P pretrained with Eq. 1 on the static dataset (:class:`PassiveTrainConfig`),
  Adam lr 5e-4, gradient norm 0.8 (the seed's values).
* ``active``: f^P frozen; the memory (f^T, or Move2Hear's refiner) and the motion policy
  trained alternately on 20-step PPO rollouts (:class:`ActiveTrainConfig` + the shared
  :class:`~avworld.train.config.PPOConfig`; the seed's PPO: lr 1e-4, gradient norm 0.5, value
  0.5, entropy 0.01, 4 epochs; memory Adam lr 5e-3).

Presets ``cpu`` (two cores: halved U-Net widths, 512-d tokens, small policy, few envs) and
``gpu`` (the seed's sizes). ``--set GROUP.FIELD=VALUE`` overrides one field; the groups are
``train``/``model`` (passive) and ``ppo``/``active``/``memory``/``policy``/``env`` (active).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, replace

from avworld.train.config import PPOConfig
from avworld.train.tokenizer_config import parse_value


class SeparationConfigError(ValueError):
    """An unknown preset, group or field, or a value out of range; the message names the fix."""


@dataclass(frozen=True)
class PassiveTrainConfig:
    """Pretraining of f^P (Eq. 1). ``steps`` Adam steps of ``batch_size`` examples drawn with replacement
    across steps (each step's draw depends only on (seed, step), so a resumed run sees the same batches)."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    steps: int = 50_000
    batch_size: int = 64
    lr: float = 5e-4
    max_grad_norm: float = 0.8
    seed: int = 0
    split: str = "train"
    val_split: str = "val"
    val_examples: int = 256  # evaluated at every checkpoint (loss, SI-SDR)
    log_every: int = 25
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    cache_spectra: bool = False  # keep every example's magnitudes in memory (float16) after first use

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 5 or min(self.channels) < 1:
            raise SeparationConfigError(f"train.channels needs five positive U-Net widths, got {self.channels}")
        if min(self.steps, self.batch_size, self.log_every, self.checkpoint_every, self.keep_checkpoints) < 1:
            raise SeparationConfigError("steps, batch_size, log_every, checkpoint_every, keep_checkpoints must be >= 1")
        if not (self.lr > 0 and self.max_grad_norm > 0) or self.val_examples < 0:
            raise SeparationConfigError("lr and max_grad_norm must be > 0, val_examples >= 0")


#: the active phase's rewards: the task's (Eq. 3) and the count-based exploration baseline
REWARDS = ("separation", "novelty")


@dataclass(frozen=True)
class ActiveTrainConfig:
    """What the active phase adds to PPO. ``reward_scale`` multiplies the dense reward
    ``r_t = -reward_scale * mean |M.._{t+1} - M*_{t+1}|`` (element mean over the 16 x 32 x 32 magnitudes
    of the refined current estimate of the next step). ``memory_lr``: Adam on Eq. 2 after every PPO
    update (one alternation), over the episodes finished since the last one (at most ``memory_batch``
    episodes per step, ``memory_epochs`` passes). ``passive``: the f^P checkpoint (frozen).

    ``reward``: ``separation`` (the above, the task's agent) or ``novelty`` (the count-based exploration
    baseline: ``r_t = 1 / sqrt(N_t)``, ``N_t`` the agent's visits so far in the episode, this one
    included, to the cell of its pose after the action: position floored to ``novelty_cell_m`` squares,
    heading in ``novelty_heading_bins`` equal sectors from the +x axis; ``reward_scale`` is not applied).
    The memory is trained alternately with either reward, so a novelty agent is scored with the same
    kind of separator as the task's agent."""

    passive: str = ""
    reward: str = "separation"
    novelty_cell_m: float = 0.5
    novelty_heading_bins: int = 4
    reward_scale: float = 10.0
    memory_lr: float = 5e-3
    memory_epochs: int = 1
    memory_batch: int = 8
    memory_grad_norm: float = 1.0
    episode_buffer: int = 64  # finished episodes kept for the next memory update (oldest dropped)
    train_memory: bool = True

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            close = difflib.get_close_matches(str(self.reward), REWARDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SeparationConfigError(f"active.reward {self.reward!r} is unknown; choose one of "
                                        f"{', '.join(REWARDS)}{hint}")
        if not (self.novelty_cell_m > 0 and self.novelty_heading_bins >= 1):
            raise SeparationConfigError("active.novelty_cell_m must be > 0 and active.novelty_heading_bins >= 1")
        if not (self.reward_scale > 0 and self.memory_lr > 0 and self.memory_grad_norm > 0):
            raise SeparationConfigError("reward_scale, memory_lr and memory_grad_norm must be > 0")
        if min(self.memory_epochs, self.memory_batch, self.episode_buffer) < 1:
            raise SeparationConfigError("memory_epochs, memory_batch and episode_buffer must be >= 1")


@dataclass(frozen=True)
class SeparationEnvConfig:
    """How the active trainer builds its envs (keywords of ``avworld/ActiveSeparation-v0``)."""

    episodes: str | None = None  # episode file; None: episodes drawn on the fly in `split` houses
    split: str = "train"
    num_scenes: int = 8
    width: int = 64
    height: int = 64
    rgb: bool = True
    num_sources: int = 2
    sounds: str = "unheard"
    asynchronous: bool = False


def _ppo(**kw) -> PPOConfig:
    base = dict(num_steps=20, lr=1e-4, max_grad_norm=0.5, value_coef=0.5, entropy_coef=0.01, epochs=4,
                clip_coef=0.2, lr_decay=False, clip_decay=False, checkpoint_every=25)
    return PPOConfig(**{**base, **kw})


PASSIVE_PRESETS: dict[str, PassiveTrainConfig] = {
    "cpu": PassiveTrainConfig(channels=(32, 64, 128, 256, 256), steps=4000, batch_size=32, checkpoint_every=250,
                              val_examples=128, cache_spectra=True),
    "gpu": PassiveTrainConfig(steps=100_000, batch_size=128, checkpoint_every=2000, val_examples=1024),
}

#: name -> (ppo, active, memory fields, policy fields, env)
ACTIVE_PRESETS: dict[str, tuple] = {
    "cpu": (_ppo(num_envs=2, total_steps=20_000, num_minibatches=1, epochs=2),
            ActiveTrainConfig(memory_batch=4, episode_buffer=16),
            {"token_channels": 8, "ff_size": 512}, {"hidden_size": 256, "visual_size": 256, "audio_size": 256,
                                                     "mono_size": 256},
            SeparationEnvConfig(width=64, height=64, num_scenes=8)),
    "gpu": (_ppo(num_envs=16, total_steps=5_000_000, num_minibatches=2),
            ActiveTrainConfig(memory_batch=16, episode_buffer=128),
            {}, {}, SeparationEnvConfig(width=128, height=128, num_scenes=32, asynchronous=True)),
}
PRESET_NAMES = ("cpu", "gpu")


def parse_field(config, name: str, value: str, full: str):
    """The text ``value`` parsed for the field ``name`` of ``config`` (typed like its current value)."""
    names = [f.name for f in dataclasses.fields(config)]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(names)}"
        raise SeparationConfigError(f"--set {full}: {type(config).__name__} has no field {name!r}{hint}")
    ref = getattr(config, name)
    if ref is None:
        return None if value.lower() in ("none", "") else value
    if isinstance(ref, str):
        return value
    try:
        return parse_value(value, ref)
    except ValueError as exc:
        raise SeparationConfigError(f"--set {full}: {exc}") from None


def apply_overrides(groups: dict, overrides) -> dict:
    """``groups`` ({name: dataclass}) with ``GROUP.FIELD=VALUE`` overrides applied (all fields of a group
    at once, so that related fields, e.g. memory_size and refine_past, may change together)."""
    changes: dict[str, dict] = {g: {} for g in groups}
    for item in overrides or ():
        if "=" not in item:
            raise SeparationConfigError(f"--set {item!r}: expected GROUP.FIELD=VALUE, e.g. train.steps=2000")
        key, value = item.split("=", 1)
        group, *path = key.strip().split(".")
        if group not in groups or len(path) != 1:
            raise SeparationConfigError(f"--set {item!r}: keys are GROUP.FIELD with GROUP one of {sorted(groups)}")
        changes[group][path[0]] = parse_field(groups[group], path[0], value.strip(), item)
    out = {}
    for g, cfg in groups.items():
        try:
            out[g] = replace(cfg, **changes[g]) if changes[g] else cfg
        except ValueError as exc:
            raise SeparationConfigError(f"--set {g}.*: {exc}") from None
    return out


def check_preset(preset: str, table: dict) -> None:
    if preset not in table:
        close = difflib.get_close_matches(preset, list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SeparationConfigError(f"unknown preset {preset!r}; choose one of {sorted(table)}{hint}")


def resolve_passive(preset: str, overrides=()) -> PassiveTrainConfig:
    check_preset(preset, PASSIVE_PRESETS)
    return apply_overrides({"train": PASSIVE_PRESETS[preset]}, overrides)["train"]


def resolve_active(preset: str, overrides=()) -> dict:
    """{"ppo": PPOConfig, "active": ActiveTrainConfig, "memory": MemoryConfig, "policy":
    SeparationPolicyConfig, "env": SeparationEnvConfig} of ``preset`` with overrides."""
    check_preset(preset, ACTIVE_PRESETS)
    ppo, active, memory, policy, env = ACTIVE_PRESETS[preset]
    from avworld.models.separation import MemoryConfig, SeparationPolicyConfig  # torch: only when resolving

    groups = {"ppo": ppo, "active": active, "memory": MemoryConfig(**memory),
              "policy": SeparationPolicyConfig(**policy), "env": env}
    return apply_overrides(groups, overrides)
