"""`avworld episodes make` and `avworld eval`."""

import json

from avworld.cli import main


def test_episodes_make_then_eval(tmp_path, capsys):
    eps = tmp_path / "eps.jsonl"
    assert main(["episodes", "make", "--split", "val", "--scenes", "2", "--per-scene", "2", "--out", str(eps)]) == 0
    header = json.loads(eps.read_text().splitlines()[0])
    assert header["split"] == "val" and header["num_episodes"] == 4 and len(header["scenes"]) == 2
    out = tmp_path / "eval"
    argv = ["eval", "--agent", "oracle", "--agent", "random", "--episodes", str(eps), "--size", "16", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "oracle" in printed and "random" in printed and "spl" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["aggregate"]["oracle"]["success"]["mean"] == 1.0
    assert len((out / "episodes.csv").read_text().splitlines()) == 1 + 2 * 4


def test_eval_errors(tmp_path, capsys):
    assert main(["eval", "--agent", "oracle", "--episodes", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "avworld-audiogoal-episodes", "version": 0}\n')
    assert main(["eval", "--agent", "oracle", "--episodes", str(bad)]) == 2
    assert "version 0" in capsys.readouterr().err
    for argv in (["eval", "--episodes", str(bad)], ["eval", "--agent", "oracle"], ["eval"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "TaskCliError" in err and "avworld eval nav --checkpoint" in err


def test_episodes_make_distance_and_straight_path_options(tmp_path, capsys):
    eps = tmp_path / "near.jsonl"
    argv = ["episodes", "make", "--split", "train", "--scenes", "2", "--per-scene", "6", "--min-geodesic", "1.5",
            "--max-geodesic", "4", "--straight-keep", "1", "--out", str(eps)]
    assert main(argv) == 0
    lines = eps.read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    cfg = header["config"]
    assert (cfg["min_geodesic_m"], cfg["max_geodesic_m"], cfg["straight_keep_prob"]) == (1.5, 4.0, 1.0)
    assert len(rows) == 12 and all(1.5 <= r["geodesic_distance_m"] <= 4.0 for r in rows)
    assert main([*argv[:-4], "--max-geodesic", "1", "--out", str(tmp_path / "bad.jsonl")]) == 2
    assert "min_geodesic_m" in capsys.readouterr().err
