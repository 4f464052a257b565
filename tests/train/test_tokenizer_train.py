"""Tokenizer training: seeded order, resume = uninterrupted run, typed errors, config overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.train.checkpoint import CheckpointError, CorruptCheckpointError  # noqa: E402
from avworld.train.tokenizer import lr_at, train_tokenizer  # noqa: E402
from avworld.train.tokenizer_checkpoint import (  # noqa: E402
    TokenizerKindError,
    export_tokenizer,
    load_tokenizer,
    load_tokenizer_checkpoint,
)
from avworld.train.tokenizer_config import TokenizerConfigError, TokenizerTrainConfig, resolve  # noqa: E402
from avworld.train.tokenizer_data import FrameDataset, ScheduleSampler, TokenizerDataError  # noqa: E402

TINY_AUDIO = ["model.base_width=4", "model.latent_dim=8", "model.loss.fft_sizes=(256,64)",
              "train.batch_size=4", "train.log_every=1", "train.checkpoint_every=2", "train.val_frames=8",
              "train.warmup_steps=2", "train.scale_frames=64"]


@pytest.fixture
def data_root(tok_data):
    return tok_data


def _train(root, out, steps, extra=(), **kw):
    model_cfg, cfg = resolve("audio", "cpu", [*TINY_AUDIO, f"train.steps={steps}", *extra])
    return train_tokenizer("audio", model_cfg, cfg, root, out, progress=False, tensorboard=False, **kw)


def test_schedule_is_a_function_of_seed_and_step_and_ranks_split_the_batch():
    a = ScheduleSampler(50, 8, seed=3, start_step=0, total_steps=20)
    b = ScheduleSampler(50, 8, seed=3, start_step=7, total_steps=20)
    assert list(a)[7:] == list(b)
    r0, r1 = (ScheduleSampler(50, 8, 3, 0, 20, rank=r, world_size=2) for r in (0, 1))
    for step in range(20):
        assert sorted(r0.indices(step) + r1.indices(step)) == sorted(a.indices(step))
        assert not set(r0.indices(step)) & set(r1.indices(step))
    epoch0 = [i for s in range(6) for i in a.indices(s)]  # 50 // 8 = 6 batches per epoch, no repeats
    assert len(set(epoch0)) == 48
    assert a.indices(6) != a.indices(0)
    with pytest.raises(TokenizerDataError, match="multiple of the number of processes"):
        ScheduleSampler(50, 7, 0, 0, 1, rank=0, world_size=2)
    with pytest.raises(TokenizerDataError, match="fewer than one batch"):
        ScheduleSampler(5, 8, 0, 0, 1)


def test_lr_warms_up_then_decays_to_the_floor():
    cfg = TokenizerTrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0) and lr_at(100, cfg) == pytest.approx(0.1)
    assert lr_at(40, cfg) > lr_at(70, cfg)


def test_resume_gives_the_weights_of_an_uninterrupted_run(data_root, tmp_path, one_torch_thread):
    full = _train(data_root, tmp_path / "full", 6)
    assert full["stopped"] is None and full["step"] == 6
    part = _train(data_root, tmp_path / "part", 6, time_limit_s=0.0)  # stops after its first step
    assert part["stopped"] == "time limit" and part["step"] == 1
    done = _train(data_root, tmp_path / "part", 6, resume=True)
    assert done["step"] == 6
    a, _ = load_tokenizer_checkpoint(tmp_path / "full", kind="audio")
    b, _ = load_tokenizer_checkpoint(tmp_path / "part", kind="audio")
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    assert a["model_config"]["input_gain"] == b["model_config"]["input_gain"] > 1  # measured on the clips
    # the EMA differs from the raw weights once past the warm-up
    assert any(not torch.equal(a["model"][n], a["ema"][n]) for n in a["model"] if a["model"][n].is_floating_point())
    rows = (tmp_path / "part" / "metrics.csv").read_text().splitlines()
    steps = [int(r.split(",")[0]) for r in rows[1:] if r.split(",")[2]]
    assert steps == sorted(set(steps)) and steps[-1] == 6  # no step logged twice across the resume


def test_loaded_codec_reconstructs_with_the_recorded_gain_and_export_matches(data_root, tmp_path, one_torch_thread):
    _train(data_root, tmp_path / "run", 2)
    codec = load_tokenizer(tmp_path / "run", kind="audio")
    assert codec.config.input_gain > 1 and not codec.training
    x = torch.from_numpy(FrameDataset(data_root, "val", "audio").get([0, 1, 2]))
    y = codec.reconstruct(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    small = export_tokenizer(tmp_path / "run", tmp_path / "codec.pt", half=False)
    again = load_tokenizer(small)
    assert again.checkpoint_info["exported"]["half"] is False
    assert torch.equal(again.reconstruct(x), y)
    half = load_tokenizer(export_tokenizer(tmp_path / "run", tmp_path / "codec16.pt"))
    assert (half.reconstruct(x) - y).abs().max() < 0.05 * y.abs().max() + 1e-6


def test_typed_errors(data_root, tmp_path, one_torch_thread):
    _train(data_root, tmp_path / "run", 1)
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("ckpt_*.pt"))[-1]
    with pytest.raises(TokenizerKindError, match="audio tokenizer, but an image tokenizer"):
        load_tokenizer(ckpt, kind="image")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError, match="truncated"):
        load_tokenizer(cut)
    with pytest.raises(CheckpointError, match="another audio model config"):
        _train(data_root, tmp_path / "run", 2, ["model.latent_dim=4"], resume=True)
    with pytest.raises(TokenizerDataError, match="clips have"):
        _train(data_root, tmp_path / "x", 1, ["model.clip_samples=1200"])
    with pytest.raises(TokenizerConfigError, match="did you mean 'steps'"):
        resolve("audio", "cpu", ["train.stepz=3"])
    with pytest.raises(TokenizerConfigError, match="did you mean 'cpu'"):
        resolve("audio", "cpuu")
    with pytest.raises(TokenizerConfigError, match="model.latent_dim"):
        resolve("audio", "cpu", ["model.latent_dim=zero"])


def test_cli_train_prints_the_summary_and_refuses_to_overwrite(data_root, tmp_path, capsys):
    from avworld.cli import main

    out = tmp_path / "cli"
    args = ["tokenizer", "train", "audio", "--data", str(data_root), "--out", str(out), "--no-progress",
            "--no-tensorboard", "--threads", "1", *[a for s in TINY_AUDIO for a in ("--set", s)],
            "--set", "train.steps=2"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["step"] == 2 and summary["kind"] == "audio"
    assert json.loads((out / "config.json").read_text())["data"]["frames"]["train"] > 0
    assert main(args) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    assert np.isfinite(json.loads((out / "summary.json").read_text())["seconds"])
