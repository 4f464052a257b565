"""The `avworld` command line (run in-process through `main`)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from avworld.cli import main
from avworld.geometry.io import load_scene
from avworld.geometry.procedural import HouseConfig, generate_house


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "scene", "render"):
        assert cmd in out


def test_scene_new_saves_loadable_identical_scene(tmp_path, capsys):
    assert main(["scene", "new", "--seed", "4", "--rooms", "3", "--out", str(tmp_path / "h")]) == 0
    info = json.loads(capsys.readouterr().out)
    scene = load_scene(tmp_path / "h")
    expected = generate_house(HouseConfig(num_rooms=3), seed=4)
    assert scene.content_hash == expected.content_hash == info["hash"]
    assert len(info["rooms"]) == 3 and info["navigable_m2"] > 5


def test_scene_show_writes_topdown_and_views(tmp_path):
    assert main(["scene", "show", "house:2:4", "--out", str(tmp_path), "--views", "2", "--size", "64"]) == 0
    top = Image.open(tmp_path / "scene_topdown.png")
    assert top.size[0] > 100
    view = np.asarray(Image.open(tmp_path / "scene_view1.png"))
    assert view.shape == (64, 3 * 64, 3)
    assert view[:, :64].std() > 5  # the RGB view is not blank


def test_render_writes_images_with_true_depth(tmp_path):
    scene_dir = tmp_path / "s"
    assert main(["scene", "new", "--seed", "1", "--rooms", "1", "--no-windows", "--out", str(scene_dir)]) == 0
    scene = load_scene(scene_dir)
    room = scene.rooms[0].polygon_array
    x, y = room[:, 0].mean(), room[:, 1].mean()
    x_wall = room[:, 0].max()
    rc = ["render", str(scene_dir), "--pose", f"{x},{y},0", "--width", "33", "--height", "21",
          "--out", str(tmp_path / "v")]
    assert main(rc) == 0
    depth = np.load(tmp_path / "v" / "depth_0.npy")
    assert depth.shape == (21, 33, 1)
    assert Image.open(tmp_path / "v" / "rgb_0.png").size == (33, 21)
    # the centre pixel looks at the +x wall of the single room, unless furniture is in the way
    assert depth[10, 16, 0] <= x_wall - x + 1e-3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "house:x", "--pose", "0,0,0", "--out", "OUT"], "house:SEED"),
        (["render", "house:1", "--pose", "0,0", "--out", "OUT"], "--pose"),
        (["render", "no/such/file.glb", "--pose", "0,0,0", "--out", "OUT"], "does not exist"),
        (["scene", "new", "--seed", "1", "--rooms", "40", "--out", "OUT"], "num_rooms"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "avworld: error" in err and message in err


def test_demo_writes_the_navigation_report(tmp_path, monkeypatch, capsys):
    """`avworld demo` run from any directory finds the checkpoint shipped in the package and names it."""
    import json
    import subprocess

    import imageio_ffmpeg

    from avworld.viz.nav_demo import default_checkpoint

    monkeypatch.chdir(tmp_path)  # not the repository root: the checkpoints travel with the package
    shipped = default_checkpoint()
    assert shipped is not None, "avworld ships avworld/checkpoints/audiogoal-small/*.pt for the demo"
    assert main(["demo", "--out", "demo"]) == 0
    out = capsys.readouterr().out
    import torch

    steps = int(torch.load(shipped, map_location="cpu", weights_only=False)["global_step"])
    assert f"learned agent: avnav agent (AV-Nav, the SoundSpaces baseline) from {shipped}, trained {steps:,}" in out
    tmp_path = tmp_path / "demo"
    html = (tmp_path / "report.html").read_text()
    for item in ("map.png", "oracle.mp4", "heuristic.mp4", "oracle_spectrogram.png", "rir/rir.png", "<table>"):
        assert item in html
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(tmp_path / "oracle.mp4")],
                           capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "Audio: aac" in probe and "stereo" in probe
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["aggregate"]["oracle"]["success"]["mean"] == 1.0
    # the trained agent ran the same episodes, in the motion it was trained with
    assert "learned.mp4" in html and f"checkpoint {shipped}" in html
    assert len(metrics["per_episode"]["learned"]) == len(metrics["per_episode"]["oracle"]) == 4
    assert metrics["motion"] == "grid"


def test_scene_gallery(tmp_path):
    assert main(["scene", "gallery", "--out", str(tmp_path)]) == 0
    html = (tmp_path / "index.html").read_text()
    assert html.count("<img") >= 6 * 5
    for name in ("house0_topdown.png", "house5_view3.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_rir_writes_wav_plots_and_rt60(tmp_path, capsys):
    from scipy.io import wavfile

    out = tmp_path / "rir"
    argv = ["rir", "house:2:3", "--source", "SRC", "--listener", "LST", "--out", str(out), "--max-rir-s", "0.8"]
    scene = generate_house(HouseConfig(num_rooms=3), seed=2)
    room = scene.rooms[0].polygon_array
    lo, hi = room.min(axis=0), room.max(axis=0)
    src = f"{lo[0] + 0.6},{lo[1] + 0.6},1.2"
    lst = f"{hi[0] - 0.6},{hi[1] - 0.6},1.5,45"
    argv = [src if a == "SRC" else lst if a == "LST" else a for a in argv]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    fs, data = wavfile.read(out / "rir_binaural.wav")
    assert fs == 16000 and data.shape[1] == 2 and np.abs(data).max() > 0
    assert info["direct_path"] is True and info["rt60_s"] > 0
    assert set(info["rt60_s_per_band"]) == {"125", "250", "500", "1000", "2000", "4000", "8000"}
    for name in ("rir.png", "edc.png", "rir.json", "rir_mono.wav"):
        assert (out / name).stat().st_size > 100
    assert main(["rir", "house:2:3", "--source", "0,0", "--listener", lst, "--out", str(out)]) == 2


def test_demo_help_names_the_learned_agent(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "learned AV-Nav agent shipped with avworld" in out and "'avnav' (default) or 'agsa'" in out


def test_demo_with_a_missing_checkpoint_fails_before_running(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    err = capsys.readouterr().err
    assert "DemoAgentError" in err and "no such file" in err and "avnav, agsa" in err
    assert not (tmp_path / "demo").exists()
