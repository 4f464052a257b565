"""Training configs and presets of the world model (``avworld worldmodel train --preset``).

A preset is an :class:`~avworld.models.worldmodel.AVCDiTConfig` plus a
:class:`WorldModelTrainConfig`; ``--set model.x=...`` / ``--set train.x=...`` override single
fields (:func:`resolve`, with did-you-mean on unknown names). The latent shape fields of the
model (``rgb_channels``, ``rgb_size``, ``audio_dim``, ``audio_frames``) are taken from the
latents the run trains on unless set explicitly (:data:`LATENT_FIELDS`).

Presets (``docs/worldmodel.md`` "Training"):

* ``cpu-tiny``: the model's ``cpu-tiny`` (2.5 M parameters), 4 contexts x 4 goals = 16
  examples per step, 8000 steps per stage: the three stages in about an hour on the shared
  two-core machine (measured one-thread steps: 0.08 / 0.12-0.14 / 0.18-0.19 s in stages 1 / 2 / 3).
* ``S`` / ``B``: NWM's sizes for GPUs, 64 contexts x 4 goals = 256 examples per step, lr 1e-4,
  bf16 autocast; steps per stage as NWM-like budgets (expected hours in the docs are
  estimates, not measured).

Ablations as options: ``--set model.experts=false`` (one shared FFN: "w/o modality
experts"); ``--stages 3`` ("w/o stagewise training": joint from scratch).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass

from avworld.models.worldmodel import AVCDiTConfig, avcdit_config
from avworld.train.tokenizer_config import parse_value

#: Model fields that describe the latents (filled from the latent manifest unless --set).
LATENT_FIELDS = ("rgb_channels", "rgb_size", "audio_dim", "audio_frames")


class WorldModelConfigError(ValueError):
    """An unknown preset, a bad ``--set`` override or inconsistent training options."""


@dataclass(frozen=True)
class WorldModelTrainConfig:
    """Optimisation and bookkeeping of a world-model run (steps count optimizer updates)."""

    #: Steps of stage 1 (vision), 2 (audio), 3 (joint); a run trains the stages it is given.
    steps_per_stage: tuple[int, int, int] = (8000, 8000, 8000)
    #: Contexts per step (global: split over the processes of a torchrun job); every context
    #: brings its ``num_goals`` goals, so a step trains batch_size * num_goals examples.
    batch_size: int = 4
    num_goals: int = 4
    #: Goals are drawn from offsets in [-window, window] \\ {0} (NWM's negative offsets included).
    window: int = 16
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # per stage: warm-up, then cosine from lr to lr * min_lr_ratio
    warmup_steps: int = 200
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    diffusion_steps: int = 1000
    schedule: str = "linear"
    #: Loss weight of the reward token (1 = it weighs as much as the whole image, see docs).
    reward_weight: float = 1.0
    #: True: stage 2 also trains the shared group (self/cross-attention, their norms and adaLN, the
    #: embedders). The seed (§4.2) reports that stage 2 with unfrozen attention diverges; this
    #: option runs that experiment. Off: the seed's recipe.
    stage2_unfreeze_attention: bool = False
    #: bfloat16 autocast of the forward pass on CUDA (never on CPU).
    bf16: bool = True
    seed: int = 0
    split: str = "train"
    val_split: str = "val"
    val_items: int = 64  # val contexts (x num_goals) scored with the EMA weights at checkpoints
    workers: int = 0  # DataLoader workers (0: the main process with a whole-trajectory cache)
    log_every: int = 25
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    def __post_init__(self):
        bad = []
        if len(self.steps_per_stage) != 3 or min(self.steps_per_stage) < 1:
            bad.append(f"steps_per_stage needs three counts >= 1 (stages 1, 2, 3), got {self.steps_per_stage}")
        if min(self.batch_size, self.num_goals, self.window, self.diffusion_steps) < 1:
            bad.append("batch_size, num_goals, window and diffusion_steps must be >= 1")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            bad.append("lr must be > 0 and min_lr_ratio in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            bad.append(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.schedule not in ("linear", "cosine"):
            bad.append(f"schedule must be 'linear' or 'cosine', got {self.schedule!r}")
        if min(self.warmup_steps, self.val_items, self.workers, self.reward_weight, self.log_every - 1,
               self.checkpoint_every - 1, self.keep_checkpoints - 1) < 0:
            bad.append("warmup_steps, val_items, workers, reward_weight >= 0; log_every, checkpoint_every, "
                       "keep_checkpoints >= 1")
        if bad:
            raise WorldModelConfigError("; ".join(bad))


PRESETS: dict[str, tuple[AVCDiTConfig, WorldModelTrainConfig]] = {
    # 3 x 8000 steps of 16 examples: 50-55 min at the measured one-thread step times (docs/worldmodel.md)
    "cpu-tiny": (avcdit_config("cpu-tiny"), WorldModelTrainConfig()),
    # NWM trains ~200k steps at batch 1024; these budgets are estimates for one GPU (docs)
    "S": (avcdit_config("S"), WorldModelTrainConfig(
        steps_per_stage=(100_000, 50_000, 50_000), batch_size=64, lr=1e-4, warmup_steps=2000, ema_decay=0.9999,
        val_items=512, workers=4, log_every=100, checkpoint_every=5000)),
    "B": (avcdit_config("B"), WorldModelTrainConfig(
        steps_per_stage=(200_000, 100_000, 100_000), batch_size=64, lr=1e-4, warmup_steps=2000, ema_decay=0.9999,
        val_items=512, workers=4, log_every=100, checkpoint_every=5000)),
}


def parse_stages(text: str | int | list | tuple) -> tuple[int, ...]:
    """``"1,2,3"`` -> (1, 2, 3): increasing stages, each 1, 2 or 3."""
    items = [text] if isinstance(text, int) else (text.split(",") if isinstance(text, str) else list(text))
    try:
        stages = tuple(int(str(s).strip()) for s in items if str(s).strip())
    except ValueError:
        raise WorldModelConfigError(f"stages {text!r}: expected stage numbers such as 1,2,3") from None
    if not stages or any(s not in (1, 2, 3) for s in stages) or list(stages) != sorted(set(stages)):
        raise WorldModelConfigError(f"stages {text!r}: give increasing stages out of 1 (vision), 2 (audio), "
                                    "3 (joint), e.g. --stages 1,2,3 or --stage 3")
    return stages


def _set(config, name: str, value: str, full: str):
    names = [f.name for f in dataclasses.fields(config)]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(names)}"
        raise WorldModelConfigError(f"--set {full}: {type(config).__name__} has no field {name!r}{hint}")
    try:
        return dataclasses.replace(config, **{name: parse_value(value, getattr(config, name))})
    except ValueError as exc:  # the configs' own typed errors are ValueErrors too
        raise WorldModelConfigError(f"--set {full}: {exc}") from None


def resolve(preset: str, overrides: list[str] | tuple[str, ...] = ()
            ) -> tuple[AVCDiTConfig, WorldModelTrainConfig, set[str]]:
    """(model config, train config, model fields set explicitly) of ``preset`` with ``KEY=VALUE`` overrides."""
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise WorldModelConfigError(f"unknown world-model preset {preset!r}; choose one of {list(PRESETS)}{hint}")
    model, train = PRESETS[preset]
    explicit: set[str] = set()
    for item in overrides:
        if "=" not in item:
            raise WorldModelConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
        key, value = item.split("=", 1)
        group, *path = key.strip().split(".")
        if group not in ("model", "train") or len(path) != 1:
            raise WorldModelConfigError(f"--set {item!r}: keys are model.FIELD or train.FIELD (e.g. "
                                        "model.experts=false, train.steps_per_stage=(500,500,500))")
        if group == "model":
            model = _set(model, path[0], value.strip(), item)
            explicit.add(path[0])
        else:
            train = _set(train, path[0], value.strip(), item)
    if train.window > model.max_offset:
        raise WorldModelConfigError(f"train.window={train.window} exceeds model.max_offset={model.max_offset}: goals "
                                    "would lie beyond the trained offset range; lower the window or raise max_offset")
    return model, train, explicit
