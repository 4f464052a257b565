"""Checkpoints of the world model (AV-CDiT): one call to load, typed errors on mismatches.

A world-model checkpoint is a ``torch.save`` dict readable with ``weights_only=True``::

    format "avworld-worldmodel", version 1
    model_config {AVCDiTConfig as plain values}, train_config {...}
    stages [the run's stage plan, e.g. 1, 2, 3], stage (the stage of model/optimizer), step
    latents {name, root, dataset, fields, identity}  the tokenizers' identity of the latents
    model (state dict), ema (state dict; the weights evaluation uses by default)
    optimizer, rng (per-rank RNG states), metrics     (resumable checkpoints only)

``out/checkpoints/ckpt_XXXXXXX.pt`` are the resumable ones; ``out/stages/stageN.pt`` the EMA
weights at the end of each stage (what "after stage 1 / 1+2 / 1+2+3" evaluates), without
optimizer state.

>>> from avworld.train.worldmodel_checkpoint import load_worldmodel
>>> model = load_worldmodel("runs/worldmodel-cpu-tiny")        # run dir (newest ckpt) or a .pt
>>> model.checkpoint_info["latents"]["identity"], model.diffusion   # GaussianDiffusion of the run
"""

from __future__ import annotations

from pathlib import Path

import torch

from avworld.train.checkpoint import CheckpointError, CorruptCheckpointError, resolve_checkpoint, save_checkpoint

FORMAT, VERSION = "avworld-worldmodel", 1


class WorldModelCheckpointError(CheckpointError):
    """Not a world-model checkpoint, or one that does not fit what it is used for."""


class TokenizerIdentityError(WorldModelCheckpointError):
    """Latents of other tokenizers (another identity) than the ones the checkpoint was trained on."""


class CheckpointLayoutError(WorldModelCheckpointError):
    """A checkpoint of another model config (layout, sizes) or another stage plan than this run's."""


def config_to_dict(config) -> dict:
    import dataclasses

    return dataclasses.asdict(config)


