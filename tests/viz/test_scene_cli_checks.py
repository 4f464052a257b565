"""`avworld render` / `scene show` / `rir`: pose checks, the up-axis default and its warnings."""

from __future__ import annotations

import shutil

import pytest

from avworld.cli import build_parser, main
from avworld.geometry.io import save_scene
from avworld.geometry.procedural import HouseConfig, generate_house


def _sub_help(*names: str) -> str:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    sub = action.choices[names[0]]
    for name in names[1:]:
        sub = next(a for a in sub._actions if a.dest == "scene_command").choices[name]
    return sub.format_help()


def test_render_refuses_a_camera_inside_a_wall_unless_allowed(tmp_path, capsys):
    argv = ["render", "house:3:4", "--pose", "0,0,0", "--width", "16", "--height", "16", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "avworld: error: CameraPoseError: --pose 0,0,0 (0, 0, 0 deg; camera at z=1.50 m) is inside a solid" in err
    assert "--allow-inside" in err and not (tmp_path / "rgb_0.png").exists()
    assert main(["render", "house:3:4", "--pose", "50,1,0", "--out", str(tmp_path)]) == 2
    assert "outside the scene" in capsys.readouterr().err
    assert main([*argv, "--allow-inside"]) == 0  # today's behaviour, on request
    assert (tmp_path / "rgb_0.png").exists()


def test_render_pose_is_required_and_up_axis_defaults_to_auto(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["render", "house:1", "--out", "o"])
    assert exc.value.code == 2
    assert "the following arguments are required: --pose" in capsys.readouterr().err
    text = " ".join(_sub_help("render").split())
    assert "--pose POSE" in text.split("options:")[0] and "[--pose" not in text.split("options:")[0]
    minimal = {("render",): ["--pose", "1,1,0"], ("rir",): ["--source", "1,1,1", "--listener", "1,1,1,0"],
               ("scene", "show"): []}
    for names, extra in minimal.items():
        text = " ".join(_sub_help(*names).split())
        assert "auto (default: y for .glb/.gltf, as glTF specifies; z for .obj/.ply)" in text, names
        assert build_parser().parse_args([*names, "scene.glb", "--out", "o", *extra]).up_axis == "auto"


def test_scene_show_prints_the_navigable_area_and_warns_about_a_wrong_up_axis(tmp_path, capsys):
    glb = save_scene(generate_house(HouseConfig(num_rooms=4), seed=3), tmp_path / "saved")
    bare = tmp_path / "bare.glb"  # the .glb without its sidecar: a y-up glTF file
    shutil.copy(glb, bare)
    show = ["scene", "show", "--views", "1", "--size", "16"]
    assert main([*show, str(glb), "--out", str(tmp_path / "a")]) == 0
    out, err = capsys.readouterr()
    assert "navigable area: 36.9 m^2 (56 % of the 66.1 m^2 floor plan)" in out and "warning" not in err
    assert main([*show, str(bare), "--out", str(tmp_path / "b")]) == 0  # auto: y-up, the same house
    out, err = capsys.readouterr()
    assert "navigable area: 36.9 m^2" in out and "warning" not in err
    assert main([*show, str(bare), "--up-axis", "z", "--out", str(tmp_path / "c")]) == 0  # the old default
    out, err = capsys.readouterr()
    assert "avworld: warning: UpAxisWarning:" in err and "try --up-axis y" in err
    assert "navigable area: 8.8 m^2" in out
    assert main([*show, str(bare), "--up-axis=-y", "--out", str(tmp_path / "d")]) == 0  # upside down
    assert "navigable area (14.1 m^2) is only 21 % of the floor-plan area" in capsys.readouterr().err


def test_rir_prints_the_up_axis_warning(tmp_path, capsys):
    glb = save_scene(generate_house(HouseConfig(num_rooms=4), seed=3), tmp_path / "saved")
    bare = tmp_path / "bare.glb"
    shutil.copy(glb, bare)
    main(["rir", str(bare), "--up-axis", "z", "--source", "1,1,1", "--listener", "2,2,1,0", "--out", str(tmp_path)])
    assert "avworld: warning: UpAxisWarning:" in capsys.readouterr().err
