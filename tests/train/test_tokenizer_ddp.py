"""Tokenizer training under torch.distributed (gloo, 2 CPU processes) = the same global batch in one process."""

from __future__ import annotations

import os
import socket

import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing as mp  # noqa: E402

SETS = ["model.base_width=4", "model.latent_dim=8", "model.loss.fft_sizes=(256,64)", "train.batch_size=4",
        "train.steps=3", "train.warmup_steps=1", "train.val_frames=4", "train.scale_frames=32",
        "train.checkpoint_every=2", "train.log_every=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from avworld.train.tokenizer import train_tokenizer
    from avworld.train.tokenizer_config import resolve

    model_cfg, cfg = resolve("audio", "cpu", SETS)
    train_tokenizer("audio", model_cfg, cfg, root, out, progress=False, tensorboard=False, device="cpu")


def test_two_gloo_ranks_train_like_one_process_with_the_same_global_batch(tok_data, tmp_path, one_torch_thread):
    from avworld.train.tokenizer import train_tokenizer
    from avworld.train.tokenizer_checkpoint import load_tokenizer_checkpoint
    from avworld.train.tokenizer_config import resolve

    mp.spawn(_rank, args=(2, _free_port(), str(tok_data), str(tmp_path / "ddp")), nprocs=2, join=True)
    model_cfg, cfg = resolve("audio", "cpu", SETS)
    train_tokenizer("audio", model_cfg, cfg, tok_data, tmp_path / "one", progress=False, tensorboard=False,
                    device="cpu")
    ddp, _ = load_tokenizer_checkpoint(tmp_path / "ddp", kind="audio")
    one, _ = load_tokenizer_checkpoint(tmp_path / "one", kind="audio")
    assert ddp["step"] == one["step"] == 3 and len(ddp["rng"]) == 2  # every rank's RNG state is kept
    moved = 0
    for name, w in one["model"].items():
        assert torch.allclose(ddp["model"][name], w, rtol=1e-4, atol=1e-6), name
        moved += int(not torch.equal(w, one["ema"][name]))
    assert moved > 0