def model_config_from_dict(values: dict):
    import dataclasses

    from avworld.models.worldmodel import AVCDiTConfig

    names = {f.name for f in dataclasses.fields(AVCDiTConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise WorldModelCheckpointError(f"model config fields {unknown} are not fields of AVCDiTConfig in this "
                                        "avworld version")
    return AVCDiTConfig(**values)


#: Shipped world models (``load_worldmodel("cpu-tiny")``), exported with :func:`export_worldmodel`.
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "worldmodel"
SHIPPED = {"cpu-tiny": "cpu_tiny.pt"}


def _resolve(path: str | Path) -> Path:
    return resolve_checkpoint(path, {k: SHIPPED_DIR / v for k, v in SHIPPED.items()}, WorldModelCheckpointError,
                              "world-model", "pass a .pt file or a run directory written by `avworld worldmodel "
                              "train`, or 'cpu-tiny' for the shipped one")


def load_worldmodel_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict, Path]:
    """(checkpoint dict, file) with format and version checked."""
    p = _resolve(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds on corrupt data
        raise CorruptCheckpointError(p) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = ckpt.get("format") if isinstance(ckpt, dict) else None
        raise WorldModelCheckpointError(f"{p}: not an avworld world-model checkpoint (format {got!r}, {FORMAT!r} "
                                        "expected); pass a checkpoint written by `avworld worldmodel train`")
    if ckpt.get("version") != VERSION:
        raise WorldModelCheckpointError(f"{p}: world-model checkpoint version {ckpt.get('version')}, this avworld "
                                        f"reads {VERSION}")
    return ckpt, p


def check_identity(ckpt_latents: dict, latents: dict, where: str) -> None:
    """:class:`TokenizerIdentityError` unless the latents' tokenizer identity is the checkpoint's."""
    mine, theirs = latents.get("identity"), ckpt_latents.get("identity")
    if mine != theirs:
        keys = sorted(k for k in set(mine or {}) | set(theirs or {}) if (mine or {}).get(k) != (theirs or {}).get(k))
        raise TokenizerIdentityError(
            f"{where} was trained on latents {ckpt_latents.get('name')!r} of other tokenizers (identity differs in "
            f"{keys or 'its value'}) than latents {latents.get('name')!r}; encode the data with the checkpoint's "
            "tokenizers (`avworld tokenizer encode`) or start a new run with another --out")


def check_layout(ckpt: dict, model_cfg, stages, where: str) -> None:
    """:class:`CheckpointLayoutError` unless the checkpoint has this model config and stage plan."""
    # fields added since the checkpoint was written take their defaults (e.g. ``visual``)
    mine, theirs = config_to_dict(model_cfg), config_to_dict(model_config_from_dict(ckpt.get("model_config", {})))
    diffs = [f"{k}: checkpoint {theirs.get(k)!r}, here {mine.get(k)!r}" for k in sorted(set(mine) | set(theirs))
             if mine.get(k) != theirs.get(k)]
    if diffs:
        raise CheckpointLayoutError(f"{where} holds another AV-CDiT layout ({'; '.join(diffs)[:400]}); resume with "
                                    "the same --preset and --set model.* options, or use a new --out")
    if stages is not None and list(ckpt.get("stages", [])) != list(stages):
        raise CheckpointLayoutError(f"{where} was trained with stages {ckpt.get('stages')}, this run asks for "
                                    f"{list(stages)}; resume with --stages {','.join(map(str, ckpt.get('stages', [])))}"
                                    " or use a new --out")


def save_worldmodel_checkpoint(path: str | Path, state: dict) -> Path:
    """Write a world-model checkpoint atomically (format and version added)."""
    return save_checkpoint(path, {**state, "format": FORMAT, "version": VERSION})


def load_worldmodel(path: str | Path, map_location: str | torch.device = "cpu", weights: str = "ema"):
    """The :class:`~avworld.models.worldmodel.AVCDiT` of ``path`` in eval mode, float32.

    ``path``: a ``.pt`` file or a run directory (its newest checkpoint; ``RUN/stages/stageN.pt``
    for the end of a stage). ``weights``: ``"ema"`` (default) or ``"raw"``. The model carries
    ``.checkpoint_info`` (stage, stages, step, latents with the tokenizer identity, train
    config, metrics, path) and ``.diffusion`` (the run's :class:`GaussianDiffusion`).
    """
    from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, LayoutMismatchError

    if weights not in ("ema", "raw"):
        raise WorldModelCheckpointError(f"weights must be 'ema' or 'raw', got {weights!r}")
    ckpt, p = load_worldmodel_checkpoint(path, map_location)
    try:
        config = model_config_from_dict(ckpt["model_config"])
        model = AVCDiT(config)
        state = ckpt["ema"] if weights == "ema" and ckpt.get("ema") is not None else ckpt["model"]
        model.load_state_dict({n: (v.float() if v.is_floating_point() else v) for n, v in state.items()})
    except (KeyError, TypeError, LayoutMismatchError) as exc:
        raise CheckpointLayoutError(f"{p}: the weights do not fit the recorded AV-CDiT config ({str(exc)[:300]})") \
            from None
    train = ckpt.get("train_config") or {}
    model.diffusion = GaussianDiffusion(int(train.get("diffusion_steps", 1000)), train.get("schedule", "linear"),
                                        learn_sigma=config.learn_sigma)
    model.checkpoint_info = {k: ckpt.get(k) for k in ("stage", "stages", "step", "latents", "train_config",
                                                      "metrics", "exported")}
    model.checkpoint_info["path"] = str(p)
    model.stage = int(ckpt.get("stage") or 3)
    return model.to(map_location).eval()


def export_worldmodel(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """A shippable copy of ``src``: the EMA weights only (float16 when ``half``), the model and train
    configs, stage, step, metrics and the latents' tokenizer identity. It loads, generates and
    evaluates like the original (:func:`load_worldmodel`) but cannot be resumed."""
    ckpt, p = load_worldmodel_checkpoint(src)
    weights = ckpt.get("ema") or ckpt["model"]
    weights = {k: (v.half() if half and v.is_floating_point() else v) for k, v in weights.items()}
    keep = ("model_config", "train_config", "stages", "stage", "step", "latents", "metrics")
    state = {k: ckpt[k] for k in keep if k in ckpt}
    state.update(model=weights, ema=None, exported={"from": str(p), "half": bool(half), "step": ckpt.get("step")})
    return save_worldmodel_checkpoint(dst, state)
