"""``avworld train nav / eval / toy`` end to end (tiny sizes, the real AudioGoal env)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def episode_file(tmp_path_factory):
    eps = make_episodes(split_scenes("test", 1, rooms=(2, 2)), per_scene=4, config=EpisodeConfig(), seed=1)
    return save_episodes(tmp_path_factory.mktemp("eps") / "test.jsonl", eps, EpisodeConfig(), split="test")


def test_help_is_fast_and_lists_train_commands():
    code = ("import sys, avworld.cli as c; p = c.build_parser(); "
            "print('torch' in sys.modules); p.parse_args(['train', 'nav', '--agent', 'agsa'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_train_toy_command(tmp_path, capsys):
    assert main(["train", "toy", "--agent", "agsa", "--total-steps", "512", "--out", str(tmp_path)]) == 0
    assert "episode/success" in capsys.readouterr().out
    assert list((tmp_path / "checkpoints").glob("ckpt_*.pt"))


def test_train_nav_resume_and_eval(tmp_path, episode_file, capsys):
    run = tmp_path / "run"
    common = ["train", "nav", "--agent", "agsa", "--preset", "tiny", "--episodes", str(episode_file), "--out",
              str(run), "--no-progress", "--no-tensorboard", "--num-steps", "16"]
    assert main([*common, "--total-steps", "32", "--ablation", "modality-dropout"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["agent"] == "agsa" and cfg["model"]["modality_dropout"] == 0.5 and cfg["env"]["size"] == 32
    assert main([*common, "--total-steps", "64", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "update 1" in out
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["update"]) for r in rows] == [1, 2]
    assert "rollout/omega_mean" in rows[0] and 0 < float(rows[0]["rollout/omega_mean"]) < 1
    assert main(["train", "eval", "--checkpoint", str(run), "--episodes", str(episode_file), "--num", "2",
                 "--no-vision", "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["num_episodes"] == 2 and result["no_vision"] and result["agent"] == "agsa"
    assert set(result["aggregate"]) >= {"success", "spl", "soft_spl", "sna"}
    assert 0 < result["omega"]["mean"] < 1
    # the spelling, `avworld eval nav`, is the same command: same episodes, same numbers
    assert main(["eval", "nav", "--checkpoint", str(run), "--episodes", str(episode_file), "--num", "2",
                 "--no-vision", "--out", str(tmp_path / "eval-nav")]) == 0
    again = json.loads((tmp_path / "eval-nav" / "metrics.json").read_text())
    assert again["aggregate"] == result["aggregate"] and again["omega"] == result["omega"]


def test_train_nav_errors(tmp_path, episode_file, capsys):
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--ablation", "no-sam",
                 "--out", str(tmp_path)]) == 2
    assert "does not apply" in capsys.readouterr().err
    assert main(["train", "nav", "--agent", "avnav", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "no config.json to resume from" in capsys.readouterr().err
    bad = tmp_path / "ckpt_0000001.pt"
    bad.write_bytes(b"garbage")
    assert main(["train", "eval", "--checkpoint", str(bad), "--episodes", str(episode_file)]) == 2
    assert "CorruptCheckpointError" in capsys.readouterr().err
    assert main(["eval", "nav", "--checkpoint", str(bad), "--episodes", str(episode_file)]) == 2
    assert "CorruptCheckpointError" in capsys.readouterr().err
    # options before `nav` count (argparse would reset them); the baselines' own options are refused
    assert main(["eval", "--episodes", str(episode_file), "nav", "--checkpoint", str(bad)]) == 2
    assert "CorruptCheckpointError" in capsys.readouterr().err
    assert main(["eval", "nav", "--checkpoint", str(bad)]) == 2
    assert "needs --episodes" in capsys.readouterr().err
    assert main(["eval", "--size", "64", "nav", "--checkpoint", str(bad), "--episodes", str(episode_file)]) == 2
    assert "--size belong to the baselines" in capsys.readouterr().err


def test_eval_nav_options_before_and_after_nav_are_the_same():
    from avworld.cli import build_parser

    p = build_parser()
    a = p.parse_args(["eval", "--num", "5", "--out", "o", "--seed", "3", "nav", "--checkpoint", "c", "--episodes", "e"])
    b = p.parse_args(["eval", "nav", "--checkpoint", "c", "--episodes", "e", "--num", "5", "--out", "o", "--seed", "3"])
    for args in (a, b):
        assert (args.num, args.out, args.seed, args.episodes, args.checkpoint) == (5, "o", 3, "e", "c")
    c = p.parse_args(["eval", "nav", "--checkpoint", "c", "--episodes", "e"])
    assert (c.num, c.out, c.seed, c.device, c.no_vision) == (None, None, 0, None, False)


def test_train_commands_without_torch_get_a_typed_error(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert main(["eval", "nav", "--checkpoint", "c.pt", "--episodes", "e.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "TrainConfigError" in err and "needs torch" in err and "avworld[torch]" in err


def test_a_signal_stop_exits_like_the_signal_and_a_time_limit_stop_with_0(monkeypatch, tmp_path, capsys):
    import avworld.train.nav as nav

    common = ["train", "nav", "--agent", "avnav", "--preset", "tiny", "--out", str(tmp_path), "--no-progress"]
    resume = "rerun the same command with --resume to resume"
    cases = (({"update": 3, "stopped_by": "signal", "stop_signal": "SIGINT"}, 130, None),  # the trainer's line only
             ({"update": 3, "stopped_by": "signal", "stop_signal": "SIGTERM"}, 143, resume),
             ({"update": 3, "stopped_by": "time_limit"}, 0, "paused at its time limit"),
             ({"update": 9}, 0, "training finished"))
    for result, code, text in cases:
        monkeypatch.setattr(nav, "train_nav", lambda *a, _r=result, **k: _r)
        assert main(common) == code
        out = capsys.readouterr().out
        assert (out == "") if text is None else (text in out)


def test_ctrl_c_during_training_prints_one_line_and_leaves_a_resumable_checkpoint(tmp_path):
    """A real SIGINT to a running `avworld train nav`: one line of output, no traceback, exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "avworld.cli", "train", "nav", "--agent", "avnav", "--preset",
                             "tiny", "--total-steps", "100000", "--num-steps", "8", "--out", str(out),
                             "--no-progress", "--no-tensorboard"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.monotonic() + 240
    while not (out / "metrics.csv").is_file() or len((out / "metrics.csv").read_text().splitlines()) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    text, _ = proc.communicate(timeout=240)
    lines = [x for x in text.splitlines() if x.strip()]
    assert proc.returncode == 130, text
    assert len(lines) == 1 and lines[0].startswith("interrupted; ") and "--resume" in lines[0], text
    assert list((out / "checkpoints").glob("ckpt_*.pt"))


