"""Training config and presets of the π-AVAS refiner (``avworld synthesis train --preset``).

* ``cpu``: the refiner on linear STFT magnitudes (``domain="mag"``, ``mag_power=1``), 64 channels, whole 0.5 s clips
  (63 frames), batch 4, the per-bin 2 x 2 ear-mixing linear path (``direct_ears``): about 0.12 s per step on a
  free core, 0.25 s on a busy one; the run of ``docs/results.md``.
* ``cpu-wave``: the refiner on the raw waveform, 16 channels, random 0.25 s crops (4,000 samples):
  0.5 s per step on a free core, 2-3 s on the shared machine.
* ``gpu``: the waveform refiner at 64 channels on whole clips, batch 4, 200 epochs' worth of steps.

Both keep the seed's optimiser: Adam (0.9, 0.999), lr 5e-4, weight decay 1e-4, sigma 1e-4.
``--set model.channels=32`` / ``--set train.steps=100`` override single fields.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import asdict, dataclass, replace

from avworld.models.synthesis.refiner import RefinerConfig
from avworld.train.tokenizer_config import parse_value


class SynthesisConfigError(ValueError):
    """An unknown preset or a bad ``--set`` override."""


@dataclass(frozen=True)
class SynthesisTrainConfig:
    steps: int = 4000
    batch_size: int = 4
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    sigma: float = 1e-4
    #: random crop length in samples (0 = the whole clip)
    crop: int = 0
    #: "refine" (start the flow at x_sim) or "neural" (the pure neural baseline: start at zeros)
    start: str = "refine"
    grad_clip: float = 1.0
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 250
    #: held-out examples whose flow loss is logged at every checkpoint
    val_examples: int = 16
    #: start the per-bin ear matrices (model.direct_ears) at the least-squares fit of x_sim -> x_rx on
    #: the training clips (models/synthesis/calibrate.py); ignored by start="neural" (no x_sim to fit)
    init_ears: bool = False

    def __post_init__(self) -> None:
        bad = []
        if self.steps < 1 or self.batch_size < 1:
            bad.append("steps and batch_size must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0 or self.sigma < 0:
            bad.append("lr > 0, weight_decay >= 0, sigma >= 0")
        if self.crop < 0:
            bad.append(f"crop must be >= 0 (0 = whole clips), got {self.crop}")
        if self.start not in ("refine", "neural"):
            bad.append(f"start must be 'refine' or 'neural', got {self.start!r}")
        if min(self.log_every, self.checkpoint_every) < 1 or self.val_examples < 0:
            bad.append("log_every, checkpoint_every >= 1, val_examples >= 0")
        if bad:
            raise SynthesisConfigError("; ".join(bad))


PRESETS = {
    # linear STFT magnitudes: 63 frames per 0.5 s clip, ~0.25 s per step on one busy core
    "cpu": (RefinerConfig(channels=64, emb_dim=128, domain="mag", mag_power=1.0, direct=True,
                          direct_ears=True),
            SynthesisTrainConfig(steps=6000, crop=0, init_ears=True)),
    # the raw waveform at CPU size: 8,000 samples per clip make it ~10x dearer per step
    "cpu-wave": (RefinerConfig(channels=16, emb_dim=64), SynthesisTrainConfig(steps=6000, crop=4000)),
    # 200 epochs of the default data's 384 training clips at batch 4
    "gpu": (RefinerConfig(channels=64, emb_dim=128), SynthesisTrainConfig(steps=19_200, crop=0,
                                                                          checkpoint_every=1000)),
}


def _set(config, path: list[str], value: str, full: str):
    names = [f.name for f in dataclasses.fields(config)]
    if path[0] not in names:
        close = difflib.get_close_matches(path[0], names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; fields: {', '.join(names)}"
        raise SynthesisConfigError(f"--set {full}: {type(config).__name__} has no field {path[0]!r}{hint}")
    try:
        return replace(config, **{path[0]: parse_value(value, getattr(config, path[0]))})
    except ValueError as exc:
        raise SynthesisConfigError(f"--set {full}: {exc}") from None


def resolve(preset: str, overrides: list[str] | None = None) -> tuple[RefinerConfig, SynthesisTrainConfig]:
    """The preset's (model, train) configs with ``group.field=value`` overrides applied."""
    if preset not in PRESETS:
        raise SynthesisConfigError(f"unknown preset {preset!r}; use one of {tuple(PRESETS)}")
    model, train = PRESETS[preset]
    for item in overrides or []:
        key, sep, value = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or group not in ("model", "train"):
            raise SynthesisConfigError(f"--set {item!r}: write model.FIELD=VALUE or train.FIELD=VALUE")
        if group == "model":
            model = _set(model, [name], value, item)
        else:
            train = _set(train, [name], value, item)
    return model, train


def config_dict(model: RefinerConfig, train: SynthesisTrainConfig) -> dict:
    return {"model": asdict(model), "train": asdict(train)}
