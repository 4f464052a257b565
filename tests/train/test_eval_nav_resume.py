"""`avworld eval nav`: rows as episodes finish, Ctrl-C resumes to identical results, early and clear errors."""

from __future__ import annotations

import csv
import json

import pytest

torch = pytest.importorskip("torch")

import avworld.eval.nav_runner as runner  # noqa: E402
from avworld.cli import main  # noqa: E402
from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run_and_episodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nav")
    eps = make_episodes(split_scenes("test", 1, rooms=(2, 2)), per_scene=4, config=EpisodeConfig(), seed=1)
    episodes = save_episodes(tmp / "test.jsonl", eps, EpisodeConfig(), split="test")
    grid = EpisodeConfig(forward_step_m=1.0, turn_deg=90.0)
    grid_eps = save_episodes(tmp / "grid.jsonl", make_episodes(split_scenes("test", 1, rooms=(2, 2)), 2, grid, seed=1),
                             grid, split="test")
    run = tmp / "run"
    assert main(["train", "nav", "--agent", "agsa", "--preset", "tiny", "--episodes", str(episodes), "--out", str(run),
                 "--no-progress", "--no-tensorboard", "--num-steps", "8", "--total-steps", "16"]) == 0
    return run, episodes, grid_eps


def test_eval_nav_interrupted_and_resumed_equals_uninterrupted(run_and_episodes, tmp_path, monkeypatch, capsys):
    run, episodes, _ = run_and_episodes
    cmd = ["eval", "nav", "--checkpoint", str(run), "--episodes", str(episodes), "--threads", "1"]
    assert main([*cmd, "--out", str(tmp_path / "full")]) == 0
    capsys.readouterr()
    real, calls = runner.run_episode, [0]

    def interrupted(*a, **k):
        calls[0] += 1
        if calls[0] > 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    part = tmp_path / "part"
    with monkeypatch.context() as m:
        m.setattr(runner, "run_episode", interrupted)
        assert main([*cmd, "--out", str(part)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; rerun the same command to resume" and "Traceback" not in err
    assert len(list(csv.DictReader(open(part / "episodes.csv")))) == 2
    assert main([*cmd, "--out", str(part)]) == 0
    assert "resuming: 2 finished episode(s)" in capsys.readouterr().out
    full, resumed = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "full", part))
    assert resumed.pop("resumed_episodes") == 2 and full.pop("resumed_episodes") == 0
    assert resumed == full  # rows, aggregate and AGSA's gate statistics


def test_eval_nav_on_episodes_of_another_motion_names_the_fix(run_and_episodes, capsys):
    run, _, grid_eps = run_and_episodes
    assert main(["eval", "nav", "--checkpoint", str(run), "--episodes", str(grid_eps)]) == 2
    err = capsys.readouterr().err
    assert "planned for 1.0 m / 90 deg steps (motion preset 'grid')" in err
    assert "avworld episodes make --preset soundspaces2" in err and "pass the matching preset" not in err


def test_eval_nav_num_zero_blames_num(run_and_episodes, capsys):
    run, episodes, _ = run_and_episodes
    assert main(["eval", "nav", "--checkpoint", str(run), "--episodes", str(episodes), "--num", "0"]) == 2
    assert "--num 0" in capsys.readouterr().err


def test_eval_nav_help_shows_episodes_required(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "nav", "--help"])
    usage = capsys.readouterr().out.split("options:")[0]
    assert "--episodes FILE" in usage and "[--episodes" not in usage
