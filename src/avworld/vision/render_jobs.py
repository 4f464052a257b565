"""Threaded scheduling of a frame's rays for :class:`~avworld.vision.render.Renderer`.

A frame (or a batch of poses) is cut into blocks of whole image rows. Each block is first
traced (Embree, which releases the GIL) and then shaded (numpy). ``Renderer.submit`` creates
a :class:`RenderJob` and hands :meth:`RenderJob.work` to ``threads - 1`` pool workers; the
caller joins in with :meth:`RenderJob.result`. Every block is computed by the same code
whichever thread takes it, so images are bit-identical for any thread count.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from avworld.vision.render import Renderer


def resolve_threads(threads: int | None) -> int:
    """``threads`` as a count. None (auto): 1 in a multiprocessing worker (vector envs and
    dataset workers already use one process per core), else 2 if this process may use at
    least 2 cores, else 1."""
    if threads is None:
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            return 1
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        return max(1, min(2, cores))
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or not 1 <= int(threads) <= 64:
        raise ValueError(f"threads must be an integer in 1..64 or None (auto), got {threads!r}")
    return int(threads)


#: rays per block below which a frame is not split further (numpy's per-call cost dominates)
MIN_BLOCK_RAYS = 2048


class RenderJob:
    """A frame (or batch) being rendered; see :meth:`Renderer.submit`.

    The rays are cut into blocks of whole image rows. Each block is first traced (Embree,
    which releases the GIL) and then shaded (numpy). Pool workers (:meth:`work`) trace
    blocks one after another and shade traced blocks when none is left to trace; the
    caller (:meth:`result`) shades what is traced, traces what nobody has claimed, waits
    for the rest and returns the images. A worker thus keeps tracing, GIL-free, while the
    caller does something else (the simulator's audio), and shading happens mostly in
    one thread at a time.
    """

    def __init__(self, renderer: Renderer, poses: np.ndarray, outputs: tuple[str, ...], batched: bool) -> None:
        self.renderer = renderer
        self.outputs = outputs
        self.batched = batched
        c = renderer.config
        h, w = c.height, c.width
        npix = h * w
        n = len(poses)
        self.n = n
        # directions in planar layout (3, N * P): contiguous components for shading;
        # Embree takes the (m, 3) strided view of a block
        if n == 1:
            self.planar = renderer._directions(float(poses[0, 2]))
        else:
            planar = np.empty((3, n, npix), np.float32)
            if n:
                renderer.camera.world_directions(poses[:, 2], out=planar.transpose(1, 2, 0),
                                                 pixel_order=renderer._order)
            self.planar = planar.reshape(3, n * npix)
        origins = np.empty((n, 3), np.float32)
        origins[:, :2] = poses[:, :2]
        origins[:, 2] = renderer.floor_z + c.height_m
        self.origins = origins
        self.flat = {k: _flat_buffer(k, n * npix) for k in outputs}
        self.blocks = [(i, lo, hi) for i in range(n) for lo, hi in renderer._pose_blocks()]
        self.n_blocks = len(self.blocks)
        self._next_trace = 0  # blocks below this index are claimed for tracing
        self._traced: list[tuple[int, dict]] = []  # traced, not yet claimed for shading
        self._finished = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None

    def _claim(self, shade_first: bool):
        """Next task under the lock: ("shade", k, hits), ("trace", k, None) or None (nothing to claim)."""
        if shade_first and self._traced:
            k, res = self._traced.pop(0)
            return "shade", k, res
        if self._next_trace < self.n_blocks:
            self._next_trace += 1
            return "trace", self._next_trace - 1, None
        if self._traced:
            k, res = self._traced.pop(0)
            return "shade", k, res
        return None

    def _run(self, task) -> None:
        kind, k, res = task
        r = self.renderer
        try:
            if kind == "trace":
                hits = r._trace_block(self, k)
                with self._cond:
                    self._traced.append((k, hits))
                    self._cond.notify_all()
                return
            r._shade_block(self, k, res)
        except BaseException as exc:  # surfaced by result()
            self._error = exc
        with self._cond:
            self._finished += 1
            self._cond.notify_all()

    def work(self) -> None:
        """Worker loop: trace unclaimed blocks, then shade traced ones, until none is left."""
        while True:
            with self._cond:
                task = self._claim(shade_first=False)
            if task is None:
                return
            self._run(task)

    def result(self) -> dict[str, np.ndarray]:
        """Shade traced blocks, trace unclaimed ones, wait for the rest, return the images."""
        while True:
            with self._cond:
                task = self._claim(shade_first=True)
                if task is None:
                    if self._finished >= self.n_blocks or self._error is not None:
                        break
                    self._cond.wait()  # a worker is tracing the last blocks
                    continue
            self._run(task)
        if self._error is not None:
            raise self._error
        c = self.renderer.config
        h, w = c.height, c.width
        shapes = {"rgb": (h, w, 3), "depth": (h, w, 1), "semantic": (h, w), "instance": (h, w)}
        out = {k: self.flat[k].reshape((self.n, *shapes[k])) for k in self.outputs}
        if not self.batched:
            out = {k: v[0] for k, v in out.items()}
        return out


def _flat_buffer(kind: str, size: int) -> np.ndarray:
    return {
        "rgb": lambda: np.empty((size, 3), np.uint8),
        "depth": lambda: np.empty(size, np.float32),
        "semantic": lambda: np.empty(size, np.int16),
        "instance": lambda: np.empty(size, np.int32),
    }[kind]()
