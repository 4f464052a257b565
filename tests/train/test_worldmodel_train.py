"""World-model training: stages, freezing, resume = uninterrupted run (across a stage boundary), typed errors, CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.models.worldmodel import AVCDiT, ContextLengthError, parameter_group, stage_spec  # noqa: E402
from avworld.train.tokenizer_data import ScheduleSampler  # noqa: E402
from avworld.train.worldmodel import lr_at, stage_at, stage_plan, train_worldmodel  # noqa: E402
from avworld.train.worldmodel_checkpoint import (  # noqa: E402
    CheckpointLayoutError,
    TokenizerIdentityError,
    load_worldmodel,
    load_worldmodel_checkpoint,
)
from avworld.train.worldmodel_config import (  # noqa: E402
    WorldModelConfigError,
    WorldModelTrainConfig,
    parse_stages,
    resolve,
)
from avworld.train.worldmodel_data import Items, batches, examples, fit_latents, latents_info  # noqa: E402

from .worldmodel_fixtures import TINY, make_latent_data  # noqa: E402


@pytest.fixture(scope="module")
def root(tok_data, tmp_path_factory):
    return make_latent_data(tok_data, tmp_path_factory.mktemp("wm") / "data")


def _cfgs(root, extra=(), latents="lat"):
    model, train, explicit = resolve("cpu-tiny", [*TINY, *extra])
    return fit_latents(model, latents_info(root, latents), explicit), train


def _train(root, out, stages=(1, 2), extra=("train.steps_per_stage=(3,3,3)",), latents="lat", **kw):
    model, train = _cfgs(root, extra, latents)
    return train_worldmodel(model, train, root, latents, out, stages=stages, progress=False, tensorboard=False,
                            log=lambda *a: None, **kw)


@pytest.fixture(scope="module")
def full(root, tmp_path_factory):
    """An uninterrupted two-stage run (1, 2) of 3 + 3 steps."""
    out = tmp_path_factory.mktemp("wm-full")
    torch.set_num_threads(1)
    summary = _train(root, out)
    return out, summary


def test_stage_plan_lr_and_stage_parsing():
    cfg = WorldModelTrainConfig(steps_per_stage=(5, 7, 9), lr=1.0, warmup_steps=2, min_lr_ratio=0.1)
    plan = stage_plan((1, 3), cfg)
    assert plan == [(1, 0, 5), (3, 5, 14)]
    assert stage_at(plan, 4)[0] == 1 and stage_at(plan, 5)[0] == 3 and stage_at(plan, 13)[0] == 3
    assert lr_at(0, 5, cfg) == pytest.approx(0.5) and lr_at(1, 5, cfg) == pytest.approx(1.0)
    assert lr_at(5, 5, cfg) == pytest.approx(0.1)
    assert parse_stages("1,2,3") == (1, 2, 3) and parse_stages(3) == (3,)
    for bad in ("2,1", "1,1", "4", "x", ""):
        with pytest.raises(WorldModelConfigError, match="increasing stages|stage numbers"):
            parse_stages(bad)


def test_resume_across_a_stage_boundary_gives_the_weights_of_an_uninterrupted_run(root, full, tmp_path,
                                                                                  one_torch_thread):
    out_full, summary = full
    assert summary["stopped"] is None and summary["step"] == 6 and summary["stage"] == 2
    part = tmp_path / "part"
    s = _train(root, part, time_limit_s=0.0)  # stops after its first step
    assert s["stopped"] == "time limit" and s["step"] == 1
    steps = [1]
    while s["stopped"]:  # one step per resume: resumes at steps 1..5, at the boundary (3) in stage 1's state
        s = _train(root, part, resume=True, time_limit_s=0.0)
        steps.append(s["step"])
    assert steps == [1, 2, 3, 4, 5, 6]
    a, _ = load_worldmodel_checkpoint(out_full)
    b, _ = load_worldmodel_checkpoint(part)
    assert a["stage"] == b["stage"] == 2 and a["step"] == b["step"] == 6
    for key in ("model", "ema"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    for n in (1, 2):  # the stage files too
        x, _ = load_worldmodel_checkpoint(out_full / "stages" / f"stage{n}.pt")
        y, _ = load_worldmodel_checkpoint(part / "stages" / f"stage{n}.pt")
        assert all(torch.equal(x["model"][k], y["model"][k]) for k in x["model"])
    rows = list(csv.DictReader(open(part / "metrics.csv")))
    train_steps = [int(r["step"]) for r in rows if r.get("train/loss")]
    assert train_steps == [1, 2, 3, 4, 5, 6]  # no step logged twice across the resumes


def test_each_stage_trains_exactly_its_parameters(root, full):
    out, _ = full
    model_cfg, train_cfg = _cfgs(root, ("train.steps_per_stage=(3,3,3)",))
    init = AVCDiT(model_cfg, seed=train_cfg.seed).state_dict()
    s1 = load_worldmodel(out / "stages" / "stage1.pt").state_dict()
    s2 = load_worldmodel(out / "stages" / "stage2.pt").state_dict()
    assert load_worldmodel(out / "stages" / "stage2.pt").checkpoint_info["stage"] == 2
    changed1 = {n for n in init if not torch.equal(init[n], s1[n])}
    changed2 = {n for n in init if not torch.equal(s1[n], s2[n])}
    groups1 = {parameter_group(n) for n in changed1}
    groups2 = {parameter_group(n) for n in changed2}
    assert groups1 == {"shared", "visual"}  # stage 1: attention, conditioning, visual expert/adaptor/head
    assert groups2 == {"audio", "reward"}  # stage 2: only audio expert/adaptor/head and the reward token
    assert any(".ffn_visual." in n for n in changed1) and not any(".ffn_visual." in n for n in changed2)
    assert any(".ffn_audio." in n for n in changed2) and not any(".ffn_audio." in n for n in changed1)
    # the stage-2 run started from stage 1's EMA weights: the final raw weights keep them where frozen
    last, _ = load_worldmodel_checkpoint(out)
    for n, v in last["model"].items():
        if parameter_group(n) not in ("audio", "reward"):
            assert torch.equal(v, s1[n]), n


def test_init_starts_a_stage_from_another_runs_stage_weights(root, full, tmp_path, one_torch_thread):
    out, _ = full
    s = _train(root, tmp_path / "s2", stages=(2,), init=out / "stages" / "stage1.pt")
    assert s["stopped"] is None and s["step"] == 3
    s1 = load_worldmodel(out / "stages" / "stage1.pt").state_dict()
    s2 = load_worldmodel(tmp_path / "s2" / "stages" / "stage2.pt")
    assert s2.checkpoint_info["stages"] == [2] and s2.checkpoint_info["latents"]["name"] == "lat"
    changed = {parameter_group(n) for n, v in s2.state_dict().items() if not torch.equal(v, s1[n])}
    assert changed == {"audio", "reward"}


def test_a_tiny_model_reduces_its_training_loss(root, tmp_path, one_torch_thread):
    extra = ("train.steps_per_stage=(60,1,1)", "train.lr=3e-3", "train.warmup_steps=5", "train.batch_size=4",
             "train.log_every=10", "train.checkpoint_every=1000")
    s = _train(root, tmp_path / "fit", stages=(1,), extra=extra)
    rows = [r for r in csv.DictReader(open(tmp_path / "fit" / "metrics.csv")) if r.get("train/loss")]
    losses = [float(r["train/loss"]) for r in rows]
    assert len(losses) == 6 and losses[-1] < 0.5 * losses[0], losses
    assert s["metrics"]["val/loss"] < 1.0  # the untrained model predicts zero noise: mse ~ 1


def test_typed_errors(root, full, tmp_path):
    out, _ = full
    with pytest.raises(TokenizerIdentityError, match="other tokenizers"):
        _train(root, out, latents="other", resume=True)
    with pytest.raises(CheckpointLayoutError, match="experts: checkpoint True, here False"):
        _train(root, out, extra=("train.steps_per_stage=(3,3,3)", "model.experts=false"), resume=True)
    with pytest.raises(CheckpointLayoutError, match="stages"):
        _train(root, out, stages=(1, 2, 3), resume=True)
    with pytest.raises(TokenizerIdentityError):
        _train(root, tmp_path / "init", stages=(3,), latents="other", init=out / "stages" / "stage1.pt")
    with pytest.raises(WorldModelConfigError, match="need \\['audio'\\]"):
        _train(root, tmp_path / "img", latents="img")
    with pytest.raises(WorldModelConfigError, match="did you mean 'steps_per_stage'"):
        resolve("cpu-tiny", ["train.steps_per_stag=3"])
    with pytest.raises(WorldModelConfigError, match="did you mean 'cpu-tiny'"):
        resolve("cpu-tiy")
    with pytest.raises(WorldModelConfigError, match="exceeds model.max_offset"):
        resolve("cpu-tiny", ["train.window=20"])
    model, _, explicit = resolve("cpu-tiny", ["model.rgb_size=8"])
    with pytest.raises(WorldModelConfigError, match="model.rgb_size=8 \\(latents: 4\\)"):
        fit_latents(model, latents_info(root, "lat"), explicit)
    # a context shorter than the model's k
    items = Items(root, "lat", "train", context=2, window=4, num_goals=2, seed=0)
    batch = {k: v[None] for k, v in items[(0, 0)].items()}
    with pytest.raises(ContextLengthError, match="k=4"):
        examples(batch, stage_spec(3), 4, "cpu")


def test_examples_flatten_goals_with_the_context_repeated(root):
    items = Items(root, "lat", "train", context=4, window=4, num_goals=3, seed=0)
    batch = {k: torch.stack([items[(0, i)][k] for i in (0, 5)]) for k in items[(0, 0)]}
    x0, kw = examples(batch, stage_spec(3), 4, "cpu")
    assert x0["rgb"].shape == (6, 4, 4, 4) and x0["audio"].shape == (6, 3, 20) and x0["reward"].shape == (6, 1)
    assert torch.equal(kw["context"]["rgb"][3], batch["context_rgb_latent"][1])
    assert torch.equal(x0["rgb"][4], batch["goal_rgb_latent"][1, 1])
    assert torch.equal(kw["offset"], batch["goal_offset"].flatten())
    assert set(examples(batch, stage_spec(1), 4, "cpu")[1]["context"]) == {"rgb"}


def test_batches_follow_the_seeded_schedule_with_or_without_workers(root):
    items = Items(root, "lat", "train", context=4, window=4, num_goals=2, seed=0)
    sampler = ScheduleSampler(len(items), 3, seed=1, start_step=2, total_steps=2 + 2 * (len(items) // 3))
    plain, loaded = list(batches(items, sampler, 0)), list(batches(items, sampler, 2))
    assert len(plain) == len(loaded) == len(sampler)
    for a, b in zip(plain, loaded):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    idx = sampler.indices(2)[0]  # goals are redrawn per epoch (this item's draws differ; seeded, so stable)
    assert not torch.equal(items[(0, idx)]["goal_offset"], items[(1, idx)]["goal_offset"])


def test_cli_trains_prints_one_line_and_writes_config_and_metrics(root, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "cli"
    sets = [a for s in [*TINY, "train.steps_per_stage=(2,2,2)"] for a in ("--set", s)]
    argv = ["worldmodel", "train", "--data", str(root), "--latents", "lat", "--stages", "1,3", "--out", str(out),
            "--no-progress", "--no-tensorboard", *sets]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["stages"] == [1, 3] and summary["step"] == 4 and np.isfinite(summary["val_loss"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["stages"] == [1, 3] and cfg["model"]["rgb_size"] == 4 and cfg["latents"]["identity"]["image"]
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert "train/loss" in header and "val/loss" in header
    assert main(argv) == 2  # checkpoints already there, no --resume
    assert "WorldModelConfigError" in capsys.readouterr().err
    assert main(["worldmodel", "train", "--data", str(root), "--latents", "lat", "--set", "train.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_audio_only_model_trains_with_stage_3_only_and_predicts_audio_and_reward(root, tmp_path, one_torch_thread):
    """The audio half of the modality-factorized baseline (model.visual=false)."""
    from avworld.train.worldmodel_checkpoint import load_worldmodel
    from avworld.train.worldmodel_generate import eval_items, generate, item_batch

    extra = ("train.steps_per_stage=(3,3,3)", "model.visual=false")
    with pytest.raises(WorldModelConfigError, match="--stages 3 only"):
        _train(root, tmp_path / "a", stages=(1, 2, 3), extra=extra)
    summary = _train(root, tmp_path / "b", stages=(3,), extra=extra)
    assert summary["step"] == 3
    model = load_worldmodel(tmp_path / "b")
    assert model.config.visual is False
    from avworld.data.latent_reader import AVWLatents

    lat = AVWLatents(root, "lat", split="test")
    batch = item_batch(lat, None, eval_items(lat, 4, 2, max_items=2), 4, 2)
    pred = generate(model, batch, "fixed", [2], steps=2)
    assert set(pred[2]) == {"audio", "reward"}                  # no image prediction at all


def test_export_keeps_the_ema_weights_in_float16_and_generates_alike(root, full, tmp_path, capsys, one_torch_thread):
    from avworld.train.worldmodel_checkpoint import load_worldmodel, load_worldmodel_checkpoint

    out, _ = full
    assert main(["worldmodel", "export", "--checkpoint", str(out), "--out", str(tmp_path / "wm.pt")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ckpt, _ = load_worldmodel_checkpoint(tmp_path / "wm.pt")
    assert ckpt["ema"] is None and "optimizer" not in ckpt and ckpt["exported"]["half"] is True
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    full_size = sum(p.stat().st_size for p in (out / "checkpoints").glob("ckpt_*.pt")) / len(
        list((out / "checkpoints").glob("ckpt_*.pt")))
    assert line["bytes"] < 0.4 * full_size
    a, b = load_worldmodel(out), load_worldmodel(tmp_path / "wm.pt")
    assert b.stage == a.stage and b.checkpoint_info["latents"] == a.checkpoint_info["latents"]
    for (n, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.allclose(x, y, atol=2e-3, rtol=2e-3), n       # float16 rounding of the EMA weights


def test_stage2_unfreeze_attention_trains_the_shared_group_too(root, full, tmp_path, one_torch_thread):
    """The seed's divergence experiment (stage 2 with unfrozen attention) as an option."""
    out, _ = full
    s1 = load_worldmodel(out / "stages" / "stage1.pt").state_dict()
    _train(root, tmp_path / "u", stages=(2,), extra=("train.steps_per_stage=(3,3,3)",
                                                        "train.stage2_unfreeze_attention=true"),
           init=out / "stages" / "stage1.pt")
    last, _ = load_worldmodel_checkpoint(tmp_path / "u")
    changed = {parameter_group(n) for n, v in last["model"].items() if not torch.equal(v, s1[n])}
    assert changed == {"shared", "audio", "reward"}


def test_a_checkpoint_without_later_config_fields_still_fits(root, full, tmp_path):
    """Checkpoints written before a config field existed (e.g. model.visual) resume and --init alike."""
    from avworld.train.worldmodel_checkpoint import check_layout

    out, _ = full
    ckpt, _ = load_worldmodel_checkpoint(out)
    old = {k: v for k, v in ckpt["model_config"].items() if k != "visual"}
    model_cfg, _ = _cfgs(root, ("train.steps_per_stage=(3,3,3)",))
    check_layout({**ckpt, "model_config": old}, model_cfg, None, "old.pt")    # no error
    with pytest.raises(CheckpointLayoutError, match="visual"):
        check_layout({**ckpt, "model_config": {**old, "visual": False}}, model_cfg, None, "other.pt")
