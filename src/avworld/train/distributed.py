"""DD-PPO plumbing over ``torch.distributed``: process group from ``torchrun``, gradient averaging.

Every process (rank) runs its own vector env and rollouts; after each backward pass the
gradients are averaged over ranks (one flat all-reduce), so every rank applies the same
update and the parameters stay identical (rank 0's initial parameters are broadcast
first). Backends: ``nccl`` when the process has a CUDA device, ``gloo`` otherwise.
``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; without them, training runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


class DistributedError(ValueError):
    """The distributed setup is inconsistent (e.g. a CUDA device requested but missing)."""


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(requested: str | None = None, local_rank: int = 0) -> torch.device:
    """``requested`` (``cpu``, ``cuda``, ``cuda:1``) or CUDA (the local rank's GPU) when available, else CPU."""
    if requested:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise DistributedError(f"--device {requested}: CUDA is not available here; use --device cpu")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: str | None = None, backend: str | None = None) -> DistInfo:
    """Join the ``torchrun`` process group if there is one; returns this process's rank and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend or ("nccl" if dev.type == "cuda" else "gloo"), rank=rank, world_size=world)
    return DistInfo(rank, world, local, dev)


def teardown(wait_s: float = 120.0) -> None:
    """Leave the process group. All ranks meet first (at most ``wait_s``): a rank that destroyed its
    group while a peer was still finishing (saving a checkpoint) aborted the process under load
    ("terminate called without an active exception", SIGABRT) in the two-rank gloo test."""
    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":  # (NCCL has no barrier with a timeout: left as it was)
                from datetime import timedelta

                dist.monitored_barrier(timeout=timedelta(seconds=wait_s))
        except RuntimeError:  # a peer is gone (crashed or killed): leave anyway
            pass
        dist.destroy_process_group()


def broadcast_parameters(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if info.enabled:
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def average_gradients(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Average ``.grad`` over ranks with one all-reduce of the flattened gradients."""
    if not info.enabled:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # (P,)
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def all_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of a (small) tensor over ranks (a copy; unchanged when not distributed)."""
    out = values.clone()
    if info.enabled:
        dist.all_reduce(out)
    return out


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` as a list indexed by rank (``[obj]`` when not distributed)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
