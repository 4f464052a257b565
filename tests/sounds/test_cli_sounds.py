"""`avworld sounds list` / `avworld sounds play`: browse and hear the sound bank."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from avworld.cli import main
from avworld.sounds import SoundBank


def test_list_json_has_every_type_with_category_split_and_duration(capsys):
    assert main(["sounds", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    bank = SoundBank()
    assert [r["type"] for r in rows] == bank.names()
    by = {r["type"]: r for r in rows}
    assert by["telephone"]["category"] == "static" and by["telephone"]["kind"] == "ring"
    assert by["telephone"]["duration_s"] == 6.0  # one cycle: 2 s ring, 4 s off
    assert by["speaker_017"]["duration_s"] == 20.0 and by["speaker_017"]["category"] == "dynamic"
    assert by["speaker_017"]["split"] == {"train": 18, "val": 3, "test": 4} and by["speaker_017"]["clips"] == 25
    assert "female" in by["speaker_017"]["description"] or "male" in by["speaker_017"]["description"]


def test_list_table_filters_by_category_and_kind(capsys):
    assert main(["sounds", "list", "--category", "static", "--kind", "ring"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["type", "category", "kind"]
    assert [line.split()[0] for line in lines[1:-1]] == ["telephone", "telephone_ringing", "telephone_uk"]
    assert all("18/3/4" in line for line in lines[1:-1])


def test_an_unknown_kind_suggests_the_right_one(capsys):
    assert main(["sounds", "list", "--kind", "musik"]) == 2
    err = capsys.readouterr().err
    assert "SoundCliError" in err and "did you mean 'music'" in err


def test_play_writes_the_seeded_clip_at_the_duration_asked(tmp_path, capsys):
    out = tmp_path / "phone.wav"
    assert main(["sounds", "play", "telephone", "--out", str(out), "--duration", "2.5", "--seed", "3"]) == 0
    assert "telephone (static ring) clip 0, 2.5 s at 16000 Hz, seed 3" in capsys.readouterr().out
    x, fs = sf.read(out, dtype="float32")
    assert fs == 16000 and x.shape == (40000,)
    ref = SoundBank(seed=3).clip("telephone", 0)[:40000]  # the cycle the simulator plays, cut to 2.5 s
    np.testing.assert_allclose(x, ref, atol=1.0 / 2**15)
    again = tmp_path / "again.wav"
    assert main(["sounds", "play", "telephone", "--out", str(again), "--duration", "2.5", "--seed", "3"]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_play_loops_a_periodic_sound_past_one_cycle(tmp_path):
    out = tmp_path / "ring.flac"
    assert main(["sounds", "play", "telephone_ringing", "--out", str(out), "--duration", "2.5",
                 "--sample-rate", "8000"]) == 0
    x, fs = sf.read(out, dtype="float32")
    assert fs == 8000 and x.shape == (20000,)
    np.testing.assert_allclose(x[:8000], x[8000:16000], atol=1e-4)  # a 1 s cycle, repeated seamlessly


@pytest.mark.parametrize(("argv", "error", "message"), [
    (["telefone", "--out", "OUT.wav"], "UnknownSoundError", "did you mean 'telephone'"),
    (["speaker_017", "--out", "OUT.mp3"], "SoundCliError", ".wav, .flac, .ogg"),
    (["speaker_017", "--out", "OUT.wav", "--duration", "0"], "SoundCliError", "--duration"),
    (["speaker_017", "--out", "OUT.wav", "--clip", "30"], "SoundError", "[0, 24]"),
    (["speaker_017", "--out", "OUT.wav", "--sample-rate", "4000"], "SampleRateError", "8000"),
])
def test_play_bad_input_is_a_typed_error(argv, error, message, tmp_path, capsys):
    argv = [a.replace("OUT", str(tmp_path / "x")) for a in argv]
    assert main(["sounds", "play", *argv]) == 2
    err = capsys.readouterr().err
    assert f"avworld: error: {error}: " in err and message in err
    assert not list(tmp_path.iterdir())
