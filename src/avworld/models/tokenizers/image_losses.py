"""Losses of the image autoencoder: L1 + (1 - MS-SSIM) + KL, and an optional patch GAN.

* :func:`ms_ssim` is a differentiable torch MS-SSIM with the conventions of
  :mod:`avworld.eval.image_metrics` (and torchmetrics): Gaussian window 11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 1 on images in [0, 1], mirror ("reflect") padding by 5 px,
  2 x 2 average pooling between scales, the contrast-structure term at every scale but the
  coarsest (cropped by 5 px), the full SSIM at the coarsest, each clamped at 0, weighted
  product. The standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) are cut to the
  scales used and **renormalised to sum to 1**, so a perfect match is 1 and a 3-scale value
  is comparable to a 5-scale one. Clamping happens at ``eps`` (not 0) so ``term ** w``
  keeps a finite gradient.
* **Scales are auto-clipped**: the coarsest scale must still hold the 11 px window (as the
  metric requires), so an image of side ``s`` uses at most ``1 + floor(log2(s / 11))``
  scales: 64 px -> 3 (64, 32, 16), 32 px -> 2, 16 px -> 1 (plain SSIM), 176 px for all 5.
  ``ImageLossConfig.ms_ssim_scales`` is an upper bound, never an error.
* :class:`PatchDiscriminator` is the pix2pix ``NLayerDiscriminator`` (conv 4x4 stride 2 +
  LeakyReLU 0.2, widths x2 up to 8x, then two stride-1 convs to one logit per patch) with
  GroupNorm instead of BatchNorm, so DDP and batches of one behave; trained with the hinge
  loss (:func:`hinge_d_loss`), the generator term is ``-D(recon).mean()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


class ImageLossError(ValueError):
    """The image loss got a configuration or inputs it cannot handle."""


@dataclass(frozen=True)
class ImageLossConfig:
    """Weights of the image autoencoder loss and the shape of its optional discriminator.

    ``loss = l1 * L1 + ms_ssim * (1 - MS-SSIM) + kl * KL (+ gan * generator hinge term once
    step >= gan_start)``; ``gan = 0`` builds no discriminator.
    """

    l1: float = 1.0
    ms_ssim: float = 0.2
    kl: float = 1e-6
    ms_ssim_scales: int = 3
    gan: float = 0.0
    gan_start: int = 0
    disc_width: int = 64
    disc_layers: int = 3

    def __post_init__(self):
        if min(self.l1, self.ms_ssim, self.kl, self.gan) < 0 or not all(
                math.isfinite(v) for v in (self.l1, self.ms_ssim, self.kl, self.gan)):
            raise ImageLossError(f"loss weights must be finite and >= 0, got l1={self.l1}, ms_ssim={self.ms_ssim}, "
                                 f"kl={self.kl}, gan={self.gan}")
        if not 1 <= int(self.ms_ssim_scales) <= len(MS_SSIM_WEIGHTS):
            raise ImageLossError(f"ms_ssim_scales must be 1..{len(MS_SSIM_WEIGHTS)}, got {self.ms_ssim_scales}")
        if int(self.gan_start) < 0 or int(self.disc_width) < 1 or int(self.disc_layers) < 1:
            raise ImageLossError(f"gan_start must be >= 0 and disc_width, disc_layers >= 1, got "
                                 f"{self.gan_start}, {self.disc_width}, {self.disc_layers}")


def usable_scales(height: int, width: int, scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """How many of ``scales`` fit: the coarsest one must stay >= the 11 px window."""
    side = min(int(height), int(width))
    if side < SSIM_WINDOW:
        raise ImageLossError(f"MS-SSIM needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} px, got "
                             f"{height} x {width}; use larger images or set the ms_ssim weight to 0")
    return max(1, min(int(scales), 1 + int(math.floor(math.log2(side / SSIM_WINDOW)))))


def _window(channels: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    d = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-0.5 * (d / SSIM_SIGMA) ** 2)
    g = (g / g.sum()).to(dtype=dtype, device=device)
    return g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)


def _ssim_maps(x: torch.Tensor, y: torch.Tensor, k1: float, k2: float) -> tuple[torch.Tensor, torch.Tensor]:
    c = x.shape[1]
    gv, gh = _window(c, x.dtype, x.device)
    pad = (SSIM_WINDOW - 1) // 2
    stack = F.pad(torch.cat([x, y, x * x, y * y, x * y], dim=1), (pad, pad, pad, pad), mode="reflect")
    blur = F.conv2d(F.conv2d(stack, gv.repeat(5, 1, 1, 1), groups=5 * c), gh.repeat(5, 1, 1, 1), groups=5 * c)
    mu_x, mu_y, xx, yy, xy = blur.split(c, dim=1)
    var_x = (xx - mu_x.square()).clamp_min(0.0)
    var_y = (yy - mu_y.square()).clamp_min(0.0)
    cov = xy - mu_x * mu_y
    c1, c2 = k1 ** 2, k2 ** 2  # data range 1
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x.square() + mu_y.square() + c1)
    return lum * cs, cs


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int = 3, k1: float = 0.01, k2: float = 0.03,
            eps: float = 1e-6) -> torch.Tensor:
    """Differentiable MS-SSIM per image, shape (B,), of float (B, C, H, W) images in [0, 1].

    ``scales`` is an upper bound (see the module docstring: clipped so the coarsest scale
    keeps the 11 px window); weights are the standard ones renormalised over the scales used.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ImageLossError(f"ms_ssim takes two (B, C, H, W) images of the same shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
    n = usable_scales(x.shape[-2], x.shape[-1], scales)
    w = torch.tensor(MS_SSIM_WEIGHTS[:n], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    pad = (SSIM_WINDOW - 1) // 2
    terms = []
    for k in range(n):
        s, cs = _ssim_maps(x, y, k1, k2)
        if k == n - 1:
            terms.append(s.mean(dim=(1, 2, 3)))
        else:
            terms.append(cs[..., pad:-pad, pad:-pad].mean(dim=(1, 2, 3)))
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stack = torch.stack(terms).clamp_min(eps)
    return torch.prod(stack ** w[:, None], dim=0)


def group_count(width: int, groups: int) -> int:
    """The largest group count <= ``groups`` that divides ``width``."""
    return max(g for g in range(1, max(1, min(groups, width)) + 1) if width % g == 0)


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN (``NLayerDiscriminator``) with GroupNorm; (B, C, H, W) -> (B, 1, h, w) logits."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, norm_groups: int = 32):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        cur = width
        for n in range(1, layers + 1):
            nxt = width * min(2 ** n, 8)
            stride = 2 if n < layers else 1
            mods += [nn.Conv2d(cur, nxt, 4, stride, 1, bias=False), nn.GroupNorm(group_count(nxt, norm_groups), nxt),
                     nn.LeakyReLU(0.2)]
            cur = nxt
        mods.append(nn.Conv2d(cur, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def min_discriminator_size(layers: int) -> int:
    """Smallest image side for which a ``layers``-layer discriminator still outputs a patch."""
    return 3 * 2 ** int(layers)


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    return F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean()


def hinge_g_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator hinge term ``-mean(D(fake))``."""
    return -logits_fake.mean()


def psnr(pred01: torch.Tensor, target01: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of (B, C, H, W) images in [0, 1] (``pred`` is clamped to [0, 1])."""
    mse = (pred01.clamp(0, 1) - target01).square().flatten(1).mean(1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))
