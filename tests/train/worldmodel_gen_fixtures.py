"""Shared pieces of the world-model generation/evaluation tests: a tiny AV-CDiT with non-zero outputs,
fake tokenizers matching the fake latents of :mod:`tests.data.latent_fakes`, a checkpoint on disk."""

from __future__ import annotations

import numpy as np
import torch

from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, avcdit_config
from avworld.train.worldmodel_checkpoint import config_to_dict, save_worldmodel_checkpoint
from avworld.train.worldmodel_data import latents_info
from avworld.train.worldmodel_generate import Tokenizers
from tests.data.latent_fakes import IDENTITY


def tiny_model(stage: int = 3, max_offset: int = 16, seed: int = 0) -> AVCDiT:
    """A width-32 AV-CDiT for 4x4x4 image and 3x20 audio latents, weights jittered so it predicts non-zero noise."""
    cfg = avcdit_config("cpu-tiny", width=32, depth=2, heads=2, freq_dim=32, rgb_channels=4, rgb_size=4,
                        audio_dim=3, audio_frames=20, max_offset=max_offset)
    model = AVCDiT(cfg, seed=seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    model.diffusion = GaussianDiffusion(1000, "linear", learn_sigma=cfg.learn_sigma)
    model.stage = stage
    model.checkpoint_info = {"latents": {"name": "lat", "identity": IDENTITY}}
    return model.eval()


def fake_tokenizers(identity=IDENTITY) -> Tokenizers:
    """Decoders inverting the fake encoders roughly: image latent channels 0-2 -> 8x8 blocks; audio block means."""

    def dec_img(z):
        x = z[:, :3].clamp(0, 1).numpy()
        x = np.repeat(np.repeat(x, 8, axis=2), 8, axis=3).transpose(0, 2, 3, 1)
        return (x * 255).round().astype(np.uint8)

    def dec_aud(z):
        return np.repeat(z[:, :2].numpy() / 100.0, 120, axis=2).astype(np.float32)

    return Tokenizers(identity, dec_img, dec_aud, 16_000)


def save_tiny_checkpoint(path, root, name: str = "lat", stage: int = 3):
    model = tiny_model(stage)
    state = {"model_config": config_to_dict(model.config), "train_config": {"diffusion_steps": 1000},
             "stages": [1, 2, 3], "stage": stage, "step": 0, "latents": latents_info(root, name),
             "model": model.state_dict(), "ema": None}
    return save_worldmodel_checkpoint(path, state)
