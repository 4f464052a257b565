"""Image autoencoder: a KL autoencoder of the Stable-Diffusion-VAE family, small and written here.

Layout (defaults ``base_width=64``, ``width_mult=(1, 2, 2, 4)``, ``res_blocks=1``)::

    encoder: conv3(3 -> 64)
             level 0: ResnetBlock(64 -> 64)    ; conv3 stride 2         64 -> 32 px
             level 1: ResnetBlock(64 -> 128)   ; conv3 stride 2         32 -> 16 px
             level 2: ResnetBlock(128 -> 128)  ; conv3 stride 2         16 ->  8 px
             level 3: ResnetBlock(128 -> 256)
             mid: ResnetBlock, single-head self-attention, ResnetBlock  (8 x 8 = 64 tokens)
             GroupNorm ; SiLU ; conv3(256 -> 2 * 4)                     -> mean, logvar (B, 4, 8, 8)
    decoder: conv3(4 -> 256) ; mid ; the levels in reverse with nearest x2 + conv3 up-sampling
             GroupNorm ; SiLU ; conv3(64 -> 3)                          -> (B, 3, 64, 64), linear

A ResnetBlock is ``skip(x) + conv3(SiLU(GN(conv3(SiLU(GN(x))))))`` (skip = 1x1 conv when the
widths differ), as in SD's VAE. Differences from SD: one width per level and the same number of
ResnetBlocks in the decoder as in the encoder (SD: one more), no 1x1 ``quant_conv`` pair,
stride-2 convolutions padded symmetrically. The log-variance is clamped to [-30, 20] as SD.

Images are uint8 ``(B, H, W, C)`` (numpy or torch, as stored in the datasets) or float
``(B, C, H, W)`` in [-1, 1]; the decoder works in [-1, 1] space (no tanh; :meth:`to_uint8`
clamps). Latents for a diffusion model are ``encode_latents`` = posterior mode (or a sample)
times ``latent_scale``, a buffer (saved in the state dict) that the trainer sets to
:meth:`measure_latent_scale` on the training set (unit variance; SD's 0.18215).

The model owns its loss: ``model({"image": images}, step) -> (loss, logs)`` (see
:mod:`.image_losses`); with ``loss.gan > 0`` it also holds a patch ``discriminator`` trained
by :meth:`discriminator_loss`. Bad input raises an :class:`ImageAutoencoderError` subclass
naming the problem and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from avworld.models.tokenizers.image_losses import (
    ImageLossConfig,
    PatchDiscriminator,
    group_count,
    hinge_d_loss,
    hinge_g_loss,
    min_discriminator_size,
    ms_ssim,
    psnr,
)


class ImageAutoencoderError(ValueError):
    """The image autoencoder got a configuration or input it cannot handle."""


class ImageSizeError(ImageAutoencoderError):
    """Images of another height/width than the configured one (or a size the model cannot take)."""


class ImageChannelError(ImageAutoencoderError):
    """Images with the wrong channel count or layout."""


class ImageDtypeError(ImageAutoencoderError):
    """Images of an unsupported dtype or value range (uint8 or floats in [-1, 1] are expected)."""


class LatentShapeError(ImageAutoencoderError):
    """Latents that are not (B, latent_channels, image_size / 8, image_size / 8)."""


@dataclass(frozen=True)
class ImageAutoencoderConfig:
    """Shape of :class:`ImageAutoencoder` and of the images it accepts (square, ``image_size`` px)."""

    image_size: int = 64
    in_channels: int = 3
    latent_channels: int = 4
    base_width: int = 64
    width_mult: tuple[int, ...] = (1, 2, 2, 4)
    res_blocks: int = 1
    mid_attention: bool = True
    norm_groups: int = 32
    loss: ImageLossConfig = field(default_factory=ImageLossConfig)

    def __post_init__(self):
        # Accept lists / dicts (a config read back from JSON) but store tuples / dataclasses.
        object.__setattr__(self, "width_mult", tuple(int(m) for m in self.width_mult))
        if isinstance(self.loss, Mapping):
            object.__setattr__(self, "loss", ImageLossConfig(**self.loss))
        if not self.width_mult or min(self.width_mult) < 1:
            raise ImageAutoencoderError(f"width_mult needs one positive integer per level, got {self.width_mult}")
        if min(self.in_channels, self.latent_channels, self.base_width, self.res_blocks, self.norm_groups) < 1:
            raise ImageAutoencoderError("in_channels, latent_channels, base_width, res_blocks and norm_groups "
                                        "must be >= 1")
        f = self.downsample
        if self.image_size < 1 or self.image_size % f:
            near = max(1, round(self.image_size / f)) * f
            raise ImageSizeError(f"image_size={self.image_size} is not a positive multiple of the total "
                                 f"down-sampling {f} (2 ** (len(width_mult) - 1)); pick e.g. {near} or "
                                 f"change width_mult")
        if self.loss.ms_ssim > 0 and self.image_size < 11:
            raise ImageSizeError(f"image_size={self.image_size} is below the 11 px SSIM window; use larger "
                                 f"images or ImageLossConfig(ms_ssim=0)")
        need = min_discriminator_size(self.loss.disc_layers)
        if self.loss.gan > 0 and self.image_size < need:
            raise ImageSizeError(f"a {self.loss.disc_layers}-layer patch discriminator needs images of at least "
                                 f"{need} px, image_size={self.image_size}; lower ImageLossConfig.disc_layers")

    @property
    def downsample(self) -> int:
        """Pixels per latent cell along each side (2 ** (levels - 1); 8 at the defaults)."""
        return 2 ** (len(self.width_mult) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.base_width * m for m in self.width_mult)


class DiagonalGaussian:
    """The posterior ``N(mean, exp(logvar))`` per latent element; ``logvar`` is clamped to [-30, 20]."""

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """``mean + std * eps``, eps from ``generator`` (the global torch RNG when None)."""
        eps = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL to N(0, 1) per sample, summed over the latent elements: shape (B,)."""
        return 0.5 * (self.mean.square() + self.logvar.exp() - 1.0 - self.logvar).flatten(1).sum(1)


