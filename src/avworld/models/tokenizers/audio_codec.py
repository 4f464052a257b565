"""Binaural audio codec: a SEANet-style convolutional encoder/decoder with continuous latents.

Layout (widths for the defaults ``base_width=32``, ``strides=(8, 5, 3)``)::

    encoder: conv7(2 -> 32)
             [residual units d=1,3,9 @ C ; ELU ; conv(2s, stride s)(C -> 2C)]  for s in 8, 5, 3
             ELU ; conv7(256 -> latent_dim)                       -> (B, latent_dim, T / 120)
    decoder: conv7(latent_dim -> 256)
             [ELU ; convT(2s, stride s)(C -> C/2) ; residual units d=1,3,9]  for s in 3, 5, 8
             ELU ; conv7(32 -> 2)                                  -> (B, 2, T)

A residual unit is ``x + conv1(ELU(conv3_dilated(ELU(x))))`` with a hidden width of C/2, as
in SEANet (SoundStream/EnCodec), without their LSTM and weight norm. The output is linear (no
tanh). 2,400 samples at 16 kHz (0.15 s) give 20 latent frames with the default strides.

**Causality**: non-causal by default (``causal=False``): every convolution is padded on both
sides (zeros), so a latent frame sees a few milliseconds of the future. The world model
encodes whole 0.15 s clips at once, so nothing needs streaming. ``causal=True`` pads on the
left only and trims transposed convolutions on the right (streamable, same shapes).

The model owns its loss: ``codec(batch) -> (loss, logs)`` with ``batch = {"audio": (B, 2, T),
"sample_rate": int}`` (see :mod:`.audio_losses`). Bad input raises an :class:`AudioCodecError`
subclass naming the problem and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from avworld.models.tokenizers.audio_losses import BinauralCodecLoss, BinauralLossConfig


class AudioCodecError(ValueError):
    """The audio codec got a configuration or input it cannot handle."""


class SampleRateMismatchError(AudioCodecError):
    """Audio at a sample rate other than the codec's."""


class ClipLengthError(AudioCodecError):
    """A clip length other than the configured one (or not a multiple of the total stride)."""


class ChannelCountError(AudioCodecError):
    """Audio without exactly two (left, right) channels."""


@dataclass(frozen=True)
class AudioCodecConfig:
    """Shape of :class:`AudioCodec` and of the clips it accepts."""

    sample_rate: int = 16_000
    clip_samples: int = 2_400
    channels: int = 2
    base_width: int = 32
    strides: tuple[int, ...] = (8, 5, 3)
    latent_dim: int = 64
    dilations: tuple[int, ...] = (1, 3, 9)
    kernel_size: int = 7
    causal: bool = False
    #: Fixed gain applied before encoding (and undone after decoding): the network and its loss
    #: see ``audio * input_gain``. AVW clips have an RMS of ~0.003 (5e-5 to 0.02), far from the
    #: unit scale the init assumes; ``avworld tokenizer train`` sets it to 1 / std of the training
    #: clips when a preset gives 0 (0 means "measure"; a codec built with 0 uses 1).
    input_gain: float = 1.0
    loss: BinauralLossConfig = field(default_factory=BinauralLossConfig)

    def __post_init__(self):
        if self.channels != 2:
            raise ChannelCountError(f"the codec is binaural: channels must be 2 (left, right), got {self.channels}")
        if not self.strides or any(int(s) < 1 for s in self.strides):
            raise AudioCodecError(f"strides must be positive integers, got {self.strides}")
        if not self.input_gain >= 0:
            raise AudioCodecError(f"input_gain must be >= 0 (0 = measure on the training set), got {self.input_gain}")
        if min(self.base_width, self.latent_dim, self.sample_rate, self.kernel_size) < 1:
            raise AudioCodecError("base_width, latent_dim, sample_rate and kernel_size must be >= 1")
        if self.clip_samples < 1 or self.clip_samples % self.hop:
            raise ClipLengthError(
                f"clip_samples={self.clip_samples} is not a positive multiple of the total stride "
                f"{self.hop} (product of strides {self.strides}); pick e.g. "
                f"{max(1, round(self.clip_samples / self.hop)) * self.hop} or change the strides")

    @property
    def hop(self) -> int:
        """Samples per latent frame (the product of the strides)."""
        return math.prod(int(s) for s in self.strides)

    @property
    def latent_frames(self) -> int:
        return self.clip_samples // self.hop

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate


class _Conv(nn.Module):
    """Conv1d that keeps ``length / stride`` frames, padded both sides or (causal) on the left."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1, causal: bool = False):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride, dilation=dilation)
        total = dilation * (kernel - 1) + 1 - stride
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pad))


class _ConvT(nn.Module):
    """ConvTranspose1d (kernel 2s, stride s) trimmed to exactly ``length * stride`` frames."""

    def __init__(self, cin: int, cout: int, stride: int, causal: bool = False):
        super().__init__()
        self.conv = nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride)
        self.trim = (0, stride) if causal else (stride // 2, stride - stride // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., self.trim[0]: y.shape[-1] - self.trim[1]]


class _ResidualUnit(nn.Module):
    def __init__(self, width: int, dilation: int, causal: bool):
        super().__init__()
        hidden = max(1, width // 2)
        self.block = nn.Sequential(nn.ELU(), _Conv(width, hidden, 3, dilation=dilation, causal=causal),
                                   nn.ELU(), _Conv(hidden, width, 1, causal=causal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _residual_stack(width: int, cfg: AudioCodecConfig) -> list[nn.Module]:
    return [_ResidualUnit(width, int(d), cfg.causal) for d in cfg.dilations]


def _init_weights(module: nn.Module) -> None:
    """Variance-preserving init (Kaiming normal, fan-in, linear gain; zero bias).

    PyTorch's default conv init shrinks the signal at every layer; through ~25 layers the
    untrained decoder output is then all bias and barely depends on the input.
    """
    if isinstance(module, nn.Conv1d):
        nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
    elif isinstance(module, nn.ConvTranspose1d):  # fan-in of a transposed conv: cin * kernel / stride
        fan_in = module.in_channels * module.kernel_size[0] / module.stride[0]
        nn.init.normal_(module.weight, std=fan_in ** -0.5)
    if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)) and module.bias is not None:
        nn.init.zeros_(module.bias)


class AudioCodec(nn.Module):
    """SEANet-style binaural codec; weights are initialised from ``seed`` (global RNG untouched)."""

    def __init__(self, config: AudioCodecConfig = AudioCodecConfig(), seed: int = 0):
        super().__init__()
        self.config = cfg = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            widths = [cfg.base_width * 2 ** i for i in range(len(cfg.strides) + 1)]
            enc: list[nn.Module] = [_Conv(2, widths[0], cfg.kernel_size, causal=cfg.causal)]
            for i, s in enumerate(cfg.strides):
                enc += _residual_stack(widths[i], cfg)
                enc += [nn.ELU(), _Conv(widths[i], widths[i + 1], 2 * int(s), stride=int(s), causal=cfg.causal)]
            enc += [nn.ELU(), _Conv(widths[-1], cfg.latent_dim, cfg.kernel_size, causal=cfg.causal)]
            dec: list[nn.Module] = [_Conv(cfg.latent_dim, widths[-1], cfg.kernel_size, causal=cfg.causal)]
            for i in reversed(range(len(cfg.strides))):
                dec += [nn.ELU(), _ConvT(widths[i + 1], widths[i], int(cfg.strides[i]), causal=cfg.causal)]
                dec += _residual_stack(widths[i], cfg)
            dec += [nn.ELU(), _Conv(widths[0], 2, cfg.kernel_size, causal=cfg.causal)]
            self.encoder = nn.Sequential(*enc)
            self.decoder = nn.Sequential(*dec)
            self.apply(_init_weights)
        self.loss_fn = BinauralCodecLoss(cfg.loss)
        # 1 / std of the training latents (set by the trainer; saved in the state dict), so that the
        # world model diffuses unit-variance latents, as with the image autoencoder's scale
        self.register_buffer("latent_scale", torch.ones(()))

    def check_audio(self, audio: torch.Tensor, sample_rate: int | None = None) -> None:
        """Raise a typed :class:`AudioCodecError` unless ``audio`` is a (B, 2, clip_samples) float clip."""
        cfg = self.config
        if sample_rate is not None and int(sample_rate) != cfg.sample_rate:
            raise SampleRateMismatchError(
                f"audio at {int(sample_rate)} Hz, but the codec is built for {cfg.sample_rate} Hz; "
                f"resample the clips to {cfg.sample_rate} Hz or build a codec with sample_rate={int(sample_rate)}")
        if not isinstance(audio, torch.Tensor) or audio.dim() != 3 or not audio.is_floating_point():
            shape = tuple(audio.shape) if isinstance(audio, torch.Tensor) else type(audio).__name__
            raise AudioCodecError(f"audio must be a float tensor of shape (batch, 2, samples), got {shape}")
        if audio.shape[1] != 2:
            raise ChannelCountError(f"audio must have 2 channels (left, right), got {audio.shape[1]} "
                                    f"(shape {tuple(audio.shape)}); stack the ears on dim 1")
        if audio.shape[-1] != cfg.clip_samples:
            extra = ("" if audio.shape[-1] % cfg.hop == 0
                     else f", and it is not a multiple of the total stride {cfg.hop}")
            raise ClipLengthError(
                f"clip has {audio.shape[-1]} samples, the codec expects {cfg.clip_samples} "
                f"({cfg.clip_seconds:.3f} s at {cfg.sample_rate} Hz){extra}; cut or pad the clips")

    def check_latent(self, z: torch.Tensor) -> None:
        cfg = self.config
        if z.dim() != 3 or z.shape[1] != cfg.latent_dim or z.shape[2] != cfg.latent_frames:
            raise AudioCodecError(f"latents must be (batch, {cfg.latent_dim}, {cfg.latent_frames}), "
                                  f"got {tuple(z.shape)}")

    def encode(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """(B, 2, clip_samples) -> continuous latents (B, latent_dim, clip_samples / hop)."""
        self.check_audio(audio, sample_rate)
        return self.encoder(audio * self.gain)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim, frames) -> (B, 2, clip_samples) left/right waveform."""
        self.check_latent(z)
        return self.decoder(z) / self.gain

    @property
    def gain(self) -> float:
        return float(self.config.input_gain) or 1.0

    def encode_latents(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Latents scaled by ``latent_scale`` (what datasets store and the world model diffuses)."""
        return self.encode(audio, sample_rate) * self.latent_scale

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode_latents`."""
        return self.decode(z / self.latent_scale)

    def set_latent_scale(self, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise AudioCodecError(f"latent_scale must be a finite positive number, got {value}")
        self.latent_scale.fill_(float(value))

    @torch.no_grad()
    def measure_latent_scale(self, clips, batch_size: int = 128) -> float:
        """``1 / std`` of the latents of ``clips`` (one (N, 2, T) batch or an iterable of batches)."""
        batches = clips.split(batch_size) if isinstance(clips, torch.Tensor) else clips
        total, total_sq, count = 0.0, 0.0, 0
        for b in batches:
            z = self.encode(torch.as_tensor(b, dtype=torch.float32)).double()
            total, total_sq, count = total + float(z.sum()), total_sq + float(z.square().sum()), count + z.numel()
        var = total_sq / max(count, 1) - (total / max(count, 1)) ** 2
        if count == 0 or not var > 0:
            raise AudioCodecError("measure_latent_scale needs varied clips (got none, or all-equal latents)")
        return 1.0 / math.sqrt(var)

    def reconstruct(self, audio: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        return self.decode(self.encode(audio, sample_rate))

    def forward(self, batch: Mapping[str, torch.Tensor | int],
                step: int | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction loss of ``batch["audio"]`` (optional ``batch["sample_rate"]`` is checked) with
        the loss weights of optimizer step ``step`` (see ``BinauralLossConfig.ramp_steps``)."""
        if "audio" not in batch:
            raise AudioCodecError(f"batch needs an 'audio' entry (B, 2, samples); got keys {sorted(batch)}")
        audio = batch["audio"]
        self.check_audio(audio, batch.get("sample_rate"))
        x = audio * self.gain  # the loss is computed at the network's scale (see input_gain)
        return self.loss_fn(self.decoder(self.encoder(x)), x, step)
