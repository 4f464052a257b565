"""`avworld episodes make`: names checked before any house is built, Ctrl-C keeps the finished houses
and a rerun resumes to the same file (issue 22, items 3 and 8)."""

import pytest

import avworld.tasks.episodes as E
from avworld.cli import main


def _no_sampling(*args, **kwargs):
    raise AssertionError("sampling started before the arguments were checked")


@pytest.mark.parametrize(("flag", "value", "hint"), [
    ("--sound", "telefone_ringing", "did you mean 'telephone_ringing'"),
    ("--preset", "soundspace", "did you mean 'soundspaces2'"),
    ("--scenes", "0", "--scenes must be >= 1"),
    ("--per-scene", "0", "--per-scene must be >= 1"),
])
def test_bad_names_and_counts_fail_before_sampling(tmp_path, capsys, monkeypatch, flag, value, hint):
    monkeypatch.setattr(E, "iter_scene_episodes", _no_sampling)
    out = tmp_path / "eps.jsonl"
    assert main(["episodes", "make", flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "TaskCliError" in err and hint in err and "Traceback" not in err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def test_library_refuses_an_unknown_sound_before_building_worlds():
    from avworld.sounds.registry import UnknownSoundError

    with pytest.raises(UnknownSoundError, match="did you mean"):
        E.make_episodes(["house:0:2"], 1, E.EpisodeConfig(sound="telefone"))


def test_ctrl_c_keeps_finished_houses_and_a_rerun_resumes_identically(tmp_path, capsys, monkeypatch):
    argv = ["episodes", "make", "--split", "val", "--scenes", "3", "--per-scene", "2", "--rooms", "1,2"]
    whole = tmp_path / "whole.jsonl"
    assert main([*argv, "--out", str(whole)]) == 0
    capsys.readouterr()

    real = E.iter_scene_episodes
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(kwargs.get("start", 0))
        for n, item in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(E, "iter_scene_episodes", interrupted)
    out = tmp_path / "eps.jsonl"
    partial = out.with_name(out.name + ".partial")
    assert main([*argv, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "interrupted after 2 of 3 houses" in err and "rerun the same command to resume" in err
    assert not out.exists() and len(partial.read_text().splitlines()) == 1 + 2 * 2
    with open(partial, "a") as f:  # a line cut short by the interrupt
        f.write('{"episode_id": "0002-0000", "sce')
    assert main([*argv, "--out", str(out)]) == 0
    assert "resuming: 2 of 3 houses" in capsys.readouterr().out
    assert calls == [0, 2] and not partial.exists()
    assert out.read_bytes() == whole.read_bytes()
