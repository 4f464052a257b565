"""AV-CDiT's configuration, presets, stages and errors (this module itself imports no torch).

Split from :mod:`avworld.models.worldmodel.cdit`; the package (`avworld.models.worldmodel`) exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass


class WorldModelError(ValueError):
    """The world model got a configuration or input it cannot handle."""


class ContextLengthError(WorldModelError):
    """A context with another number of frames than the configured ``context_frames`` (k)."""


class LatentMismatchError(WorldModelError):
    """Latents of another shape than the model's (e.g. from another tokenizer)."""


class OffsetRangeError(WorldModelError):
    """A temporal offset beyond the trained range ``[-max_offset, max_offset]``."""


class StageError(WorldModelError):
    """A training stage other than 1, 2 or 3."""


class LayoutMismatchError(WorldModelError):
    """A state dict of another model layout (experts vs shared FFN, reward token, sizes)."""


class UnknownPresetError(WorldModelError):
    """A preset name that is not in :data:`PRESETS`."""


MODALITIES = ("rgb", "audio", "reward")


@dataclass(frozen=True)
class AVCDiTConfig:
    """Shape of :class:`AVCDiT` and of the latents it accepts (defaults: the ``S`` size)."""

    rgb_channels: int = 4
    rgb_size: int = 8
    patch_size: int = 2
    audio_dim: int = 64
    audio_frames: int = 20
    audio_patch: int = 1
    context_frames: int = 4
    width: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: float = 4.0
    max_offset: int = 16
    learn_sigma: bool = True
    #: False: one shared FFN for all tokens (the "w/o modality experts" ablation).
    experts: bool = True
    reward_token: bool = True
    #: Reward tokens in the target sequence (the reward head is averaged over them).
    reward_tokens: int = 1
    dropout: float = 0.0
    freq_dim: int = 256
    #: Actions are multiplied by this before their sinusoidal features (see embeddings.py).
    action_scale: float = 10.0
    #: False: an audio (+ reward) model without visual tokens in target or context, trained with
    #: stage 3 only: the audio half of the modality-factorized baseline (issue 18, item 7).
    visual: bool = True

    def __post_init__(self):
        ints = ("rgb_channels", "rgb_size", "patch_size", "audio_dim", "audio_frames", "audio_patch",
                "context_frames", "width", "depth", "heads", "freq_dim")
        bad = [f"{n}={getattr(self, n)}" for n in ints if int(getattr(self, n)) < 1]
        if bad:
            raise WorldModelError(f"AVCDiTConfig: {', '.join(bad)} must be >= 1")
        if self.rgb_size % self.patch_size:
            raise WorldModelError(f"rgb_size={self.rgb_size} is not a multiple of patch_size={self.patch_size}; "
                                  "use a patch size that divides the latent size (1 or 2 for 8x8 latents)")
        if self.audio_frames % self.audio_patch:
            raise WorldModelError(f"audio_frames={self.audio_frames} is not a multiple of audio_patch="
                                  f"{self.audio_patch}; use a divisor (1, 2, 4, 5, 10 or 20 for 20 frames)")
        if self.width % self.heads:
            raise WorldModelError(f"width={self.width} is not a multiple of heads={self.heads}")
        if self.max_offset < 0 or self.mlp_ratio <= 0 or not 0 <= self.dropout < 1:
            raise WorldModelError("max_offset must be >= 0, mlp_ratio > 0 and dropout in [0, 1)")
        if self.reward_token and self.reward_tokens < 1:
            raise WorldModelError("reward_token=True needs reward_tokens >= 1 (or set reward_token=False)")

    @property
    def visual_tokens(self) -> int:
        return (self.rgb_size // self.patch_size) ** 2

    @property
    def audio_tokens(self) -> int:
        return self.audio_frames // self.audio_patch

    @property
    def out_factor(self) -> int:
        """Output channels per input channel: 2 (noise + variance) with ``learn_sigma``, else 1."""
        return 2 if self.learn_sigma else 1


#: Sizes. ``cpu-tiny`` is sized by measurement (docs/worldmodel.md); S and B are NWM's sizes.
PRESETS: dict[str, dict] = {
    "cpu-tiny": dict(width=128, depth=4, heads=4, freq_dim=128),  # 2.5 M parameters,
    "S": dict(width=384, depth=12, heads=6),
    "B": dict(width=768, depth=12, heads=12),
}


def avcdit_config(preset: str = "cpu-tiny", **overrides) -> AVCDiTConfig:
    """The :class:`AVCDiTConfig` of a preset in :data:`PRESETS`, with ``overrides`` applied."""
    if preset not in PRESETS:
        raise UnknownPresetError(f"unknown AV-CDiT preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return AVCDiTConfig(**{**PRESETS[preset], **overrides})


#: Parameter groups each stage trains (seed §4.2). ``shared_ffn`` exists only with
#: ``experts=False``: it then trains in stage 1 (it is the visual FFN there) AND in stage 2
#: (it stands in for the audio expert; without it stage 2 would train only adaptors and heads).
STAGE_GROUPS: dict[int, tuple[str, ...]] = {
    1: ("shared", "visual", "shared_ffn"),
    2: ("audio", "reward", "shared_ffn"),
    3: ("shared", "visual", "audio", "reward", "shared_ffn"),
}


@dataclass(frozen=True)
class StageSpec:
    """Which modalities a stage puts in the target and context, and which carry a loss."""

    target: tuple[str, ...]
    context: tuple[str, ...]
    loss: tuple[str, ...]


def stage_spec(stage: int, reward: bool = True, visual: bool = True) -> StageSpec:
    """Stage 1 drops audio and reward tokens (vision-only data); stage 2 keeps the visual tokens
    in the sequence but their loss is off; stage 3 trains on everything. ``visual=False`` (an
    audio-only model) has stage 3 only, without visual tokens anywhere."""
    _check_stage(stage)
    rew = ("reward",) if reward else ()
    if not visual:
        if stage != 3:
            raise StageError(f"an audio-only model (model.visual=false) trains and predicts with stage 3 only, "
                             f"got stage {stage}; pass --stages 3")
        return StageSpec(("audio", *rew), ("audio",), ("audio", *rew))
    if stage == 1:
        return StageSpec(("rgb",), ("rgb",), ("rgb",))
    if stage == 2:
        return StageSpec(("rgb", "audio", *rew), ("rgb", "audio"), ("audio", *rew))
    return StageSpec(("rgb", "audio", *rew), ("rgb", "audio"), ("rgb", "audio", *rew))


def _check_stage(stage) -> None:
    if stage not in STAGE_GROUPS:
        raise StageError(f"stage must be 1 (vision), 2 (audio) or 3 (joint), got {stage!r}")
