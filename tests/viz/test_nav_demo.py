"""The navigation demo with a trained agent (``avworld demo --checkpoint``)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes  # noqa: E402
from avworld.viz.nav_demo import DemoConfig, DemoError, run_demo  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_demo_runs_a_trained_checkpoint_next_to_the_baselines(tmp_path):
    eps = make_episodes(split_scenes("train", 1, rooms=(2, 2)), per_scene=2, config=EpisodeConfig(), seed=1)
    ep_file = save_episodes(tmp_path / "train.jsonl", eps, EpisodeConfig(), split="train")
    run = tmp_path / "run"
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--episodes", str(ep_file), "--out", str(run),
                 "--no-progress", "--no-tensorboard", "--num-steps", "8", "--total-steps", "16"]) == 0
    ckpt = sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1]
    cfg = DemoConfig(house_seed=1, rooms=2, episodes=1, agents=("oracle",), image_size=32, step_limit=12,
                     checkpoint=str(ckpt))
    report = run_demo(tmp_path / "demo", cfg)
    html = report.read_text()
    assert "learned.mp4" in html and "oracle.mp4" in html
    assert f"the avnav agent of checkpoint {ckpt}, trained 16 steps" in html
    assert (tmp_path / "demo" / "learned.mp4").stat().st_size > 1000
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert set(metrics["aggregate"]) == {"oracle", "learned"}
    learned = metrics["per_episode"]["learned"][0]
    assert 1 <= learned["na"] <= 12  # the tiny agent ran the demo episode (NA: number of actions) in the limit
    with pytest.raises(DemoError, match="does not exist"):
        run_demo(tmp_path / "demo2", DemoConfig(episodes=1, agents=(), checkpoint=str(tmp_path / "none.pt")))


def test_demo_walks_with_the_checkpoints_motion(tmp_path):
    """A checkpoint trained with SoundSpaces 1's grid motion is shown in a grid env, and so are the baselines."""
    cfg = EpisodeConfig(forward_step_m=1.0, turn_deg=90.0)
    eps = make_episodes(split_scenes("train", 1, rooms=(2, 2)), per_scene=2, config=cfg, seed=1)
    ep_file = save_episodes(tmp_path / "train.jsonl", eps, cfg, split="train")
    run = tmp_path / "run"
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--episodes", str(ep_file), "--out", str(run),
                 "--no-progress", "--no-tensorboard", "--num-steps", "8", "--total-steps", "16",
                 "--set", "env.motion=grid"]) == 0
    ckpt = sorted((run / "checkpoints").glob("ckpt_*.pt"))[-1]
    demo = DemoConfig(house_seed=1, rooms=2, episodes=1, agents=("oracle",), image_size=32, step_limit=40,
                      checkpoint=str(ckpt))
    run_demo(tmp_path / "demo", demo)
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["motion"] == "grid"
    oracle = metrics["per_episode"]["oracle"][0]
    # this house's episode starts 6.1 m away (geodesic): 13 actions in 1 m steps with 90 degree turns; in
    # 0.25 m steps the same oracle has not arrived after 40 (measured: 2.6 m left), so few actions mean grid motion
    assert oracle["success"] == 1.0 and oracle["na"] < 16
