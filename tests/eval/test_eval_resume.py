"""`avworld eval` writes each finished episode's row at once, and a rerun after Ctrl-C resumes to the same result."""

from __future__ import annotations

import csv
import json

import pytest

import avworld.eval.nav_runner as runner
from avworld.cli import main
from avworld.eval.resume import EpisodeLog


def _interrupt_after(monkeypatch, episodes: int) -> None:
    """Make the `episodes + 1`-th episode of this process raise KeyboardInterrupt (a Ctrl-C mid-episode)."""
    real, calls = runner.run_episode, [0]

    def run_episode(*a, **k):
        calls[0] += 1
        if calls[0] > episodes:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner, "run_episode", run_episode)


def test_baseline_eval_interrupted_and_resumed_equals_uninterrupted(eval_episode_file, tmp_path, monkeypatch,
                                                                     capsys):
    cmd = ["eval", "--agent", "random", "--agent", "forward", "--episodes", str(eval_episode_file),
           "--observations", "audio", "--seed", "4"]
    assert main([*cmd, "--out", str(tmp_path / "full")]) == 0
    capsys.readouterr()
    part = tmp_path / "part"
    with monkeypatch.context() as m:
        _interrupt_after(m, 7)  # random's 5 episodes and 2 of forward's
        assert main([*cmd, "--out", str(part)]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted; rerun the same command to resume" and "Traceback" not in err
    rows = list(csv.DictReader(open(part / "episodes.csv")))
    assert [r["agent"] for r in rows] == ["random"] * 5 + ["forward"] * 2  # written as they finished
    calls = []
    real = runner.run_episode
    monkeypatch.setattr(runner, "run_episode", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main([*cmd, "--out", str(part)]) == 0
    assert len(calls) == 3  # only the unfinished episodes ran
    assert "resuming: 7 finished episode(s)" in capsys.readouterr().out
    full, resumed = (json.loads((d / "metrics.json").read_text()) for d in (tmp_path / "full", part))
    assert resumed == full
    assert (part / "episodes.csv").read_text() == (tmp_path / "full" / "episodes.csv").read_text()


def test_eval_without_out_says_nothing_was_saved(eval_episode_file, monkeypatch, capsys):
    _interrupt_after(monkeypatch, 1)
    assert main(["eval", "--agent", "random", "--episodes", str(eval_episode_file), "--observations", "audio"]) == 130
    assert "add --out DIR" in capsys.readouterr().err


def test_episode_log_drops_a_half_written_row_and_starts_over_for_other_options(tmp_path):
    log = EpisodeLog(tmp_path, {"seed": 0})
    row = {"episode_id": "e0", "success": 1.0, "spl": 0.5, "soft_spl": 0.25, "distance_to_goal": 0.125,
           "na": 7.0, "sna": 0.1}
    log.add("random", row, {"rng": 1})
    log.add("random", {**row, "episode_id": "e1"}, {"rng": 2})
    with open(tmp_path / "episodes.csv", "a") as f:  # interrupted while writing the next row
        f.write("random,e2,1.0,0.")
    again = EpisodeLog(tmp_path, {"seed": 0})
    assert [r["episode_id"] for r in again.rows["random"]] == ["e0", "e1"] and again.states["random"] == {"rng": 2}
    assert again.rows["random"][0] == row
    assert "e2" not in (tmp_path / "episodes.csv").read_text()
    before = (tmp_path / "episodes.csv").read_text()
    other = EpisodeLog(tmp_path, {"seed": 1})
    assert other.rows == {} and "other options (seed)" in other.note
    assert (tmp_path / "previous-1" / "episodes.csv").read_text() == before  # kept, not overwritten
    assert (tmp_path / "previous-1" / "eval_progress.json").is_file()
    assert again.resume("random", 1) == [] and "random" not in again.rows  # a smaller --num: that agent restarts


@pytest.mark.parametrize("argv, text", [
    (["--agent", "randon"], "did you mean 'random'"),
    (["--agent", "oracle", "--preset", "gird"], "did you mean 'grid'"),
    (["--agent", "oracle", "--observations", "audio-depth"], "did you mean 'audiodepth'"),
    (["--agent", "heuristic", "--observations", "vision"], "heuristic agent listens"),
])
def test_eval_names_are_checked_before_anything_is_built(argv, text, capsys, monkeypatch):
    import gymnasium

    monkeypatch.setattr(gymnasium, "make", lambda *a, **k: pytest.fail("built an env before checking names"))
    assert main(["eval", *argv, "--episodes", "missing.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "TaskCliError" in err and text in err


def test_eval_preset_defaults_to_the_episode_files(eval_episode_file):
    from avworld.eval.cli import episode_preset

    assert episode_preset(eval_episode_file) == "soundspaces2"


def test_episode_log_starts_over_when_the_code_changed(tmp_path, monkeypatch):
    from avworld.eval import resume

    log = EpisodeLog(tmp_path, {"seed": 0})
    log.add("random", {"episode_id": "e0", "success": 1.0, "spl": 0.5, "soft_spl": 0.25, "distance_to_goal": 0.1,
                       "na": 7.0, "sna": 0.1}, {"rng": 1})
    assert EpisodeLog(tmp_path, {"seed": 0}).rows["random"]  # same code: resumes
    monkeypatch.setattr(resume, "code_fingerprint", lambda: "another version")
    other = EpisodeLog(tmp_path, {"seed": 0})
    assert other.rows == {} and "avworld_code" in other.note
