"""Checkpoints of the tokenizers (image autoencoder, binaural audio codec): one call to load.

A tokenizer checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    format "avworld-tokenizer", version 1
    kind "image" | "audio", model_config {...} (the module's config as plain values)
    model (state dict), ema (state dict of the exponential moving average, used by default)
    latent_scale (image: 1 / std of the training-set latents, as SD's 0.18215; audio: 1.0)
    data {root, preset/recipe, split, frames, dataset fingerprint}, train_config {...}
    and for resuming: optimizer(s), step, rng (per-rank RNG states), metrics

>>> from avworld.train.tokenizer_checkpoint import load_tokenizer
>>> ae = load_tokenizer("image")                      # the shipped image autoencoder
>>> codec = load_tokenizer("runs/tok-audio", kind="audio")   # a run directory or a .pt file

:func:`export_tokenizer` writes a small copy without the optimizer state (EMA weights, float16
when asked) for shipping; it loads like the original but cannot be resumed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from avworld.train.checkpoint import CheckpointError, CorruptCheckpointError, resolve_checkpoint, save_checkpoint

FORMAT, VERSION = "avworld-tokenizer", 1
KINDS = ("image", "audio")
#: Where the package's trained tokenizers live (package data, see pyproject.toml).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "tokenizers"
SHIPPED = {"image": "image_autoencoder.pt", "audio": "audio_codec.pt"}


class TokenizerKindError(CheckpointError):
    """A checkpoint of the other tokenizer kind (an audio codec where an image autoencoder is wanted)."""


def model_classes(kind: str):
    """(module class, config class) of tokenizer ``kind``."""
    if kind == "image":
        from avworld.models.tokenizers.image_autoencoder import ImageAutoencoder, ImageAutoencoderConfig

        return ImageAutoencoder, ImageAutoencoderConfig
    if kind == "audio":
        from avworld.models.tokenizers.audio_codec import AudioCodec, AudioCodecConfig

        return AudioCodec, AudioCodecConfig
    raise TokenizerKindError(f"unknown tokenizer kind {kind!r}; choose one of {KINDS}")


def config_to_dict(config) -> dict:
    return dataclasses.asdict(config)


def config_from_dict(cls, values: dict):
    """Rebuild a (nested) frozen config dataclass from :func:`config_to_dict` output; lists become
    tuples where the default is a tuple, nested dicts the default's dataclass."""
    default = cls()
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise CheckpointError(f"config fields {unknown} are not fields of {cls.__name__} in this avworld version")
    kwargs = {}
    for name, value in values.items():
        ref = getattr(default, name)
        if dataclasses.is_dataclass(ref) and isinstance(value, dict):
            value = config_from_dict(type(ref), value)
        elif isinstance(ref, tuple) and isinstance(value, (list, tuple)):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def build_tokenizer(kind: str, config, seed: int = 0):
    cls, _ = model_classes(kind)
    return cls(config, seed=seed)


def _resolve(path: str | Path) -> Path:
    return resolve_checkpoint(path, {k: SHIPPED_DIR / v for k, v in SHIPPED.items()}, CheckpointError, "tokenizer",
                              "pass a .pt file or a run directory written by `avworld tokenizer train` (train one "
                              "with `avworld tokenizer train image|audio --data DIR`), or 'image' / 'audio' for the "
                              "shipped ones")


def load_tokenizer_checkpoint(path: str | Path, kind: str | None = None,
                              map_location: str | torch.device = "cpu") -> tuple[dict, Path]:
    """(checkpoint dict, file) with format, version and kind checked; typed errors otherwise."""
    p = _resolve(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds on corrupt data
        raise CorruptCheckpointError(p) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        what = ("a navigation agent's checkpoint" if isinstance(ckpt, dict) and ckpt.get("format") == "avworld-nav-ppo"
                else "not an avworld tokenizer checkpoint")
        raise CheckpointError(f"{p}: {what} (format {FORMAT!r} expected); pass a checkpoint written by "
                              "`avworld tokenizer train`")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{p}: tokenizer checkpoint version {ckpt.get('version')}, this avworld reads {VERSION}")
    if kind is not None and ckpt.get("kind") != kind:
        raise TokenizerKindError(f"{p} holds an {ckpt.get('kind')} tokenizer, but an {kind} tokenizer is needed here; "
                                 f"pass the {kind} checkpoint (its run was `avworld tokenizer train {kind} ...`)")
    return ckpt, p


def load_tokenizer(path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu",
                   weights: str = "ema"):
    """The tokenizer module of ``path`` in eval mode (float32), with ``.checkpoint_info``.

    ``path``: a ``.pt`` file, a run directory (its newest checkpoint) or ``"image"`` / ``"audio"``
    for the shipped ones. ``weights``: ``"ema"`` (default; what the metrics report) or ``"raw"``.
    """
    if weights not in ("ema", "raw"):
        raise CheckpointError(f"weights must be 'ema' or 'raw', got {weights!r}")
    ckpt, p = load_tokenizer_checkpoint(path, kind, map_location)
    k = ckpt.get("kind")
    _, cfg_cls = model_classes(k)
    try:
        config = config_from_dict(cfg_cls, ckpt["model_config"])
        model = build_tokenizer(k, config)
        state = ckpt["ema"] if weights == "ema" and ckpt.get("ema") is not None else ckpt["model"]
        state = {n: (v.float() if v.is_floating_point() else v) for n, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [n for n in missing if not n.startswith("discriminator.")] + list(unexpected)
        if bad:
            raise RuntimeError(f"missing or unexpected weights: {bad[:6]}")
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{p}: the weights do not fit the recorded {k} architecture ({str(exc)[:300]})") from None
    if hasattr(model, "latent_scale") and "latent_scale" in ckpt:
        model.latent_scale.fill_(float(ckpt["latent_scale"]))
    model.checkpoint_info = {key: ckpt.get(key) for key in ("kind", "step", "latent_scale", "data", "train_config",
                                                            "metrics", "exported")}
    model.checkpoint_info["path"] = str(p)
    return model.to(map_location).eval()


def export_tokenizer(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """A shippable copy of ``src``: EMA weights only (float16 when ``half``), config, scale, data recipe."""
    ckpt, p = load_tokenizer_checkpoint(src)
    weights = ckpt.get("ema") or ckpt["model"]
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in weights.items()
               if not k.startswith("discriminator.")}
    keep = ("kind", "model_config", "latent_scale", "data", "train_config", "step", "metrics")
    state = {k: ckpt[k] for k in keep if k in ckpt}
    state.update(format=FORMAT, version=VERSION, model=weights, ema=None,
                 exported={"from": str(p), "half": bool(half), "step": ckpt.get("step")})
    return save_checkpoint(dst, state)  # atomic; our format/version keys override the nav header


def save_tokenizer_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a full (resumable) tokenizer checkpoint atomically."""
    if state.get("kind") not in KINDS:
        raise CheckpointError(f"tokenizer checkpoints need kind in {KINDS}, got {state.get('kind')!r}")
    return save_checkpoint(path, {**state, "format": FORMAT, "version": VERSION})
