"""The passive separator f^P = f^M o f^B (the seed's Sec. 4.1, Move2Hear's factorisation).

* f^B (binaural extractor): log1p of the mixture's magnitudes (32 channels: 2 ears x 16
  frequency chunks) plus one constant channel holding the target type, ``(type + 1) /
  num_types`` (the seed concatenates the type label after slicing), -> a sigmoid ratio mask;
  the target binaural estimate is ``B~ = mask * |B_mix|`` (32, 32, 32).
* f^M (monaural predictor): log1p(B~) -> the dry target's magnitudes ``M~`` (16, 32, 32),
  softplus so they are non-negative.

Eq. 1: ``L^P = |B~ - B|_1 + |M~ - M|_1``, each the mean absolute error over the elements of
the magnitude tensors (:func:`passive_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from avworld.models.separation.spectrogram import CHUNKS, log_features
from avworld.models.separation.unet import UNet, UNetError


@dataclass(frozen=True)
class PassiveConfig:
    """Sizes of f^P. ``channels`` are the five U-Net widths of both f^B and f^M; ``num_types`` the
    number of sound types the type channel is scaled by (the sound bank's type count)."""

    channels: tuple[int, ...] = (64, 128, 256, 512, 512)
    num_types: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 5 or min(self.channels) < 1:
            raise UNetError(f"PassiveConfig.channels needs five positive widths, got {self.channels}")
        if self.num_types < 1:
            raise UNetError(f"PassiveConfig.num_types must be >= 1, got {self.num_types}")


class PassiveOutput(NamedTuple):
    binaural: torch.Tensor  # B~ (B, 32, 32, 32) magnitudes
    mono: torch.Tensor  # M~ (B, 16, 32, 32) magnitudes
    mask: torch.Tensor  # f^B's ratio mask (B, 32, 32, 32)


class PassiveSeparator(nn.Module):
    """f^P: mixture magnitudes (B, 32, 32, 32) and target types (B,) -> :class:`PassiveOutput`."""

    def __init__(self, config: PassiveConfig = PassiveConfig()) -> None:
        super().__init__()
        self.config = config
        self.binaural = UNet(2 * CHUNKS + 1, 2 * CHUNKS, config.channels)  # f^B
        self.monaural = UNet(2 * CHUNKS, CHUNKS, config.channels)  # f^M

    def type_channel(self, target_type: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        value = (target_type.to(like.dtype).view(-1, 1, 1, 1) + 1.0) / self.config.num_types
        return value.expand(like.shape[0], 1, *like.shape[-2:])

    def forward(self, mixture: torch.Tensor, target_type: torch.Tensor) -> PassiveOutput:
        x = log_features(mixture)
        mask = torch.sigmoid(self.binaural(torch.cat([x, self.type_channel(target_type, x)], dim=1)))
        binaural = mask * mixture
        mono = F.softplus(self.monaural(log_features(binaural)))
        return PassiveOutput(binaural, mono, mask)


def passive_loss(out: PassiveOutput, target_binaural: torch.Tensor, target_mono: torch.Tensor) -> tuple:
    """Eq. 1 -> (loss, {"loss/binaural", "loss/mono"}) with element-mean L1 terms."""
    lb = (out.binaural - target_binaural).abs().mean()
    lm = (out.mono - target_mono).abs().mean()
    return lb + lm, {"loss/binaural": lb.detach(), "loss/mono": lm.detach()}
