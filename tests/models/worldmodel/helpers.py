"""Tiny AV-CDiT configs and random inputs shared by the world-model tests."""

from __future__ import annotations

import torch

from avworld.models.worldmodel import AVCDiTConfig

TINY = AVCDiTConfig(width=32, depth=2, heads=4, freq_dim=32, audio_dim=8, audio_frames=6, audio_patch=2)


def batch(cfg: AVCDiTConfig = TINY, b: int = 3, seed: int = 0, k: int | None = None):
    """(x dict, t, model kwargs) of random latents shaped for ``cfg``."""
    g = torch.Generator().manual_seed(seed)
    k = cfg.context_frames if k is None else k
    c, s, d, f = cfg.rgb_channels, cfg.rgb_size, cfg.audio_dim, cfg.audio_frames
    x = {"rgb": torch.randn(b, c, s, s, generator=g), "audio": torch.randn(b, d, f, generator=g),
         "reward": torch.randn(b, 1, generator=g)}
    kw = dict(context={"rgb": torch.randn(b, k, c, s, s, generator=g), "audio": torch.randn(b, k, d, f, generator=g)},
              offset=torch.randint(-cfg.max_offset, cfg.max_offset + 1, (b,), generator=g),
              action=torch.randn(b, 3, generator=g))
    return x, torch.randint(0, 1000, (b,), generator=g), kw


def randomize(model: torch.nn.Module, seed: int = 1, std: float = 0.05) -> torch.nn.Module:
    """Overwrite every parameter with noise (the zero-initialised adaLN and heads included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return model