class _ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.GroupNorm(group_count(cin, groups), cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(group_count(cout, groups), cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class _Attention(nn.Module):
    """Single-head self-attention over the H * W positions (SD's ``AttnBlock``), residual."""

    def __init__(self, width: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(group_count(width, groups), width)
        self.qkv = nn.Conv2d(width, 3 * width, 1)
        self.proj = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # (B, HW, C) each
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(1, 2).reshape(b, c, h, w))


def _mid(width: int, cfg: ImageAutoencoderConfig) -> list[nn.Module]:
    g = cfg.norm_groups
    return [_ResnetBlock(width, width, g)] + ([_Attention(width, g)] if cfg.mid_attention else []) + \
        [_ResnetBlock(width, width, g)]


class _Upsample(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _build(cfg: ImageAutoencoderConfig) -> tuple[nn.Sequential, nn.Sequential]:
    w, g, levels = cfg.widths, cfg.norm_groups, len(cfg.width_mult)
    enc: list[nn.Module] = [nn.Conv2d(cfg.in_channels, w[0], 3, padding=1)]
    cur = w[0]
    for i in range(levels):
        for _ in range(cfg.res_blocks):
            enc.append(_ResnetBlock(cur, w[i], g))
            cur = w[i]
        if i < levels - 1:
            enc.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))
    enc += _mid(cur, cfg) + [nn.GroupNorm(group_count(cur, g), cur), nn.SiLU(),
                             nn.Conv2d(cur, 2 * cfg.latent_channels, 3, padding=1)]
    dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, w[-1], 3, padding=1)] + _mid(w[-1], cfg)
    cur = w[-1]
    for i in reversed(range(levels)):
        for _ in range(cfg.res_blocks):
            dec.append(_ResnetBlock(cur, w[i], g))
            cur = w[i]
        if i > 0:
            dec.append(_Upsample(cur))
    dec += [nn.GroupNorm(group_count(cur, g), cur), nn.SiLU(), nn.Conv2d(cur, cfg.in_channels, 3, padding=1)]
    return nn.Sequential(*enc), nn.Sequential(*dec)