def test_set_overrides_reach_the_run_config(tmp_path, episode_file):
    from avworld.train.cli import parse_override
    from avworld.train.config import TrainConfigError

    assert parse_override("ppo.entropy_coef=0.05") == ("ppo", "entropy_coef", 0.05)
    assert parse_override("model.audio_log=true") == ("model", "audio_log", True)
    assert parse_override("env.rooms=[2, 3]") == ("env", "rooms", (2, 3))
    assert parse_override("env.observations=audio") == ("env", "observations", "audio")
    for bad in ("entropy_coef=0.1", "optim.lr=1", "ppo.lr"):
        with pytest.raises(TrainConfigError, match="SECTION.KEY=VALUE"):
            parse_override(bad)
    run = tmp_path / "run"
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--episodes", str(episode_file), "--out",
                 str(run), "--no-progress", "--no-tensorboard", "--num-steps", "8", "--total-steps", "16",
                 "--set", "model.stop_prior=0.05", "--set", "model.audio_log=true", "--set", "ppo.entropy_coef=0.03",
                 "--set", "env.pointgoal=true", "--set", "model.use_pointgoal=true"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["stop_prior"] == 0.05 and cfg["model"]["audio_log"] is True
    assert cfg["ppo"]["entropy_coef"] == 0.03 and cfg["env"]["pointgoal"] is True
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--out", str(tmp_path / "x"),
                 "--set", "model.no_such_option=1"]) == 2


def test_training_envs_keep_every_house_of_the_episode_file(tmp_path):
    from avworld.train.config import EnvConfig
    from avworld.train.nav import make_nav_envs

    eps = make_episodes(split_scenes("train", 5, rooms=(2, 2)), per_scene=1, config=EpisodeConfig(), seed=3)
    path = save_episodes(tmp_path / "train.jsonl", eps, EpisodeConfig(), split="train")
    envs = make_nav_envs(EnvConfig(episodes=str(path), size=16, observations="audiodepth", asynchronous=False), 2)
    try:
        for env in envs.envs:
            assert env.unwrapped.config.world_cache == 5  # not the LRU default of 4 < houses: rebuilt per reset
    finally:
        envs.close()


