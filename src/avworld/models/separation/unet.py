"""The seed's U-Net for 32 x 32 spectrogram tensors (Move2Hear's f^B / f^M body).

Encoder: five convolutions (kernel 4, stride 2, padding 1), each with BatchNorm (not on the
first nor on the 1 x 1 innermost, as pix2pix) and LeakyReLU 0.2: 32 -> 16 -> 8 -> 4 -> 2 -> 1 pixels, ``channels``
outputs (the seed's 64-128-256-512-512 by default). Decoder: five transposed convolutions
(kernel 4, stride 2, padding 1) with BatchNorm and ReLU; every decoder level but the first
sees its input concatenated with the encoder output of the same resolution (skips). A
1 x 1 convolution head maps the last 32 x 32 features (concatenated with the first encoder
level's) to ``out_channels``. Weights: He-normal (the seed), zero biases.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

LEVELS = 5


class UNetError(ValueError):
    """A U-Net config cannot be built (wrong number of levels or a non-positive width)."""


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """(B, in_channels, 32, 32) -> (B, out_channels, 32, 32) raw head outputs (the caller picks the activation)."""

    def __init__(self, in_channels: int, out_channels: int, channels: Sequence[int] = (64, 128, 256, 512, 512)) -> None:
        super().__init__()
        ch = tuple(int(c) for c in channels)
        if len(ch) != LEVELS or min(ch) < 1 or in_channels < 1 or out_channels < 1:
            raise UNetError(f"a U-Net needs {LEVELS} positive widths and positive in/out channels, got "
                            f"channels={ch}, in={in_channels}, out={out_channels}")
        self.downs = nn.ModuleList(_down(c_in, c_out, 0 < i < LEVELS - 1) for i, (c_in, c_out) in
                                   enumerate(zip((in_channels, *ch[:-1]), ch)))
        ups = [_up(ch[-1], ch[-2])]  # 1 -> 2 pixels
        for i in range(LEVELS - 2, 0, -1):  # level i: input = up output (ch[i]) + skip (ch[i])
            ups.append(_up(2 * ch[i], ch[i - 1]))
        self.ups = nn.ModuleList(ups)
        self.last_up = _up(2 * ch[0], ch[0])  # 16 -> 32 pixels
        self.head = nn.Conv2d(ch[0], out_channels, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=0.2)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (32, 32):
            raise UNetError(f"the U-Net takes 32 x 32 inputs (five halvings to 1 x 1), got {tuple(x.shape[-2:])}")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        x = self.ups[0](skips[-1])
        for up, skip in zip(self.ups[1:], reversed(skips[1:-1])):
            x = up(torch.cat([x, skip], dim=1))
        x = self.last_up(torch.cat([x, skips[0]], dim=1))
        return self.head(x)
