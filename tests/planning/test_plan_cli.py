"""`avworld plan eval / report / episodes` end to end on tiny inputs."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, replace

import pytest

from avworld.cli import main
from avworld.planning.episodes import PlanEpisodesError, dataset_scenes, make_dataset_episodes
from avworld.sim.config import PRESETS
from avworld.tasks.episodes import EpisodeConfig, load_episodes, save_episodes
from avworld.train.checkpoint import save_checkpoint

from .conftest import make_env, tiny_policy


@pytest.fixture(scope="module")
def inputs(avw_episodes, tmp_path_factory):
    d = tmp_path_factory.mktemp("plan")
    p = PRESETS["avw"]
    cfg = replace(EpisodeConfig(), forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"])
    eps = save_episodes(d / "eps.jsonl", avw_episodes, cfg, split="test")
    env = make_env(avw_episodes)
    policy = tiny_policy(env)
    ckpt = save_checkpoint(d / "ckpt_0000001.pt", {
        "agent": "avnav", "model_config": asdict(policy.config), "model": policy.state_dict(),
        "obs_shapes": {k: list(v) for k, v in policy.obs_shapes.items()}, "action_dim": 4, "continuous": False,
        "global_step": 0, "run_info": {"env": {"motion": "avw", "size": 32, "step_limit": 12}}})
    env.close()
    return d, ckpt, eps


def test_plan_eval_and_report(inputs, capsys):
    d, ckpt, eps = inputs
    common = ["plan", "eval", "--agent", str(ckpt), "--episodes", str(eps), "--num", "2", "--no-progress"]
    assert main([*common, "--out", str(d / "policy")]) == 0
    assert main([*common, "--world-model", "oracle", "--beam", "2", "--horizon", "2", "--candidates", "2",
                 "--out", str(d / "oracle")]) == 0
    m = json.loads((d / "oracle" / "metrics.json").read_text())
    assert m["label"] == "oracle B=2 H=2 K=2" and m["num_episodes"] == 2
    for k in ("success", "spl", "soft_spl", "na", "sna"):
        a = m["aggregate"][k]
        assert a["ci_low"] <= a["mean"] <= a["ci_high"] and a["n"] == 2
    rows = list(csv.DictReader(open(d / "oracle" / "episodes.csv")))
    assert len(rows) == 2 and all(1 <= float(r["na"]) <= 12 for r in rows)  # the 12-step limit
    paths = json.loads((d / "oracle" / "paths.json").read_text())
    assert all(len(p["poses"]) == len(p["actions"]) + 1 for p in paths.values())
    assert len(list((d / "oracle").glob("video_*.mp4"))) == 1
    # the same command gives the same episodes
    assert main([*common, "--world-model", "oracle", "--beam", "2", "--horizon", "2", "--candidates", "2",
                 "--out", str(d / "oracle2")]) == 0
    assert (d / "oracle2" / "paths.json").read_text() == (d / "oracle" / "paths.json").read_text()
    capsys.readouterr()
    assert main(["plan", "report", "--runs", str(d / "policy"), str(d / "oracle"), "--maps", "1",
                 "--out", str(d / "report")]) == 0
    html = (d / "report" / "report.html").read_text()
    assert "| oracle B=2 H=2 K=2 | 2 |" in (d / "report" / "table.md").read_text()
    assert "oracle B=2 H=2 K=2" in html and "policy" in html
    import re

    for src in re.findall(r'src="([^"]+)"', html):
        assert (d / "report" / src).is_file(), src


def test_plan_eval_refuses_a_bad_world_model(inputs, capsys):
    _, ckpt, eps = inputs
    assert main(["plan", "eval", "--agent", str(ckpt), "--episodes", str(eps), "--world-model", "nowhere.pt"]) == 2
    assert "PlanEvalError" in capsys.readouterr().err


def test_episodes_in_a_dataset_split(tmp_path):
    scenes = [{"index": 0, "spec": "house:900:2", "split": "train"},
              {"index": 1, "spec": "house:901:2", "split": "test"}]
    manifest = {"scenes": scenes, "splits": {"train": [0], "test": [1]},
                "config": {"trajectory": {"motion_preset": "avw", "sound": "telephone_ringing",
                                          "source_height_m": 1.0}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert dataset_scenes(tmp_path, "test")[0] == ["house:901:2"]
    path = make_dataset_episodes(tmp_path, "test", 2, tmp_path / "e.jsonl", max_geodesic_m=6.0)
    header, eps = load_episodes(path)
    assert [e.scene for e in eps] == ["house:901:2"] * 2
    assert header["config"]["forward_step_m"] == 0.15 and header["config"]["source_height_m"] == 1.0
    with pytest.raises(PlanEpisodesError, match="split"):
        dataset_scenes(tmp_path, "val")


def test_every_plan_option_has_help():
    import argparse

    from avworld.cli import build_parser

    parser = build_parser()
    plan = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["plan"]
    sub = next(a for a in plan._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"eval", "report", "episodes"}
    for name, p in sub.choices.items():
        for a in p._actions:
            if a.option_strings and a.dest != "help":
                assert a.help, f"plan {name} {a.option_strings}"