def test_resume_on_the_audiogoal_env_is_exact(tmp_path, episode_file, capsys):
    common = ["train", "nav", "--agent", "avnav", "--preset", "tiny", "--episodes", str(episode_file),
              "--no-progress", "--no-tensorboard", "--num-steps", "16", "--total-steps", "96",
              "--set", "ppo.checkpoint_every=1", "--set", "ppo.keep_checkpoints=6"]
    full = tmp_path / "full"
    assert main([*common, "--out", str(full)]) == 0
    ckpts = sorted((full / "checkpoints").glob("ckpt_*.pt"))
    assert len(ckpts) == 3
    part = tmp_path / "part"
    (part / "checkpoints").mkdir(parents=True)
    (part / "config.json").write_text((full / "config.json").read_text())
    (part / "checkpoints" / ckpts[0].name).write_bytes(ckpts[0].read_bytes())  # as if killed after update 1
    assert main([*common, "--out", str(part), "--resume"]) == 0
    assert "exactly" in capsys.readouterr().out
    want = torch.load(ckpts[-1], weights_only=False)["model"]
    got = torch.load(sorted((part / "checkpoints").glob("ckpt_*.pt"))[-1], weights_only=False)["model"]
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_grid_motion_trains_and_evaluates_in_the_grid_env(tmp_path):
    """``env.motion=grid`` (SoundSpaces 1: 1 m, 90 degrees, 1 s of audio per step) reaches the envs and eval."""
    from avworld.train.config import EnvConfig, TrainConfigError

    with pytest.raises(TrainConfigError, match="grid"):
        EnvConfig(motion="hexagonal")
    cfg = EpisodeConfig(forward_step_m=1.0, turn_deg=90.0)
    eps = make_episodes(split_scenes("test", 1, rooms=(2, 2)), per_scene=2, config=cfg, seed=1)
    ep_file = save_episodes(tmp_path / "grid.jsonl", eps, cfg, split="test")
    run = tmp_path / "run"
    assert main(["train", "nav", "--agent", "avnav", "--preset", "tiny", "--episodes", str(ep_file), "--out",
                 str(run), "--no-progress", "--no-tensorboard", "--num-steps", "8", "--total-steps", "16",
                 "--set", "env.motion=grid"]) == 0
    assert json.loads((run / "config.json").read_text())["env"]["motion"] == "grid"
    # the exported (shipped) form keeps what eval needs; eval builds its env from the checkpoint's
    # motion, and a soundspaces2 env would refuse these grid episodes
    assert main(["train", "export", "--checkpoint", str(run), "--out", str(tmp_path / "small.pt")]) == 0
    assert main(["train", "eval", "--checkpoint", str(tmp_path / "small.pt"), "--episodes", str(ep_file), "--num", "1",
                 "--out", str(tmp_path / "eval")]) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["num_episodes"] == 1
    from avworld.train.nav import make_nav_envs

    envs = make_nav_envs(EnvConfig(episodes=str(ep_file), size=16, observations="audiodepth", asynchronous=False,
                                   motion="grid"), 1)
    try:
        assert envs.envs[0].unwrapped.sim_config.turn_deg == 90.0
        assert envs.single_observation_space["spectrogram"].shape[-1] > 20  # 1 s of audio per step
    finally:
        envs.close()


@pytest.mark.parametrize("argv, text", [
    (["train", "nav", "--agent", "agas"], "--agent 'agas' is unknown; did you mean 'agsa'?"),
    (["train", "nav", "--agent", "avnav", "--preset", "fats"], "did you mean 'fast'?"),
    (["train", "nav", "--agent", "avnav", "--ablation", "audio_only"], "did you mean 'audio-only'?"),
    (["train", "toy", "--agent", "avnv"], "did you mean 'avnav'?"),
    (["train", "nav", "--agent", "avnav", "--preset", "tiny", "--set", "env.motion=gird"], "did you mean 'grid'?"),
    (["train", "nav", "--agent", "avnav", "--preset", "tiny", "--set", "env.observations=audio-depth"],
     "did you mean 'audiodepth'"),
    (["train", "nav", "--agent", "avnav", "--preset", "tiny", "--set", "ppo.entropy=0.1"],
     "did you mean 'entropy_coef'?"),
])
def test_names_are_checked_when_the_command_starts(argv, text, tmp_path, monkeypatch, capsys):
    import avworld.train.nav as nav

    monkeypatch.setattr(nav, "make_nav_envs", lambda *a, **k: pytest.fail("built envs before checking names"))
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avworld: error: TrainConfigError: ") and text in err


def test_every_train_and_eval_option_has_help():
    from avworld.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{path} {action.option_strings[0]} has no help"
            choices = getattr(action, "choices", None)
            for name, sub in (choices.items() if isinstance(choices, dict) else ()):
                if hasattr(sub, "_actions"):
                    yield from walk(sub, f"{path} {name}")
        yield path

    top = build_parser()
    seen = [p for name in ("train", "eval", "tokenizer", "worldmodel")
            for p in walk(top._subparsers._group_actions[0].choices[name], name)]
    assert {"train nav", "train eval", "train toy", "train export", "eval nav", "tokenizer train", "tokenizer encode",
            "tokenizer eval", "tokenizer export", "worldmodel train", "worldmodel generate",
            "worldmodel eval"} <= set(seen)
    observations = next(a for a in top._subparsers._group_actions[0].choices["eval"]._actions
                        if a.dest == "observations")
    assert "audiodepth" in observations.help


def test_ctrl_c_before_the_trainer_takes_over_prints_one_line(tmp_path, monkeypatch, capsys):
    import avworld.train.nav as nav

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(nav, "train_nav", interrupted)
    common = ["train", "nav", "--agent", "avnav", "--preset", "tiny", "--out", str(tmp_path), "--no-progress"]
    assert main(common) == 130
    assert capsys.readouterr().err == ("interrupted; no checkpoint was written yet; rerun the same command to start "
                                       "over\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt_0000004.pt").write_bytes(b"")
    assert main(common) == 130
    err = capsys.readouterr().err
    assert err.startswith("interrupted; rerun the same command with --resume to resume from ")
    assert "Traceback" not in err
    assert main([*common, "--resume"]) == 130
    assert capsys.readouterr().err.startswith("interrupted; rerun the same command to resume from ")
