"""PyTorch datasets over encoded latents (see :mod:`avworld.data.latents`).

:class:`LatentCDiTDataset` is :class:`~avworld.data.loaders.CDiTDataset` (same items, same
``locate`` and goal draw, same poses, actions, offsets, rewards; the same trajectory cache and
:class:`~avworld.data.loaders.TrajectoryBlockSampler`) reading
:class:`~avworld.data.latent_reader.AVWLatents` instead of pixels and audio. Item ``idx``::

    context_rgb_latent    (k, C, h, w) float32   image latents of frames t-k+1 .. t
    context_audio_latent  (k, D, F)    float32   their audio latents
    goal_rgb_latent       (G, C, h, w) float32   latents of frames t + goal_offset
    goal_audio_latent     (G, D, F)    float32
    context_pose, goal_action, goal_offset, goal_reward, traj, t   as CDiTDataset

(a modality the latents were encoded without is absent). Files are opened lazily per
worker process, so any number of DataLoader workers is safe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avworld.data.latent_reader import AVWLatents
from avworld.data.loaders import CDiTDataset


class LatentCDiTDataset(CDiTDataset):
    """CDiT context + goal samples of latents ``name`` of the dataset at ``root`` (see module docstring).

    ``root`` may also be an :class:`AVWLatents` of the split. ``cache_trajectories`` keeps
    whole trajectories' latents in memory, as for :class:`CDiTDataset` (they are small:
    ~3 kB per frame for rgb 4x8x8 + audio 64x20 latents).
    """

    def __init__(self, root, name: str | None = None, split: str | None = "train", context: int = 4,
                 window: int = 16, num_goals: int = 4, seed: int = 0, verify: str = "size",
                 cache_trajectories: int = 0) -> None:
        if not isinstance(root, AVWLatents):
            if name is None:
                raise TypeError("LatentCDiTDataset needs the latents' name (or an AVWLatents as root)")
            root = AVWLatents(Path(root), name, split=split, verify=verify)
        super().__init__(root, split=split, context=context, window=window, num_goals=num_goals, depth=False,
                         seed=seed, verify=verify, cache_trajectories=cache_trajectories)
        self._fields = self.data.fields

    def _layout(self, name: str, x: np.ndarray) -> np.ndarray:
        return x  # latents are stored in tensor layout, read as float32

    def _frames(self, i: int, sel) -> dict[str, np.ndarray]:
        out = super()._frames(i, sel)
        n = len(next(iter(out.values())))
        for name in ("rgb", "audio"):  # CDiTDataset.__getitem__ reads both; an absent one is dropped below
            out.setdefault(name, np.zeros((n, 0), np.float32))
        return out

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        out = super().__getitem__(idx)
        for part in ("context", "goal"):
            for name in ("rgb", "audio"):
                x = out.pop(f"{part}_{name}")
                if name in self._fields:
                    out[f"{part}_{name}_latent"] = x
        return out
