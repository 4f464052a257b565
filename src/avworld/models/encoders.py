"""Convolutional encoders shared by the navigation agents (SoundSpaces' SimpleCNN / AudioCNN).

Both are three convolutions and a fully connected layer, as in SoundSpaces'
``ss_baselines/av_nav/models``:

* :class:`VisualCNN`: rgb (/255) and depth stacked on channels -> 32@8x8/4 -> 64@4x4/2 ->
  64@3x3/1 -> FC ``output_size`` + ReLU (no ReLU after the last convolution, like SoundSpaces).
* :class:`AudioCNN`: the (C, F, T) spectrogram -> the same three convolutions with the
  SoundSpaces rule for small inputs (if F or T < 30: kernels 5, 3, 3 and strides 2, 2, 1)
  -> FC ``output_size`` + ReLU.

avworld's spectrograms are short in time (T = 7 frames for a 0.25 s step), shorter than
even SoundSpaces' small kernels. :func:`conv_plan` therefore *adapts* every layer per axis:
where the input is smaller than the kernel, the kernel shrinks to the input size and the
stride becomes 1 (that axis is then collapsed to one position). For (2, 65, 7) this gives
65 -> 31 -> 15 -> 13 on frequency and 7 -> 2 -> 1 -> 1 on time. The same rule lets the
visual CNN run on tiny test images (16x16). Weights use SoundSpaces' init (Kaiming normal
with the ReLU gain, zero bias).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: SoundSpaces' kernels and strides (per layer); the visual CNN always uses the large ones.
LARGE_KERNELS, LARGE_STRIDES = (8, 4, 3), (4, 2, 1)
SMALL_KERNELS, SMALL_STRIDES = (5, 3, 3), (2, 2, 1)


class EncoderError(ValueError):
    """An encoder cannot be built for the given input shape."""


def conv_plan(size_hw: Sequence[int], kernels: Sequence[int], strides: Sequence[int]):
    """Per-layer ((kh, kw), (sh, sw)) and the output (h, w), shrinking kernels that do not fit.

    >>> conv_plan((65, 7), (5, 3, 3), (2, 2, 1))
    ([((5, 5), (2, 2)), ((3, 2), (2, 1)), ((3, 1), (1, 1))], (13, 1))
    """
    h, w = (int(v) for v in size_hw)
    if h < 1 or w < 1:
        raise EncoderError(f"input size must be >= 1 on both axes, got {tuple(size_hw)}")
    plan = []
    for k, s in zip(kernels, strides):
        ks, ss, out = [], [], []
        for n in (h, w):
            kk, st = (k, s) if n >= k else (n, 1)
            ks.append(kk)
            ss.append(st)
            out.append((n - kk) // st + 1)
        plan.append((tuple(ks), tuple(ss)))
        h, w = out
    return plan, (h, w)


def layer_init(module: nn.Module) -> None:
    """SoundSpaces' init of conv and linear layers: Kaiming normal (ReLU gain), zero bias."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nn.init.calculate_gain("relu"))
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def conv_stack(in_channels: int, channels: Sequence[int], plan) -> nn.Sequential:
    """Conv layers of ``plan`` with ReLU between them (not after the last one)."""
    layers: list[nn.Module] = []
    c = in_channels
    for i, (out_c, (k, s)) in enumerate(zip(channels, plan)):
        layers.append(nn.Conv2d(c, out_c, kernel_size=k, stride=s))
        if i < len(plan) - 1:
            layers.append(nn.ReLU(inplace=True))
        c = out_c
    return nn.Sequential(*layers)


def image_input(obs: dict[str, torch.Tensor], keys: Sequence[str]) -> torch.Tensor:
    """(B, H, W, C) image observations -> one (B, sum C, H, W) float tensor; rgb uint8 is scaled to [0, 1]."""
    parts = []
    for k in keys:
        x = obs[k]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        parts.append(x.permute(0, 3, 1, 2))  # (B, H, W, C) -> (B, C, H, W)
    return torch.cat(parts, dim=1)


class VisualCNN(nn.Module):
    """Images (B, H, W, C_k) for each key -> (B, output_size): 32@8/4 -> 64@4/2 -> 64@3/1 -> FC -> ReLU."""

    def __init__(self, in_channels: int, size_hw: Sequence[int], output_size: int = 512,
                 channels: Sequence[int] = (32, 64, 64), kernels: Sequence[int] = LARGE_KERNELS,
                 strides: Sequence[int] = LARGE_STRIDES) -> None:
        super().__init__()
        if in_channels < 1:
            raise EncoderError("VisualCNN needs at least one image channel (rgb and/or depth)")
        plan, (h, w) = conv_plan(size_hw, kernels, strides)
        self.cnn = conv_stack(in_channels, channels, plan)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * h * w, output_size), nn.ReLU(inplace=True))
        self.output_size = output_size
        layer_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, H, W) float
        return self.fc(self.cnn(x))  # (B, 64, h, w) -> (B, output_size)


def audio_plan(size_ft: Sequence[int]):
    """SoundSpaces' choice of kernels for a spectrogram of (F, T), adapted to tiny inputs (see module doc)."""
    small = min(size_ft) < 30
    return conv_plan(size_ft, SMALL_KERNELS if small else LARGE_KERNELS, SMALL_STRIDES if small else LARGE_STRIDES)


class AudioCNN(nn.Module):
    """Spectrogram (B, C, F, T) -> (B, output_size), SoundSpaces' AudioCNN with adaptive kernels."""

    def __init__(self, in_channels: int, size_ft: Sequence[int], output_size: int = 512,
                 channels: Sequence[int] = (32, 64, 64)) -> None:
        super().__init__()
        plan, (f, t) = audio_plan(size_ft)
        self.cnn = conv_stack(in_channels, channels, plan)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels[-1] * f * t, output_size), nn.ReLU(inplace=True))
        self.output_size = output_size
        layer_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, F, T)
        return self.fc(self.cnn(x))
