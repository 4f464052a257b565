"""π-AVAS training: exact resume, the neural baseline's start, checkpoints, presets and the CLI."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.data.synthesis import SynthesisDataConfig, generate  # noqa: E402
from avworld.models.synthesis import RefinerConfig  # noqa: E402
from avworld.train.synthesis import (  # noqa: E402
    SynthesisCheckpointError,
    draw_batch,
    load,
    load_refiner,
    tensors,
    train_refiner,
)
from avworld.train.synthesis_config import PRESETS, SynthesisConfigError, SynthesisTrainConfig, resolve  # noqa: E402

TINY_DATA = SynthesisDataConfig(num_envs=1, num_rooms=2, placements=2, poses_per_placement=3, clip_s=0.05,
                                preroll_s=0.05, max_distance_m=4.0)
MODEL = RefinerConfig(channels=4, blocks=3, dilation_cycle=3, emb_dim=8)
CFG = SynthesisTrainConfig(steps=6, batch_size=2, crop=400, log_every=2, checkpoint_every=3, val_examples=2)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn_train") / "data"
    generate(TINY_DATA, out, progress=False)
    return out


def _run(data, out, cfg=CFG, **kw):
    return train_refiner(data, out, MODEL, cfg, progress=False, tensorboard=False, **kw)


def test_resume_is_exact(data, tmp_path, one_torch_thread):
    s = _run(data, tmp_path / "straight")
    assert s["done"] and s["step"] == 6
    part = _run(data, tmp_path / "resumed", stop_at_step=4)
    assert part["step"] == 4 and not part["done"]
    with pytest.raises(SynthesisCheckpointError, match="--resume"):
        _run(data, tmp_path / "resumed")
    _run(data, tmp_path / "resumed", resume=True)
    a, b = load(tmp_path / "straight" / "refiner.pt"), load(tmp_path / "resumed" / "refiner.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    with pytest.raises(SynthesisCheckpointError, match="differs"):
        _run(data, tmp_path / "resumed", cfg=dataclasses.replace(CFG, lr=1e-3, steps=8), resume=True)
    rows = (tmp_path / "resumed" / "metrics.csv").read_text().splitlines()
    steps = [r.split(",")[0] for r in rows[1:]]
    assert steps.count("2") == 1  # nothing logged twice after the resume


def test_batches_are_a_function_of_seed_and_step(data):
    from avworld.data.synthesis import load_split

    t = tensors(load_split(data, "train"))
    a, b = draw_batch(t, CFG, 5), draw_batch(t, CFG, 5)
    for k in a:
        assert torch.equal(a[k], b[k])
    assert not torch.equal(draw_batch(t, CFG, 6)["t"], a["t"])
    assert a["x_rx"].shape == (2, 2, 400)
    neural = draw_batch(t, dataclasses.replace(CFG, start="neural"), 5)
    assert not neural["x_sim"].any() and torch.equal(neural["x_rx"], a["x_rx"])


def test_checkpoint_loads_as_a_model(data, tmp_path, one_torch_thread):
    _run(data, tmp_path / "run")
    model, head = load_refiner(tmp_path / "run")
    assert head["step"] == 6 and head["train_config"]["start"] == "refine"
    assert model.config == MODEL
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SynthesisCheckpointError):
        load(tmp_path / "bad.pt")
    with pytest.raises(SynthesisCheckpointError):
        load(tmp_path / "empty")


def test_presets_keep_the_seeds_optimiser():
    for model, train in PRESETS.values():
        assert (train.lr, train.betas, train.weight_decay, train.batch_size, train.sigma) == (
            5e-4, (0.9, 0.999), 1e-4, 4, 1e-4)
        assert model.blocks == 30 and model.dilation_cycle == 10
    m, t = resolve("cpu", ["model.channels=8", "train.steps=10"])
    assert m.channels == 8 and t.steps == 10
    with pytest.raises(SynthesisConfigError, match="did you mean"):
        resolve("cpu", ["train.step=3"])
    with pytest.raises(SynthesisConfigError, match="unknown preset"):
        resolve("tpu")


def test_cli_data_train_eval(tmp_path, one_torch_thread, capsys):
    d, run, neural, rep = (tmp_path / n for n in ("d", "run", "neural", "rep"))
    common = ["--set", "model.channels=4", "--set", "model.blocks=2", "--set", "model.emb_dim=8",
              "--set", "train.steps=2", "--set", "train.crop=0", "--set", "train.val_examples=1",
              "--no-progress", "--no-tensorboard", "--threads", "1", "--device", "cpu"]
    assert main(["synthesis", "data", "--out", str(d), "--envs", "1", "--rooms", "2", "--placements", "2",
                 "--poses", "4", "--clip-s", "0.05", "--set", "preroll_s=0.05", "--set", "max_distance_m=4",
                 "--no-progress"]) == 0
    assert main(["synthesis", "train", "--data", str(d), "--out", str(run), *common]) == 0
    assert main(["synthesis", "train", "--data", str(d), "--out", str(neural), "--start", "neural", *common]) == 0
    assert main(["synthesis", "eval", "--data", str(d), "--refiner", str(run), "--neural", str(neural),
                 "--out", str(rep), "--players", "1", "--nfe-sweep", "--sweep-examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "refined" in out and "neural" in out
    html = (rep / "report.html").read_text()
    assert "<audio" in html and "nfe_sweep.png" in html
    assert (rep / "nfe_sweep.png").exists() and len(list((rep / "media").glob("*.wav"))) == 5
    assert main(["synthesis", "data", "--out", str(d), "--envs", "1", "--set", "sim.colour=red"]) == 2
    assert "SynthesisDataError" in capsys.readouterr().err
    np.testing.assert_equal(main(["synthesis", "train", "--data", str(d), "--out", str(tmp_path / "x"),
                                  "--set", "train.crop=-1"]), 2)
