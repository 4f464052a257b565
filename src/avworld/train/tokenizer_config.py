"""Training configs and presets of the tokenizers (``avworld tokenizer train image|audio --preset``).

A preset is a model config plus a :class:`TokenizerTrainConfig`; ``--set model.x=...`` and
``--set train.x=...`` override single fields (:func:`resolve`). Presets:

* ``cpu``: trains on two CPU cores in under an hour to the quality reported in
  ``docs/results.md`` (64x64 frames for the image autoencoder; the default 0.15 s clips for
  the codec), small widths.
* ``gpu``: the full-size recipe (128x128 frames, SD-VAE-like widths; the codec at
  SoundStream-like width), hours on one GPU (``docs/tokenizers.md``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, replace

from avworld.train.tokenizer_checkpoint import model_classes


class TokenizerConfigError(ValueError):
    """An unknown preset or a bad ``--set`` override."""


@dataclass(frozen=True)
class TokenizerTrainConfig:
    """Optimisation and bookkeeping of a tokenizer run."""

    steps: int = 4000
    batch_size: int = 32  # global: split over the processes of a torchrun job
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decay from lr to lr * min_lr_ratio after the warm-up
    warmup_steps: int = 100
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    disc_lr: float = 2e-4  # the discriminator's (image GAN term only)
    seed: int = 0
    split: str = "train"
    val_split: str = "val"
    val_frames: int = 256  # evaluated with the EMA weights at every checkpoint
    in_memory: bool = True
    workers: int = 0  # DataLoader workers when not in memory
    max_frames: int = 0  # 0 = every frame of the split
    log_every: int = 25
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    scale_frames: int = 2048  # training frames used to measure the latent scale (image)

    def __post_init__(self):
        bad = []
        if self.steps < 1 or self.batch_size < 1:
            bad.append("steps and batch_size must be >= 1")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            bad.append("lr must be > 0 and min_lr_ratio in [0, 1]")
        if not 0 <= self.ema_decay < 1:
            bad.append(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if min(self.warmup_steps, self.log_every - 1, self.checkpoint_every - 1, self.keep_checkpoints - 1,
               self.val_frames, self.workers, self.max_frames, self.scale_frames - 1) < 0:
            bad.append("warmup_steps, val_frames, workers, max_frames >= 0; log_every, checkpoint_every, "
                       "keep_checkpoints, scale_frames >= 1")
        if bad:
            raise TokenizerConfigError("; ".join(bad))


def _image_presets():
    from avworld.models.tokenizers.image_autoencoder import ImageAutoencoderConfig
    from avworld.models.tokenizers.image_losses import ImageLossConfig

    # 0.77 M parameters: ~0.4 s per step of 16 frames on one core (2.4 M at width 32 took 3 s per 32)
    cpu = ImageAutoencoderConfig(image_size=64, base_width=16, width_mult=(1, 2, 4, 4), res_blocks=1,
                                 mid_attention=False, loss=ImageLossConfig())
    gpu = ImageAutoencoderConfig(image_size=128, base_width=128, width_mult=(1, 2, 4, 4), res_blocks=2,
                                 mid_attention=True, loss=ImageLossConfig(gan=0.1, gan_start=50_000))
    return {
        "cpu": (cpu, TokenizerTrainConfig(steps=6000, batch_size=16, lr=1e-3, checkpoint_every=500)),
        "gpu": (gpu, TokenizerTrainConfig(steps=200_000, batch_size=32, lr=2e-4, warmup_steps=1000,
                                          checkpoint_every=5000, workers=8, in_memory=False, val_frames=1024,
                                          scale_frames=8192)),
    }


def _audio_presets():
    from avworld.models.tokenizers.audio_codec import AudioCodecConfig
    from avworld.models.tokenizers.audio_losses import BinauralLossConfig

    cpu = AudioCodecConfig(base_width=16, latent_dim=64, input_gain=0.0, loss=BinauralLossConfig(ramp_steps=1500))
    gpu = AudioCodecConfig(base_width=32, latent_dim=64, input_gain=0.0, loss=BinauralLossConfig(ramp_steps=20_000))
    return {
        "cpu": (cpu, TokenizerTrainConfig(steps=5000, batch_size=32, lr=1e-3, checkpoint_every=500)),
        "gpu": (gpu, TokenizerTrainConfig(steps=300_000, batch_size=64, lr=3e-4, warmup_steps=1000,
                                          checkpoint_every=5000, workers=8, in_memory=False, val_frames=1024)),
    }


PRESET_NAMES = ("cpu", "gpu")


def parse_value(value: str, ref):
    """``--set`` text -> the type of the field's current value ``ref`` (bool words, int, float, tuples as
    ``(1,2,4)``, else the string); ValueError on text that does not parse."""
    if isinstance(ref, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {value!r}")
    if isinstance(ref, int):
        return int(value)
    if isinstance(ref, float):
        return float(value)
    if isinstance(ref, tuple):
        items = [v for v in value.strip("()[] ").split(",") if v.strip()]
        kind = type(ref[0]) if ref else float
        return tuple(kind(v) for v in items)
    return value



def presets(kind: str) -> dict:
    model_classes(kind)  # typed error for an unknown kind
    return _image_presets() if kind == "image" else _audio_presets()


def _set(config, path: list[str], value: str, full: str):
    names = [f.name for f in dataclasses.fields(config)]
    if path[0] not in names:
        close = difflib.get_close_matches(path[0], names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(names)}"
        raise TokenizerConfigError(f"--set {full}: {type(config).__name__} has no field {path[0]!r}{hint}")
    ref = getattr(config, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(ref):
            raise TokenizerConfigError(f"--set {full}: {path[0]!r} is not a group of fields")
        return replace(config, **{path[0]: _set(ref, path[1:], value, full)})
    try:
        return replace(config, **{path[0]: parse_value(value, ref)})
    except ValueError as exc:  # the config's own typed errors are ValueErrors too
        raise TokenizerConfigError(f"--set {full}: {exc}") from None


def resolve(kind: str, preset: str, overrides: list[str] | tuple[str, ...] = ()):
    """(model config, train config) of ``preset`` with ``KEY=VALUE`` overrides (``model.*``, ``train.*``)."""
    table = presets(kind)
    if preset not in table:
        close = difflib.get_close_matches(preset, list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TokenizerConfigError(f"unknown preset {preset!r} for the {kind} tokenizer; choose one of "
                                   f"{sorted(table)}{hint}")
    model, train = table[preset]
    for item in overrides:
        if "=" not in item:
            raise TokenizerConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=2000")
        key, value = item.split("=", 1)
        group, *path = key.strip().split(".")
        if group not in ("model", "train") or not path:
            raise TokenizerConfigError(f"--set {item!r}: keys start with 'model.' or 'train.' (e.g. "
                                       "model.base_width=16, train.lr=5e-4)")
        if group == "model":
            model = _set(model, path, value.strip(), item)
        else:
            train = _set(train, path, value.strip(), item)
    return model, train
