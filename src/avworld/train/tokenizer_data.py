"""Frames and clips of an AVW dataset for tokenizer training, in a seeded, resumable order.

The tokenizers learn single frames (image autoencoder: one RGB frame; audio codec: one step's
0.15 s binaural clip), so a sample is one frame of one trajectory of a split. The order is a
function of ``(seed, step)`` only: step ``s`` of an epoch of ``n // global_batch`` batches takes
positions ``k * B .. (k + 1) * B`` of the permutation ``default_rng([seed, epoch])``; rank ``r``
of ``W`` takes every ``W``-th of them. A resumed run therefore sees exactly the batches it would
have seen, and the data order does not depend on worker timing.

``in_memory=True`` decodes the split once (RAM: ~12 kB per 64x64 frame, ~19 kB per float32
clip) and serves batches by indexing: the CPU preset's way (avw-small at 64x64 is ~85 MB of
RGB). ``in_memory=False`` reads frames on demand through a DataLoader with workers (the
checksummed single-frame reads of :class:`~avworld.data.AVWDataset`), for datasets that do not
fit in memory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avworld.data import AVWDataset
from avworld.data.errors import DataError

FIELDS = {"image": "rgb", "audio": "audio"}


class TokenizerDataError(DataError):
    """The dataset does not fit the tokenizer (image size, sample rate, clip length, empty split)."""


class FrameDataset(Dataset):
    """Every frame of ``split`` as one sample: ``{"image": uint8 (H, W, 3)}`` or ``{"audio": float32 (2, n)}``."""

    def __init__(self, root, split: str, kind: str, in_memory: bool = True, max_frames: int | None = None,
                 progress=None) -> None:
        if kind not in FIELDS:
            raise TokenizerDataError(f"unknown tokenizer kind {kind!r}; choose one of {sorted(FIELDS)}")
        self.kind, self.field, self.split = kind, FIELDS[kind], split
        self.data = AVWDataset(root, split=split)
        lengths = np.array([t.length for t in self.data.trajectories], dtype=np.int64)
        if lengths.sum() == 0:
            raise TokenizerDataError(f"split {split!r} of {root} has no frames; build the dataset with more "
                                     "scenes (`avworld data make --scenes N`) or pick another split")
        self._cum = np.concatenate([[0], np.cumsum(lengths)])
        n = int(self._cum[-1])
        self.num_frames = n if max_frames is None else min(n, int(max_frames))
        self.sample_rate_hz = self.data.sample_rate_hz
        self.image_size = int(self.data.config.trajectory.image_size)
        self._array: np.ndarray | None = None
        if in_memory:
            self._array = self._load_all(progress)

    def _load_all(self, progress) -> np.ndarray:
        parts, done = [], 0
        for i in range(len(self.data.trajectories)):
            if done >= self.num_frames:
                break
            x = self.data.frames(i, self.field, slice(None))
            parts.append(x[: self.num_frames - done])
            done += len(parts[-1])
            if progress is not None:
                progress(done, self.num_frames)
        out = np.concatenate(parts)
        return out if self.field == "rgb" else out.astype(np.float32, copy=False)

    def __len__(self) -> int:
        return self.num_frames

    def locate(self, idx: int) -> tuple[int, int]:
        i = int(np.searchsorted(self._cum, idx, side="right") - 1)
        return i, int(idx - self._cum[i])

    def get(self, indices) -> np.ndarray:
        """Frames at ``indices`` stacked: uint8 (N, H, W, 3) or float32 (N, 2, n)."""
        if self._array is not None:
            return self._array[np.asarray(indices, dtype=np.int64)]
        out = []
        for idx in indices:
            i, t = self.locate(int(idx))
            out.append(self.data.frames(i, self.field, slice(t, t + 1))[0])
        x = np.stack(out)
        return x if self.field == "rgb" else x.astype(np.float32, copy=False)

    def __getitem__(self, idx: int) -> np.ndarray:
        return self.get([idx])[0]


class ScheduleSampler(Sampler[list[int]]):
    """Batches of this rank for steps ``start_step .. total_steps - 1`` (see module docstring)."""

    def __init__(self, num_samples: int, global_batch: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if global_batch < world_size or global_batch % world_size:
            raise TokenizerDataError(f"the batch size {global_batch} must be a multiple of the number of "
                                     f"processes {world_size}")
        if num_samples < global_batch:
            raise TokenizerDataError(f"the split has {num_samples} frames, fewer than one batch of {global_batch}; "
                                     "lower --set train.batch_size or build a larger dataset")
        self.n, self.batch, self.seed = int(num_samples), int(global_batch), int(seed)
        self.start, self.total, self.rank, self.world = int(start_step), int(total_steps), int(rank), int(world_size)
        self.per_epoch = self.n // self.batch

    def indices(self, step: int) -> list[int]:
        epoch, k = divmod(int(step), self.per_epoch)
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return perm[k * self.batch:(k + 1) * self.batch][self.rank::self.world].tolist()

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.indices(step)


def _collate(kind: str):
    def collate(items):
        return {kind: torch.from_numpy(np.stack(items))}
    return collate


def batches(dataset: FrameDataset, sampler: ScheduleSampler, workers: int = 0):
    """Iterator of ``{"image"|"audio": tensor}`` batches in the sampler's order."""
    if dataset._array is not None or workers == 0:
        for idx in sampler:
            yield {dataset.kind: torch.from_numpy(dataset.get(idx))}
        return
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=_collate(dataset.kind),
                        persistent_workers=False)
    yield from loader


def check_fits(dataset: FrameDataset, config) -> None:
    """Typed error when the dataset's frames do not fit the tokenizer ``config``."""
    if dataset.kind == "image":
        if dataset.image_size != config.image_size:
            raise TokenizerDataError(
                f"the dataset's frames are {dataset.image_size}x{dataset.image_size} px, the image autoencoder is "
                f"built for {config.image_size}; pass --set model.image_size={dataset.image_size} or build the "
                f"dataset with --size {config.image_size}")
    else:
        clip = int(round(dataset.data.step_s * dataset.sample_rate_hz))
        if dataset.sample_rate_hz != config.sample_rate:
            raise TokenizerDataError(f"the dataset's audio is at {dataset.sample_rate_hz} Hz, the codec at "
                                     f"{config.sample_rate} Hz; pass --set model.sample_rate={dataset.sample_rate_hz}")
        if clip != config.clip_samples:
            raise TokenizerDataError(f"the dataset's clips have {clip} samples ({dataset.data.step_s} s steps), the "
                                     f"codec expects {config.clip_samples}; pass --set model.clip_samples={clip} "
                                     "(a multiple of the total stride)")
