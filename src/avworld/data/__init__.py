"""AVW audio-visual trajectory datasets: generation at scale, HDF5 shards, readers and loaders.

>>> from avworld.data import preset, build_dataset, AVWDataset
>>> manifest = build_dataset("runs/avw-tiny", preset("avw-tiny"), workers=2)   # resumable
>>> data = AVWDataset("runs/avw-tiny", split="train")
>>> traj = data.trajectory(0)          # rgb (T, H, W, 3), audio (T, 2, 2400), pose, action, reward ...

Modules: :mod:`~avworld.data.config` (recipes), :mod:`~avworld.data.plan` (scenes,
split, shards, seeds), :mod:`~avworld.data.patterns` (motion patterns),
:mod:`~avworld.data.rollout` (recording), :mod:`~avworld.data.storage` (HDF5 layout),
:mod:`~avworld.data.shards`, :mod:`~avworld.data.generate` and
:mod:`~avworld.data.distributed` (building), :mod:`~avworld.data.reader` and
:mod:`~avworld.data.replay` (reading), :mod:`~avworld.data.loaders` and
:mod:`~avworld.data.latent_loaders` (torch Datasets; the only modules that import torch),
:mod:`~avworld.data.inspection` (info / show), :mod:`~avworld.data.latents` (tokenizer latents
beside the shards), :mod:`~avworld.data.visibility` (line of sight per frame).
"""

from avworld.data.config import PATTERNS, PRESETS, DatasetConfig, TrajectoryConfig, preset
from avworld.data.errors import (
    CorruptShardError,
    DataError,
    DatasetConfigError,
    IncompleteDatasetError,
    ManifestError,
    TrajectorySamplingError,
)
from avworld.data.generate import BuildEvent, build_dataset
from avworld.data.reader import AVWDataset

__all__ = [
    "PATTERNS", "PRESETS", "DatasetConfig", "TrajectoryConfig", "preset", "build_dataset", "BuildEvent",
    "AVWDataset", "DataError", "DatasetConfigError", "TrajectorySamplingError", "ManifestError",
    "CorruptShardError", "IncompleteDatasetError",
]