class ImageAutoencoder(nn.Module):
    """SD-style KL autoencoder; weights are initialised from ``seed`` (global RNG untouched)."""

    def __init__(self, config: ImageAutoencoderConfig = ImageAutoencoderConfig(), seed: int = 0):
        super().__init__()
        self.config = cfg = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.encoder, self.decoder = _build(cfg)
            self.discriminator = (PatchDiscriminator(cfg.in_channels, cfg.loss.disc_width, cfg.loss.disc_layers,
                                                     cfg.norm_groups) if cfg.loss.gan > 0 else None)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    # -- input checks -------------------------------------------------------------------------
    def check_images(self, images) -> None:
        """Raise a typed :class:`ImageAutoencoderError` unless ``images`` is uint8 (B, H, W, C) or
        float (B, C, H, W) in [-1, 1] at the configured size."""
        self._as_tensor(images)

    def _as_tensor(self, images) -> torch.Tensor:
        cfg, c, s = self.config, self.config.in_channels, self.config.image_size
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8:
                raise ImageDtypeError(f"numpy images must be uint8 (B, H, W, {c}), got dtype {images.dtype}; "
                                      f"pass uint8 arrays or a float torch tensor (B, {c}, H, W) in [-1, 1]")
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not isinstance(images, torch.Tensor):
            raise ImageDtypeError(f"images must be a numpy array or torch tensor, got {type(images).__name__}")
        if images.dim() != 4:
            raise ImageChannelError(f"images must be a batch (B, H, W, {c}) uint8 or (B, {c}, H, W) float, got "
                                    f"shape {tuple(images.shape)}; add a batch axis with images[None]")
        if images.dtype == torch.uint8:
            if images.shape[-1] != c:
                hint = (" (it looks channels-first; uint8 images go channels-last: images.permute(0, 2, 3, 1))"
                        if images.shape[1] == c else "")
                raise ImageChannelError(f"uint8 images must be (B, H, W, {c}), got shape {tuple(images.shape)}{hint}")
            size = tuple(images.shape[1:3])
        elif images.is_floating_point():
            if images.shape[1] != c:
                hint = (" (it looks channels-last; float images go channels-first: images.permute(0, 3, 1, 2))"
                        if images.shape[-1] == c else "")
                raise ImageChannelError(f"float images must be (B, {c}, H, W), got shape {tuple(images.shape)}{hint}")
            size = tuple(images.shape[2:4])
        else:
            raise ImageDtypeError(f"images have dtype {images.dtype}; pass uint8 (0..255, channels-last) or floats "
                                  f"in [-1, 1] (channels-first), e.g. x.float() / 127.5 - 1")
        if size != (s, s):
            raise ImageSizeError(f"images are {size[0]} x {size[1]} px, the autoencoder is built for {s} x {s}; "
                                 f"resize the images to {s} x {s} or build it with image_size={size[0]} "
                                 f"(square, a multiple of {cfg.downsample})")
        if images.shape[0] == 0:
            raise ImageChannelError("no images given (batch of 0); pass at least one image")
        if images.is_floating_point():
            if not bool(torch.isfinite(images).all()):
                raise ImageDtypeError("float images contain NaN or inf; fix the producer of the images")
            lo, hi = float(images.min()), float(images.max())
            if lo < -1.01 or hi > 1.01:
                raise ImageDtypeError(f"float images span [{lo:.4g}, {hi:.4g}]; uint8 (0..255) or floats in [-1, 1] "
                                      f"are expected: map [0, 1] with x * 2 - 1 and [0, 255] with x / 127.5 - 1")
        return images

    def prepare_images(self, images) -> torch.Tensor:
        """Checked images as float (B, C, H, W) in [-1, 1] on the model's device and dtype."""
        x = self._as_tensor(images)
        p = next(self.parameters())
        if x.dtype == torch.uint8:
            x = x.to(p.device).permute(0, 3, 1, 2).to(p.dtype) / 127.5 - 1.0
        return x.to(device=p.device, dtype=p.dtype)

    def check_latent(self, z: torch.Tensor) -> None:
        shape = (self.config.latent_channels, self.config.latent_size, self.config.latent_size)
        if not isinstance(z, torch.Tensor) or z.dim() != 4 or tuple(z.shape[1:]) != shape:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise LatentShapeError(f"latents must be (batch, {', '.join(map(str, shape))}) float, got {got}; "
                                   f"decode what this autoencoder's encode() returns")

    # -- encode / decode ------------------------------------------------------------------------
    def encode(self, images) -> DiagonalGaussian:
        """uint8 (B, H, W, C) or float (B, C, H, W) in [-1, 1] -> posterior over (B, 4, H/8, W/8)."""
        return self._posterior(self.prepare_images(images))

    def _posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_channels, h, w) -> float (B, C, H, W) in [-1, 1] space (not clamped)."""
        self.check_latent(z)
        return self.decoder(z)

    @staticmethod
    def to_uint8(x: torch.Tensor) -> torch.Tensor:
        """float (B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C) (clamped, rounded)."""
        return ((x.detach().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def encode_latents(self, images, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled latents for a diffusion model: posterior mode (or a sample) times ``latent_scale``."""
        post = self.encode(images)
        return (post.sample(generator) if sample else post.mode()) * self.latent_scale

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode_latents`: ``decode(z / latent_scale)``."""
        return self.decode(z / self.latent_scale)

    def set_latent_scale(self, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise ImageAutoencoderError(f"latent_scale must be a finite positive number, got {value}")
        self.latent_scale.fill_(float(value))

    @torch.no_grad()
    def measure_latent_scale(self, images, batch_size: int = 64) -> float:
        """``1 / std`` of the posterior means over all ``images`` (all latent elements pooled).

        ``images``: one batch (array/tensor) or an iterable of batches (or of dicts with an
        ``"image"`` entry). Does not set the buffer: call :meth:`set_latent_scale` with it.
        """
        total, total_sq, count = 0.0, 0.0, 0
        for batch in _batches(images, batch_size):
            m = self.encode(batch).mean.double()
            total, total_sq, count = total + float(m.sum()), total_sq + float(m.square().sum()), count + m.numel()
        if count == 0:
            raise ImageAutoencoderError("measure_latent_scale got no images; pass a batch or an iterable of batches")
        var = max(total_sq / count - (total / count) ** 2, 0.0)
        if var <= 0.0:
            raise ImageAutoencoderError("the posterior means have zero variance over the given images; "
                                        "measure on varied (training-set) images")
        return 1.0 / math.sqrt(var)

    # -- loss ----------------------------------------------------------------------------------
    def gan_active(self, step: int | None) -> bool:
        """Whether the GAN term is on at optimizer step ``step`` (``None``: the final loss)."""
        return self.discriminator is not None and (step is None or int(step) >= self.config.loss.gan_start)

    def autoencoder_parameters(self) -> Iterator[nn.Parameter]:
        """All parameters except the discriminator's (for the autoencoder's optimizer)."""
        skip = {id(p) for p in self.discriminator.parameters()} if self.discriminator is not None else set()
        return (p for p in self.parameters() if id(p) not in skip)

    def forward(self, batch: Mapping[str, object], step: int | None = 0) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of ``batch["image"]``: encode, sample (global torch RNG), decode, weighted terms.

        ``loss = l1 * L1 + ms_ssim * (1 - MS-SSIM) + kl * KL (+ gan * -D(recon).mean() once
        step >= gan_start)``. L1 is the mean absolute error in [-1, 1] space, MS-SSIM and PSNR
        are on [0, 1], KL is summed over latent elements and averaged over the batch (as SD).
        The GAN term reaches the decoder only: the discriminator's weights get no gradient.
        """
        x = self.prepare_images(_image_entry(batch))
        post = self._posterior(x)
        recon = self.decoder(post.sample())
        c = self.config.loss
        x01, r01 = (x + 1) / 2, (recon + 1) / 2
        l1 = (recon - x).abs().mean()
        sim = ms_ssim(r01, x01, c.ms_ssim_scales).mean()
        kl = post.kl().mean()
        loss = c.l1 * l1 + c.ms_ssim * (1.0 - sim) + c.kl * kl
        logs = {"l1": float(l1.detach()), "ms_ssim": float(sim.detach()), "kl": float(kl.detach()),
                "psnr": float(psnr(r01.detach(), x01).mean())}
        if self.gan_active(step):
            frozen = {k: v.detach() for k, v in self.discriminator.named_parameters()}
            g = hinge_g_loss(functional_call(self.discriminator, frozen, (recon,)))
            loss = loss + c.gan * g
            logs["gan_g"] = float(g.detach())
        logs["loss"] = float(loss.detach())
        return loss, logs

    def discriminator_loss(self, batch: Mapping[str, object], step: int | None = 0
                           ) -> tuple[torch.Tensor, dict[str, float]] | None:
        """Hinge loss of the discriminator on real vs reconstructed images; None when no GAN is
        configured or ``step < gan_start``. Reconstructs under no_grad (gradients reach only
        the discriminator)."""
        if not self.gan_active(step):
            return None
        x = self.prepare_images(_image_entry(batch))
        with torch.no_grad():
            recon = self.decoder(self._posterior(x).sample())
        real, fake = self.discriminator(x), self.discriminator(recon)
        loss = hinge_d_loss(real, fake)
        return loss, {"gan_d": float(loss.detach()), "d_real": float(real.detach().mean()),
                      "d_fake": float(fake.detach().mean())}


def _image_entry(batch: Mapping[str, object]):
    if not isinstance(batch, Mapping) or "image" not in batch:
        keys = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
        raise ImageAutoencoderError(f"batch needs an 'image' entry (uint8 (B, H, W, C) or float (B, C, H, W)); "
                                    f"got {keys}")
    return batch["image"]


def _batches(images, batch_size: int) -> Iterable:
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return (images[i: i + batch_size] for i in range(0, len(images), batch_size))
    return (_image_entry(b) if isinstance(b, Mapping) else b for b in images)
