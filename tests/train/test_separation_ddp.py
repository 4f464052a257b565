"""DD-PPO of the active phase: two gloo ranks with different episodes keep identical policy and memory."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402

from tests.train.test_ddp import _free_port, _join  # noqa: E402


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from avworld.train import distributed as ddp
    from avworld.train.separation_active import build_trainer
    from avworld.train.separation_config import resolve_active
    from tests.train.separation_fakes import fake_vector_env
    from tests.train.test_separation_active import SMALL, _passive

    info = _join(rank, world, port)
    groups = resolve_active("cpu", SMALL + [f"ppo.seed={rank}", "ppo.total_steps=48"])
    torch.manual_seed(100 + rank)  # different initial weights: the broadcast from rank 0 aligns them
    tr = build_trainer(fake_vector_env(2, num_steps=4), _passive(), groups, dist=info, tensorboard=False)
    start = [p.detach().clone() for p in tr.memory.parameters()]
    tr.train()
    torch.save({"memory_start": start, "policy": [p.detach().clone() for p in tr.policy.parameters()],
                "memory": [p.detach().clone() for p in tr.memory.parameters()],
                "first": tr.rollout.obs["sep_mono"][0].clone()}, os.path.join(out, f"rank{rank}.pt"))
    tr.envs.close()
    ddp.teardown()


def test_ranks_stay_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert not torch.equal(a["first"], b["first"])  # the ranks saw different data
    for key in ("policy", "memory"):
        for x, y in zip(a[key], b[key]):
            assert torch.equal(x, y), key
    assert any(not torch.equal(x, y) for x, y in zip(a["memory"], a["memory_start"]))  # the memory did learn
