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
    assert main(["synthesis", "data", "--out", str(tmp_path / "v"), "--envs", "1", "--rooms", "2", "--placements",
                 "2", "--poses", "4", "--clip-s", "0.05", "--seed", "1", "--set", "preroll_s=0.05", "--set",
                 "max_distance_m=4", "--no-progress"]) == 0
    assert main(["synthesis", "train", "--data", str(d), "--out", str(run), "--val-data", str(tmp_path / "v"),
                 "--val-examples", "2", *common]) == 0
    assert (run / "best.pt").exists() and "best_step" in (run / "summary.json").read_text()
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


def test_init_ears_starts_at_the_least_squares_fit_and_the_linear_path_has_no_decay(data, tmp_path,
                                                                                    one_torch_thread):
    from avworld.data.synthesis import load_split
    from avworld.models.synthesis import GatedConvRefiner
    from avworld.models.synthesis.calibrate import fit_ear_matrices
    from avworld.models.synthesis.tf import encode
    from avworld.train.synthesis import param_groups

    model_cfg = RefinerConfig(channels=4, blocks=3, dilation_cycle=3, emb_dim=8, domain="mag", mag_power=1.0,
                              direct=True, direct_ears=True)
    cfg = dataclasses.replace(CFG, steps=1, crop=0, lr=1e-12, init_ears=True)
    train_refiner(data, tmp_path / "calibrated", model_cfg, cfg, progress=False, tensorboard=False)
    ears = load(tmp_path / "calibrated" / "refiner.pt")["model"]["ears"]
    split = tensors(load_split(data, "train"))
    w = fit_ear_matrices(encode(split["x_sim"], 1.0), encode(split["x_rx"], 1.0))
    torch.testing.assert_close(ears, w - torch.eye(2), atol=1e-5, rtol=1e-4)
    d = w - torch.eye(2)
    ears_t = load(tmp_path / "calibrated" / "refiner.pt")["model"]["ears_t"]
    torch.testing.assert_close(ears_t, -(d @ d), atol=1e-5, rtol=1e-4)
    # the neural baseline ignores init_ears (no x_sim to fit): its matrices start at zero
    neural = dataclasses.replace(cfg, start="neural")
    train_refiner(data, tmp_path / "neural", model_cfg, neural, progress=False, tensorboard=False)
    assert load(tmp_path / "neural" / "refiner.pt")["model"]["ears"].abs().max() < 1e-6
    # init_ears on a model without ear matrices is a typed error
    with pytest.raises(SynthesisConfigError, match="direct_ears"):
        train_refiner(data, tmp_path / "plain", MODEL, dataclasses.replace(CFG, init_ears=True), progress=False,
                      tensorboard=False)
    model = GatedConvRefiner(model_cfg)
    groups = param_groups(model, 1e-4)
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    names = sorted(n for n, p in model.named_parameters() if id(p) in no_decay)
    assert names == ["direct.weight", "direct_t.weight", "ears", "ears_t"]
    assert groups[0]["weight_decay"] == 1e-4 and len(groups[0]["params"]) == len(list(model.parameters())) - 4


def test_validation_folder_keeps_the_best_weights_and_survives_resume(data, tmp_path_factory, tmp_path,
                                                                      one_torch_thread):
    from avworld.data.synthesis import SynthesisDataError
    from avworld.train.synthesis_select import ValidationSelector

    val = tmp_path_factory.mktemp("syn_val") / "data"
    generate(dataclasses.replace(TINY_DATA, seed=1), val, progress=False)
    model_cfg = RefinerConfig(channels=4, blocks=3, dilation_cycle=3, emb_dim=8, domain="mag", mag_power=1.0,
                              direct=True, direct_ears=True)
    cfg = dataclasses.replace(CFG, crop=0, lr=2e-2, init_ears=True)

    def run(out, **kw):
        return train_refiner(data, out, model_cfg, cfg, progress=False, tensorboard=False, val_data=val,
                             val_examples=3, **kw)

    def scores(out):
        rows = [r.split(",") for r in (out / "metrics.csv").read_text().splitlines()]
        col = rows[0].index("val/mag")
        return {int(r[0]): float(r[col]) for r in rows[1:] if len(r) > col and r[col]}

    s = run(tmp_path / "run")
    scored = scores(tmp_path / "run")
    assert sorted(scored) == [0, 3, 6]  # step 0 and every periodic checkpoint
    assert len(set(scored.values())) == 3  # training moves the validation score
    assert s["best_step"] == min(scored, key=scored.get) and s["best_val_mag"] == min(scored.values())
    best, head = load_refiner(tmp_path / "run" / "best.pt")
    assert head["step"] == s["best_step"] and head["val_examples"] == 3
    split = load_split_train(data)
    rate_len = (int(split["sample_rate_hz"]), split["x_tx"].shape[1])
    again = ValidationSelector(val, *rate_len, tmp_path / "fresh", head).score(best)
    assert again == pytest.approx(s["best_val_mag"], rel=1e-6)
    # a run stopped and resumed scores every checkpoint as the straight one and keeps the same best weights
    run(tmp_path / "resumed", stop_at_step=4)
    r = run(tmp_path / "resumed", resume=True)
    assert scores(tmp_path / "resumed") == scored
    assert (r["best_step"], r["best_val_mag"]) == (s["best_step"], s["best_val_mag"])
    a, b = load(tmp_path / "run" / "best.pt")["model"], load(tmp_path / "resumed" / "best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a validation folder with other clip lengths, the training folder itself, or no clips to score: refused
    other = tmp_path_factory.mktemp("syn_val_other") / "data"
    generate(dataclasses.replace(TINY_DATA, seed=1, clip_s=0.06), other, progress=False)
    with pytest.raises(SynthesisDataError, match="--clip-s"):
        ValidationSelector(other, *rate_len, tmp_path / "x", head)
    with pytest.raises(SynthesisDataError, match="test placements"):
        ValidationSelector(data, *rate_len, tmp_path / "x", head)
    with pytest.raises(SynthesisDataError, match=">= 1"):
        ValidationSelector(val, *rate_len, tmp_path / "x", head, examples=0)
    # resuming with other validation settings refuses the earlier best.pt
    with pytest.raises(SynthesisCheckpointError, match="val_examples"):
        ValidationSelector(val, *rate_len, tmp_path / "resumed", {k: head[k] for k in ("model_config", "train_config",
                           "data_config", "train_examples")}, examples=2, resume=True)


def load_split_train(data):
    from avworld.data.synthesis import load_split

    return load_split(data, "train")
