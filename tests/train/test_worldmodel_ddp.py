"""World-model training under torch.distributed (gloo, 2 CPU processes) = the same global batch in one process."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402

from .worldmodel_fixtures import TINY, make_latent_data  # noqa: E402

SETS = [*TINY, "train.steps_per_stage=(2,1,1)"]
STAGES = (1, 2, 3)  # crosses both stage boundaries


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(root, out, **kw):
    from avworld.train.worldmodel import train_worldmodel
    from avworld.train.worldmodel_config import resolve
    from avworld.train.worldmodel_data import fit_latents, latents_info

    model, train, explicit = resolve("cpu-tiny", SETS)
    model = fit_latents(model, latents_info(root, "lat"), explicit)
    return train_worldmodel(model, train, root, "lat", out, stages=STAGES, progress=False, tensorboard=False,
                            device="cpu", return_model=True, log=lambda *a: None, **kw)


def _rank(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    summary = _run(root, out)
    torch.save(summary["model"].state_dict(), os.path.join(out, f"rank{rank}.pt"))


def test_two_gloo_ranks_train_like_one_process_with_the_same_global_batch(tok_data, tmp_path, one_torch_thread):
    from avworld.train.worldmodel_checkpoint import load_worldmodel_checkpoint

    root = make_latent_data(tok_data, tmp_path / "data")
    (tmp_path / "ddp").mkdir()
    mp.spawn(_rank, args=(2, _free_port(), str(root), str(tmp_path / "ddp")), nprocs=2, join=True)
    one = _run(root, tmp_path / "one")["model"].state_dict()
    r0, r1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    ckpt, _ = load_worldmodel_checkpoint(tmp_path / "ddp")
    assert ckpt["step"] == 4 and ckpt["stage"] == 3 and len(ckpt["rng"]) == 2  # every rank's RNG state is kept
    for name, w in one.items():
        assert torch.equal(r0[name], r1[name]), name  # the ranks stay identical
        assert torch.allclose(r0[name], w, rtol=1e-4, atol=1e-6), name  # = one process, same global batch
        assert torch.equal(ckpt["model"][name], r0[name])
