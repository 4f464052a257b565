"""Shared pieces of the world-model training tests: tiny latents of the tok_data dataset, tiny configs."""

from __future__ import annotations

import shutil

from avworld.data.latents import encode_dataset
from tests.data.latent_fakes import IDENTITY, fake_audio_encoder, fake_image_encoder

#: A 2-block, width-32 AV-CDiT; 2 contexts x 2 goals per step; every step logged, checkpoints every 2.
TINY = ["model.width=32", "model.depth=2", "model.heads=2", "model.freq_dim=32", "train.batch_size=2",
        "train.num_goals=2", "train.window=4", "train.warmup_steps=1", "train.log_every=1", "train.checkpoint_every=2",
        "train.val_items=3", "train.ema_decay=0.9"]

OTHER_IDENTITY = {"image": {"sha256": "c" * 64, "scale": 1.0}, "audio": {"sha256": "b" * 64, "scale": 100.0}}


def make_latent_data(src, dst):
    """A copy of ``src`` with latents ``lat`` (fake encoders: image 4x4x4, audio 3x20), ``other`` (the same
    arrays, another tokenizer identity) and ``img`` (image latents only)."""
    shutil.copytree(src, dst)
    encode_dataset(dst, "lat", fake_image_encoder, fake_audio_encoder, IDENTITY, batch_size=16)
    encode_dataset(dst, "other", fake_image_encoder, fake_audio_encoder, OTHER_IDENTITY, batch_size=16)
    encode_dataset(dst, "img", fake_image_encoder, None, {"image": IDENTITY["image"]}, batch_size=16)
    return dst
