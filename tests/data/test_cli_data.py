"""`avworld data make | info | show` through the main CLI."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from avworld.cli import main


def test_data_make_info_show(tmp_path, capsys):
    out = tmp_path / "tiny"
    args = ["data", "make", "--preset", "avw-tiny", "--out", str(out), "--per-scene", "1", "--size", "32"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "shards: 3/3 built" in text and "all " in text
    assert main(args) == 0  # resuming a finished dataset is a no-op
    capsys.readouterr()

    assert main(["data", "info", str(out), "--json", "--verify"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["complete"] and info["checksums"].startswith("verified") and info["bad_shards"] == []
    assert info["scenes"] == {"train": 1, "val": 1, "test": 1}
    assert info["totals"]["all"]["trajectories"] == 3 and info["frame"]["rgb"] == [32, 32, 3]
    assert info["totals"]["all"]["hours"] == pytest.approx(info["totals"]["all"]["frames"] * 0.15 / 3600)

    show = tmp_path / "show"
    assert main(["data", "show", str(out), "--traj", "1", "--out", str(show)]) == 0
    html = (show / "traj_1.html").read_text()
    assert "traj_1.mp4" in html and "traj_1_topdown.png" in html
    top = np.asarray(Image.open(show / "traj_1_topdown.png"))
    assert top.shape[0] > 100 and top.std() > 10
    # the framed map (metre ticks, scale bar, legend beside it), not the bare top-down raster
    from avworld.data import AVWDataset
    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.spec import load_scene_spec
    from avworld.vision.topdown import topdown_map

    scene = load_scene_spec(AVWDataset(out, split=None).info(1)["scene"])
    bare = topdown_map(scene, NavGrid.build(scene, NavConfig()), px_per_m=40.0)
    assert top.shape[1] > bare.shape[1] + 80 and top.shape[0] > bare.shape[0] + 40
    import imageio_ffmpeg

    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(show / "traj_1.mp4")],
                           capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "Audio: aac" in probe and "stereo" in probe


def test_data_errors_exit_2_with_the_fix(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "ManifestError" in capsys.readouterr().err
    out = tmp_path / "d"
    assert main(["data", "make", "--preset", "avw-tiny", "--out", str(out), "--per-scene", "1", "--size", "32"]) == 0
    capsys.readouterr()
    assert main(["data", "show", str(out), "--traj", "99", "--out", str(tmp_path / "s")]) == 2
    assert "trajectory 99 does not exist" in capsys.readouterr().err
    assert main(["data", "make", "--preset", "avw-tiny", "--out", str(out), "--size", "48"]) == 2
    assert "another configuration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "make", "--preset", "avw-huge", "--out", str(out)])
