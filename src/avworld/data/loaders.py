"""PyTorch datasets over AVW shards: CDiT training samples and sequential rollouts.

The only module of :mod:`avworld.data` that imports torch. Both datasets read one
split (splits are by scene, so no scene of ``val``/``test`` is ever seen in ``train``)
and open HDF5 files lazily per worker process (see :class:`~avworld.data.reader.AVWDataset`),
so they work with any number of DataLoader workers.

:class:`CDiTDataset` item ``idx`` is a current frame ``t`` of a trajectory with ``t >=
context - 1``; it returns (G = ``num_goals``, k = ``context``)::

    context_rgb     (k, 3, H, W) uint8    frames t-k+1 .. t
    context_audio   (k, 2, n)    float32  their binaural audio (n = 2400 at 16 kHz, 0.15 s)
    context_pose    (k, 3)       float32  context poses in the frame of pose t
    goal_rgb        (G, 3, H, W) uint8    frames t + goal_offset
    goal_audio      (G, 2, n)    float32
    goal_action     (G, 3)       float32  aggregated action t -> goal: (dx, dy, dyaw) in frame t
    goal_offset     (G,)         int64    temporal offsets in frames, in [-window, window] minus 0
    goal_reward     (G,)         float32  sum of the per-step rewards from t to the goal (negated
                                          for a goal in the past): geodesic(t) - geodesic(goal)
                                          for the distance reward
    traj, t         ()           int64    trajectory index in the split, current frame

Goal offsets are drawn without replacement (with replacement if the trajectory has fewer
valid offsets than ``num_goals``) from ``numpy.random.default_rng([seed, epoch, idx])``,
so a sample is reproducible; call :meth:`CDiTDataset.set_epoch` to draw new goals.
With ``depth=True`` ``context_depth``/``goal_depth`` (k|G, 1, H, W) float32 are added.

Throughput: random access decompresses 8 images per sample. For training, use
``CDiTDataset(..., cache_trajectories=2 * block)`` with
``TrajectoryBlockSampler(dataset, block, streams=num_workers, batch_size=batch_size)``:
every worker then decodes each of its trajectories once per epoch and serves all their
samples from memory (see ``docs/datasets.md`` for measured rates).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from avworld.data.errors import DataError
from avworld.data.poses import relative_pose, step_deltas
from avworld.data.reader import AVWDataset


def _open(root, split: str | None, verify: str) -> AVWDataset:
    if isinstance(root, AVWDataset):
        if split is not None and root.split != split:
            raise DataError(f"the AVWDataset given holds split {root.split!r}, not {split!r}")
        return root
    return AVWDataset(Path(root), split=split, verify=verify)


def _chw(x: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class CDiTDataset(Dataset):
    """Context + goal samples for conditional diffusion world models (see module docstring)."""

    def __init__(self, root, split: str | None = "train", context: int = 4, window: int = 16, num_goals: int = 4,
                 depth: bool = False, seed: int = 0, verify: str = "size", cache_trajectories: int = 0) -> None:
        if context < 1 or window < 1 or num_goals < 1:
            raise DataError(f"context, window and num_goals must be >= 1, got {context}, {window}, {num_goals}")
        self.data = _open(root, split, verify)
        if depth and not self.data.config.trajectory.depth:
            raise DataError("depth=True but the dataset has no depth; build it with --depth")
        self.context, self.window, self.num_goals = int(context), int(window), int(num_goals)
        self.depth, self.seed, self.epoch = bool(depth), int(seed), 0
        self.cache_trajectories = int(cache_trajectories)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._meta: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._fields = ("rgb", "audio", "depth") if self.depth else ("rgb", "audio")
        lengths = np.array([t.length for t in self.data.trajectories], dtype=np.int64)
        self._valid = np.maximum(lengths - (self.context - 1), 0)
        self._cum = np.concatenate([[0], np.cumsum(self._valid)])
        self._lengths = lengths
        if self._cum[-1] == 0:
            raise DataError(f"no trajectory of split {split!r} has {self.context} frames; lower context")

    def __len__(self) -> int:
        return int(self._cum[-1])

    def set_epoch(self, epoch: int) -> None:
        """Goals are redrawn per epoch (the draw depends on ``(seed, epoch, idx)``)."""
        self.epoch = int(epoch)

    def locate(self, idx: int) -> tuple[int, int]:
        """(trajectory index, current frame) of item ``idx``."""
        if not 0 <= idx < len(self):
            raise IndexError(f"index {idx} out of range for {len(self)} samples")
        i = int(np.searchsorted(self._cum, idx, side="right") - 1)
        return i, int(self.context - 1 + idx - self._cum[i])

    def goal_offsets(self, idx: int, length: int, t: int) -> np.ndarray:
        """(G,) offsets of item ``idx`` (current frame ``t`` of a ``length``-frame trajectory)."""
        lo, hi = max(-self.window, -t), min(self.window, length - 1 - t)
        cands = np.arange(lo, hi + 1, dtype=np.int64)
        cands = cands[cands != 0]
        if len(cands) == 0:  # a one-frame trajectory: the goal is the current frame
            return np.zeros(self.num_goals, np.int64)
        rng = np.random.default_rng([self.seed, self.epoch, int(idx)])
        return rng.choice(cands, size=self.num_goals, replace=len(cands) < self.num_goals)

    def _layout(self, name: str, x: np.ndarray) -> np.ndarray:
        """File layout -> tensor layout: rgb (N, 3, H, W), depth (N, 1, H, W), audio as is."""
        if name == "rgb":
            return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return x[:, None] if name == "depth" else x

    def _frames(self, i: int, sel) -> dict[str, np.ndarray]:
        """Frames ``sel`` (slice or index array) of trajectory ``i`` in tensor layout (new arrays)."""
        if self.cache_trajectories > 0:
            arrays = self._cache.get(i)
            if arrays is None:  # decode the whole trajectory once
                arrays = {n: self._layout(n, self.data.frames(i, n, slice(None))) for n in self._fields}
                self._cache[i] = arrays
                if len(self._cache) > self.cache_trajectories:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(i)
            return {n: a[sel].copy() if isinstance(sel, slice) else a[sel] for n, a in arrays.items()}
        if isinstance(sel, slice):
            return {n: self._layout(n, self.data.frames(i, n, sel)) for n in self._fields}
        # single-frame reads: h5py's fancy indexing is far slower than one call per frame
        uniq, inverse = np.unique(sel, return_inverse=True)
        out = {}
        for n in self._fields:
            frames = np.stack([self.data.frames(i, n, slice(int(j), int(j) + 1))[0] for j in uniq])
            out[n] = self._layout(n, frames[inverse])
        return out

    def _poses_rewards(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Trajectory ``i``'s poses (float64) and cumulative rewards (0 first), kept per trajectory (small)."""
        got = self._meta.get(i)
        if got is None:
            small = self.data.small(i)
            got = self._meta[i] = (np.asarray(small["pose"], np.float64),
                                   np.concatenate([[0.0], np.cumsum(small["reward"], dtype=np.float64)]))
        return got

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        i, t = self.locate(int(idx))
        k = self.context
        offsets = self.goal_offsets(int(idx), int(self._lengths[i]), t)
        pose, cum = self._poses_rewards(i)
        goal_frames = t + offsets
        ctx = slice(t - k + 1, t + 1)
        c, g = self._frames(i, ctx), self._frames(i, goal_frames)
        # one relative_pose for context and goals (elementwise, so the same values as two calls)
        rel = relative_pose(pose[t], np.concatenate([pose[ctx], pose[goal_frames]])).astype(np.float32)
        out = {
            "context_rgb": torch.from_numpy(c["rgb"]),
            "context_audio": torch.from_numpy(c["audio"]),
            "context_pose": torch.from_numpy(rel[:k]),
            "goal_rgb": torch.from_numpy(g["rgb"]),
            "goal_audio": torch.from_numpy(g["audio"]),
            "goal_action": torch.from_numpy(rel[k:]),
            "goal_offset": torch.from_numpy(offsets),
            "goal_reward": torch.from_numpy((cum[goal_frames] - cum[t]).astype(np.float32)),
            "traj": torch.from_numpy(np.array(i, np.int64)), "t": torch.from_numpy(np.array(t, np.int64)),
        }
        if self.depth:
            out["context_depth"] = torch.from_numpy(c["depth"])
            out["goal_depth"] = torch.from_numpy(g["depth"])
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()  # workers start with an empty cache
        state["_meta"] = {}
        return state


