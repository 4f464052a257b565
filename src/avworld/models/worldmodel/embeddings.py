"""Conditioning embedders of the AV-CDiT: sinusoidal features + a two-layer MLP (as DiT/NWM).

* :class:`ScalarEmbedder` embeds one scalar per sample: the diffusion step ``t`` (0..999) and
  the temporal offset ``Δ`` (a signed frame count) each get one.
* :class:`ActionEmbedder` embeds the aggregated action ``(dx, dy, dyaw)`` (metres, metres,
  radians in the agent frame at t) with one :class:`ScalarEmbedder` per component and
  **concatenates** the three (widths ``W//3, W//3, W - 2W//3``), as NWM's ActionEmbedder.
  The components are multiplied by ``scale`` (10 by default) before the sinusoids so that
  the finest frequency turns 10 rad per metre / radian: 0.25 m steps and 15-30 degree turns
  then map to clearly different features (the raw values would differ by a fraction of a
  radian at the highest frequency).

The conditioning vector of the model is ``c = emb_t(t) + emb_Δ(Δ) + emb_a(action)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_features(x: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """``(N,)`` values -> ``(N, dim)`` features ``[cos(x f_i), sin(x f_i)]``, ``f_i = max_period^(-i/half)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=x.device) / half)
    args = x.reshape(-1).float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


class ScalarEmbedder(nn.Module):
    """One scalar per sample -> ``(B, width)``: sinusoidal features, Linear, SiLU, Linear."""

    def __init__(self, width: int, freq_dim: int = 256, scale: float = 1.0):
        super().__init__()
        self.freq_dim, self.scale = int(freq_dim), float(scale)
        self.mlp = nn.Sequential(nn.Linear(self.freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_features(x * self.scale, self.freq_dim))


class ActionEmbedder(nn.Module):
    """``(B, 3)`` ``(dx, dy, dyaw)`` -> ``(B, width)``: one embedder per component, concatenated."""

    def __init__(self, width: int, freq_dim: int = 256, scale: float = 10.0):
        super().__init__()
        part = width // 3
        self.parts = nn.ModuleList(ScalarEmbedder(w, freq_dim, scale) for w in (part, part, width - 2 * part))

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return torch.cat([emb(action[:, i]) for i, emb in enumerate(self.parts)], dim=-1)
