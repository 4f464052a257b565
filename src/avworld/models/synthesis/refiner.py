"""The π-AVAS velocity network u_t(psi, x_tx, p; theta) on the binaural waveform or its spectrogram.

A WaveNet/DiffWave-style stack of gated dilated convolutions over time: with ``domain="wave"`` over
the raw binaural waveform (2 channels, one step per sample), with ``domain="mag"`` over compressed
STFT magnitudes (:mod:`avworld.models.synthesis.tf`: 2 x 257 channels, one step per 128-sample
frame; the source audio as 257 channels). ``blocks`` (30) blocks, each tanh(a) * sigmoid(b) of a dilated
kernel-3 convolution (dilations cycling 2^0 .. 2^9) plus the block's projection of the source-audio
features, with a residual path back into the stack and a skip path to the output. The conditioning:
the source audio x_tx as a local (per-sample) signal added inside every gate, and one global vector
per example (the flow time t, sinusoidally embedded, plus an MLP of the pose features) added to every
block's input. The last layer starts at zero, so an untrained refiner leaves x_sim unchanged. With
``direct=True`` a per-channel linear path (a + b t) * psi (zero at start) is added to the velocity:
in the mag domain a gain per ear and frequency bin, which the stack's C-channel 1x1 bottleneck cannot
carry for 514 channels. With ``direct_ears=True`` as well, that path is a 2 x 2 matrix per frequency bin
over the two ears (each ear's velocity takes both ears' psi at that bin), so the refiner can correct
the cheap physics' interaural level per bin (e.g. pull a wrong, random low-frequency ILD toward the
ears' mean), which a gain per ear cannot.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from avworld.models.synthesis.pose import num_pose_features, pose_features
from avworld.models.synthesis.tf import BINS


class RefinerConfigError(ValueError):
    """A RefinerConfig field out of range."""


@dataclass(frozen=True)
class RefinerConfig:
    channels: int = 64
    blocks: int = 30
    #: dilations 2^0 .. 2^(dilation_cycle - 1), repeated
    dilation_cycle: int = 10
    kernel_size: int = 3
    emb_dim: int = 128
    pose_freqs: int = 6
    #: "wave" (raw binaural waveform) or "mag" (compressed STFT magnitudes, models/synthesis/tf.py)
    domain: str = "wave"
    #: mag domain: the exponent of the STFT magnitudes (1 linear, 0.3 compressed)
    mag_power: float = 0.3
    #: add a per-channel linear path (a + b t) * psi to the velocity, zero at start
    direct: bool = False
    #: make that linear path a 2 x 2 matrix over the ears per frequency bin (needs ``direct``)
    direct_ears: bool = False

    def __post_init__(self) -> None:
        if not 0.1 <= self.mag_power <= 2.0:
            raise RefinerConfigError(f"mag_power must lie in [0.1, 2], got {self.mag_power}")
        if self.domain not in ("wave", "mag"):
            raise RefinerConfigError(f"domain must be 'wave' or 'mag', got {self.domain!r}")
        if self.channels < 2 or self.blocks < 1 or self.dilation_cycle < 1 or self.kernel_size % 2 == 0:
            raise RefinerConfigError(f"bad RefinerConfig {self}: channels >= 2, blocks >= 1, dilation_cycle >= 1, "
                                     "odd kernel_size")
        if self.direct_ears and not self.direct:
            raise RefinerConfigError("direct_ears=True mixes the ears in the linear path: set direct=True as well")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def io_channels(self) -> tuple[int, int]:
        """(channels of psi and of the velocity, channels of the source-audio input)."""
        return (2, 1) if self.domain == "wave" else (2 * BINS, BINS)

    @property
    def receptive_field(self) -> int:
        d = [2 ** (i % self.dilation_cycle) for i in range(self.blocks)]
        return 1 + (self.kernel_size - 1) * sum(d)


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, dim) sinusoidal embedding of flow times t (B,) in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=t.dtype, device=t.device) / max(half - 1, 1))
    ang = 1000.0 * t[:, None] * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=1)


class GatedBlock(nn.Module):
    def __init__(self, c: int, emb: int, dilation: int, kernel: int) -> None:
        super().__init__()
        self.emb = nn.Linear(emb, c)
        self.conv = nn.Conv1d(c, 2 * c, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.cond = nn.Conv1d(c, 2 * c, 1)
        self.out = nn.Conv1d(c, 2 * c, 1)

    def forward(self, h, emb, cond):
        y = self.conv(h + self.emb(emb)[:, :, None]) + self.cond(cond)
        a, b = y.chunk(2, dim=1)
        res, skip = self.out(torch.tanh(a) * torch.sigmoid(b)).chunk(2, dim=1)
        return (h + res) / math.sqrt(2.0), skip


class GatedConvRefiner(nn.Module):
    """``forward(psi, x_tx, pose (B, 7) = listener (x, y, z, yaw) + source (x, y, z), t (B,))``.

    wave: psi (B, 2, T), x_tx (B, T); mag: psi (B, 514, frames), x_tx (B, 257, frames).
    """

    def __init__(self, config: RefinerConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or RefinerConfig()
        c, e = cfg.channels, cfg.emb_dim
        io, cond = cfg.io_channels
        self.inp = nn.Conv1d(io, c, 1)
        self.tx = nn.Sequential(nn.Conv1d(cond, c, 3, padding=1), nn.SiLU(), nn.Conv1d(c, c, 1))
        self.t_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.p_mlp = nn.Sequential(nn.Linear(num_pose_features(cfg.pose_freqs), e), nn.SiLU(), nn.Linear(e, e))
        self.blocks = nn.ModuleList(GatedBlock(c, e, 2 ** (i % cfg.dilation_cycle), cfg.kernel_size)
                                    for i in range(cfg.blocks))
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(c, c, 1), nn.ReLU(), nn.Conv1d(c, io, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)
        # per-channel linear path psi -> velocity (a gain per frequency bin and ear in the mag domain,
        # which the C-channel stack cannot carry through its 1x1 bottleneck), a function of t
        self.direct = nn.Conv1d(io, io, 1, groups=io, bias=False) if cfg.direct else None
        self.direct_t = nn.Conv1d(io, io, 1, groups=io, bias=False) if cfg.direct else None
        if cfg.direct:
            nn.init.zeros_(self.direct.weight)
            nn.init.zeros_(self.direct_t.weight)
        # direct_ears: (bins, 2, 2) matrices [ear out, ear in] per bin, constant and times t, zero at start
        # (the diagonal duplicates the per-channel gain above; both are kept so old checkpoints load)
        self.ears = nn.Parameter(torch.zeros(io // 2, 2, 2)) if cfg.direct_ears else None
        self.ears_t = nn.Parameter(torch.zeros(io // 2, 2, 2)) if cfg.direct_ears else None

    def forward(self, psi: torch.Tensor, x_tx: torch.Tensor, pose: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x_tx.ndim == 2:
            x_tx = x_tx[:, None]
        feats = pose_features(pose[:, :4], pose[:, 4:7], self.config.pose_freqs)
        emb = torch.nn.functional.silu(self.t_mlp(time_embedding(t, self.config.emb_dim)) + self.p_mlp(feats))
        h = self.inp(psi)
        cond = self.tx(x_tx)
        skip = torch.zeros_like(h)
        for blk in self.blocks:
            h, s = blk(h, emb, cond)
            skip = skip + s
        out = self.head(skip / math.sqrt(len(self.blocks)))
        if self.direct is not None:
            out = out + self.direct(psi) + t[:, None, None].to(psi.dtype) * self.direct_t(psi)
        if self.ears is not None:
            b, ch, frames = psi.shape
            ears = psi.reshape(b, 2, ch // 2, frames)  # channels are [left bins, right bins]
            w = self.ears[None] + t[:, None, None, None].to(psi.dtype) * self.ears_t[None]  # (B, bins, 2, 2)
            out = out + torch.einsum("bfoi,bift->boft", w, ears).reshape(b, ch, frames)
        return out
