"""DD-PPO: two gloo processes on CPU keep identical parameters while learning from different data."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, world: int, port: int):
    """This process as rank ``rank`` of a ``world``-process gloo group; its DistInfo."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from avworld.train import distributed as ddp

    return ddp.setup("cpu")


def _leave(tr, out: str, rank: int, record: dict) -> None:
    """Save this rank's ``record`` (and its update count) for the test, close its envs, leave the group."""
    from avworld.train import distributed as ddp

    torch.save({"update": tr.update, **record}, os.path.join(out, f"rank{rank}.pt"))
    tr.envs.close()
    ddp.teardown()


def _run_ranks(worker, out) -> tuple[dict, dict]:
    """Run ``worker`` as ranks 0 and 1; their saved records."""
    mp.spawn(worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return tuple(torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from avworld.train.toy import make_toy_trainer

    info = _join(rank, world, port)
    assert dist.get_backend() == "gloo"
    # each rank initializes differently on purpose: the broadcast from rank 0 must align them
    tr = make_toy_trainer("agsa", total_steps=3 * 2 * 4 * 16, seed=rank, dist=info,
                          ppo={"num_envs": 4, "num_steps": 16, "num_minibatches": 2, "seed": 0},
                          out_dir=out)  # every rank names it, only rank 0 writes
    start = [p.detach().clone() for p in tr.policy.parameters()]
    result = tr.train()
    _leave(tr, out, rank, {"start": start, "end": [p.detach().clone() for p in tr.policy.parameters()],
                           "first_obs": tr.rollout.obs["spectrogram"].clone(), "step": tr.global_step,
                           "result": result})


def test_two_gloo_processes_stay_identical(tmp_path):
    r0, r1 = _run_ranks(_worker, tmp_path)
    assert r0["update"] == r1["update"] == 3
    assert r0["step"] == 3 * 2 * 4 * 16  # steps of both ranks
    for a, b in zip(r0["start"], r1["start"]):
        assert torch.equal(a, b)  # broadcast
    for a, b in zip(r0["end"], r1["end"]):
        assert torch.equal(a, b)  # averaged gradients, identical updates
    assert any(not torch.equal(a, b) for a, b in zip(r0["start"], r0["end"]))  # it did learn something
    assert not torch.equal(r0["first_obs"], r1["first_obs"])  # from different experience
    assert r0["result"]["rollout/omega_mean"] == r1["result"]["rollout/omega_mean"]  # stats reduced over ranks
    assert (tmp_path / "checkpoints").is_dir() and (tmp_path / "metrics.csv").is_file()


def _signal_worker(rank: int, world: int, port: int, out: str) -> None:
    """Only rank 1 gets SIGTERM (during update 2): both ranks must stop after update 2, one checkpoint."""
    import signal

    from avworld.train.toy import make_toy_trainer

    info = _join(rank, world, port)
    tr = make_toy_trainer("avnav", total_steps=6 * 2 * 4 * 16, seed=0, dist=info, out_dir=out,
                          ppo={"num_envs": 4, "num_steps": 16, "num_minibatches": 2, "checkpoint_every": 100})
    learn = tr.learn

    def learn_and_signal(*a, **k):
        if rank == 1 and tr.update == 1:
            signal.raise_signal(signal.SIGTERM)
        return learn(*a, **k)

    tr.learn = learn_and_signal
    _leave(tr, out, rank, {"result": tr.train()})


def test_a_signal_on_one_rank_stops_every_rank_after_the_same_update(tmp_path):
    r0, r1 = _run_ranks(_signal_worker, tmp_path)
    assert r0["update"] == r1["update"] == 2
    assert r0["result"]["stopped_by"] == r1["result"]["stopped_by"] == "signal"
    assert r0["result"]["stop_signal"] is None and r1["result"]["stop_signal"] == "SIGTERM"
    assert [p.name for p in (tmp_path / "checkpoints").glob("ckpt_*.pt")] == ["ckpt_0000002.pt"]