def worker_init(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=worker_init)``: workers hand batches over by shared-memory file name.

    PyTorch's default (``file_descriptor``) makes the main process open one socket connection to a
    worker per tensor of every batch (10 per CDiT batch) to receive its file descriptor; the worker
    answers on a thread that competes for its GIL. With ``file_system`` set in the workers only, the
    main process maps each tensor by name (PyTorch's ``torch_shm_manager`` removes the files when the
    processes end): 5-11 % more samples/s with 2 workers on 2 cores (docs/datasets.md). The main
    process's own strategy is left as it is.
    """
    del worker_id
    torch.multiprocessing.set_sharing_strategy("file_system")


class TrajectoryBlockSampler(Sampler[int]):
    """Shuffles a :class:`CDiTDataset` in blocks of trajectories, for a trajectory cache.

    Each epoch permutes the trajectories and deals them to ``streams`` streams; a stream
    yields every sample of its next ``block`` trajectories in random order before moving
    on. The streams alternate in runs of ``batch_size`` indices, so with
    ``DataLoader(batch_size=batch_size, num_workers=streams)`` (whose workers take
    batches in turn) each worker reads only its own trajectories and its cache
    (``cache_trajectories >= 2 * block``) decodes every trajectory once per epoch. Any
    other use is still a valid random permutation, only with less cache reuse.
    """

    def __init__(self, dataset: CDiTDataset, block: int = 4, seed: int = 0, streams: int = 1,
                 batch_size: int = 1) -> None:
        if block < 1 or streams < 1 or batch_size < 1:
            raise DataError(f"block, streams and batch_size must be >= 1, got {block}, {streams}, {batch_size}")
        self.dataset, self.block, self.seed, self.epoch = dataset, int(block), int(seed), 0
        self.streams, self.batch_size = int(streams), int(batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        cum = self.dataset._cum
        order = rng.permutation(len(cum) - 1)
        streams = []
        for s in range(self.streams):
            mine = order[s::self.streams]
            blocks = [rng.permutation(np.concatenate([np.arange(cum[i], cum[i + 1]) for i in mine[b:b + self.block]]))
                      for b in range(0, len(mine), self.block)]
            streams.append(np.concatenate(blocks).tolist() if blocks else [])
        pos = [0] * self.streams
        while any(p < len(st) for p, st in zip(pos, streams)):
            for s, st in enumerate(streams):
                if pos[s] < len(st):
                    yield from st[pos[s]:pos[s] + self.batch_size]
                    pos[s] += self.batch_size


class SequenceDataset(Dataset):
    """Consecutive frames for rollouts: windows of ``length`` frames every ``stride`` frames
    (``length=None``: whole trajectories, batch them one at a time).

    Item: ``rgb`` (L, 3, H, W) uint8, ``audio`` (L, 2, n) float32, ``action`` (L,) int64,
    ``pose`` (L, 3) float32 world poses, ``step_action`` (L, 3) float32 relative pose of each
    step (row t: frame t+1 in the frame of t; last row of a trajectory 0), ``reward`` (L,),
    ``geodesic_m`` (L,), ``success`` (L,) bool, ``traj``, ``start``; ``depth`` (L, 1, H, W)
    with ``depth=True``.
    """

    def __init__(self, root, split: str | None = "test", length: int | None = 16, stride: int | None = None,
                 depth: bool = False, verify: str = "size") -> None:
        self.data = _open(root, split, verify)
        if length is not None and length < 1:
            raise DataError(f"length must be >= 1 (or None for whole trajectories), got {length}")
        if depth and not self.data.config.trajectory.depth:
            raise DataError("depth=True but the dataset has no depth; build it with --depth")
        self.length, self.depth = length, bool(depth)
        stride = stride or length or 1
        self.items: list[tuple[int, int, int]] = []
        for i, ref in enumerate(self.data.trajectories):
            if length is None:
                self.items.append((i, 0, ref.length))
            else:
                self.items.extend((i, s, length) for s in range(0, ref.length - length + 1, stride))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor]:
        i, s, n = self.items[idx]
        sl = slice(s, s + n)
        small = self.data.small(i)
        deltas = step_deltas(small["pose"])[sl]
        out = {
            "rgb": _chw(self.data.frames(i, "rgb", sl)),
            "audio": torch.from_numpy(self.data.frames(i, "audio", sl)),
            "action": torch.from_numpy(small["action"][sl].astype(np.int64)),
            "pose": torch.from_numpy(small["pose"][sl].astype(np.float32)),
            "step_action": torch.from_numpy(deltas.astype(np.float32)),
            "reward": torch.from_numpy(small["reward"][sl].astype(np.float32)),
            "geodesic_m": torch.from_numpy(small["geodesic_m"][sl].astype(np.float32)),
            "success": torch.from_numpy(small["success"][sl].astype(bool)),
            "traj": torch.tensor(i), "start": torch.tensor(s),
        }
        if self.depth:
            out["depth"] = torch.from_numpy(self.data.frames(i, "depth", sl)[:, None])
        return out
