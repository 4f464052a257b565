"""π-AVAS data: the simplified physics, seeded and resumable generation, the split, typed errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from avworld.data.synthesis import (
    SynthesisDataConfig,
    check_example,
    file_name,
    generate,
    load_split,
    read_config,
)
from avworld.data.synthesis_scenes import (
    REFERENCE_GAIN,
    Environment,
    LengthMismatchError,
    PoseOutsideSceneError,
    SampleRateMismatchError,
    SimPhysics,
    SynthesisDataError,
    guessed_material,
    simplified_scene,
)
from avworld.geometry.procedural import HouseConfig, generate_house

TINY = SynthesisDataConfig(num_envs=1, num_rooms=2, placements=2, poses_per_placement=3, clip_s=0.1, preroll_s=0.1,
                           max_distance_m=4.0)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthesis") / "data"
    generate(TINY, out, progress=False)
    return out


def test_simplified_scene_drops_furniture_and_uses_one_material():
    scene = generate_house(HouseConfig(num_rooms=3), seed=4)
    assert (scene.face_instance >= 0).any()
    simple = simplified_scene(scene, furniture=False, material="flat:0.2")
    assert (simple.face_instance < 0).all()
    assert simple.num_faces == int((scene.face_instance < 0).sum())
    assert len(simple.materials) == 1 and simple.materials[0].absorption == (0.2,) * 7
    kept = simplified_scene(scene, furniture=True, material="")
    assert kept.num_faces == scene.num_faces and kept.materials == scene.materials
    with pytest.raises(SynthesisDataError, match="absorption"):
        guessed_material("flat:1.5")


def test_free_field_level_follows_the_reference_gain():
    # one room, a listener 2 m away facing the source: the direct sound of x_sim's engine (no HRTF
    # level change straight ahead for a rigid sphere at low frequency) is 1/(4 pi 2) * 4 pi = 1/2
    env = Environment(1, 1, 16000, SimPhysics(ism_order=0, material="flat:0.99"))
    src = np.array([*env.nav.sample_navigable(np.random.default_rng(0), 1)[0], 1.5])
    for k in range(200):
        xy = env.nav.sample_navigable(np.random.default_rng(k), 1)[0]
        if abs(np.linalg.norm(xy - src[:2]) - 2.0) < 0.3:
            break
    lst = np.array([*xy, 1.5])
    d = np.linalg.norm(lst - src)
    yaw = float(np.arctan2(*(src[:2] - xy)[::-1]))
    srir = env.sim_engine.spatial_rir(src, lst)
    direct = srir.gain[srir.order == 0]
    assert len(direct) == 1
    # 125 Hz - 1 kHz bands: air absorption is tiny there
    assert np.allclose(direct[0, :4] * REFERENCE_GAIN, 1.0 / d, rtol=0.02)
    dry = np.zeros(4000)
    dry[0] = 1.0
    sim, rx = env.render(src, lst, yaw, dry)
    assert sim.shape == rx.shape == (2, 4000)


def test_generation_is_seeded_split_by_placement_and_aligned(tiny_data, tmp_path):
    files = sorted(p.name for p in tiny_data.glob("*.npz"))
    assert files == [file_name(0, 0), file_name(0, 1)]
    assert read_config(tiny_data) == TINY
    with np.load(tiny_data / file_name(0, 1)) as z:
        assert z["x_tx"].shape == (3, 1600) and z["x_sim"].shape == (3, 2, 1600) and z["x_rx"].shape == (3, 2, 1600)
        src = z["source"]
        d = np.linalg.norm(z["poses"][:, :2] - src[:2], axis=1)
        assert np.all((d >= TINY.min_distance_m) & (d <= TINY.max_distance_m))
        # source audio at its configured level over the whole clip; x_rx differs from x_sim
        assert 0.02 < float(np.sqrt(np.mean(z["x_tx"] ** 2))) < 0.5
        assert not np.allclose(z["x_sim"], z["x_rx"])
    train, test = load_split(tiny_data, "train"), load_split(tiny_data, "test")
    assert set(train["placement"]) == {0} and set(test["placement"]) == {1}
    assert len(train["x_tx"]) == len(test["x_tx"]) == 3
    assert not np.allclose(train["source"][0], test["source"][0])
    # same config, same bytes
    again = tmp_path / "again"
    generate(TINY, again, progress=False)
    for f in files:
        with np.load(tiny_data / f) as a, np.load(again / f) as b:
            for k in ("x_tx", "x_sim", "x_rx", "poses"):
                assert np.array_equal(a[k], b[k]), k


def test_generation_resumes_without_touching_written_files(tiny_data, tmp_path):
    out = tmp_path / "resume"
    out.mkdir()
    for f in tiny_data.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    keep, lost = out / file_name(0, 0), out / file_name(0, 1)
    os.utime(keep, (1_000_000, 1_000_000))
    lost.unlink()
    generate(TINY, out, progress=False)
    assert keep.stat().st_mtime == 1_000_000  # not rewritten
    with np.load(lost) as a, np.load(tiny_data / file_name(0, 1)) as b:
        assert np.array_equal(a["x_rx"], b["x_rx"])
    other = SynthesisDataConfig(**{**TINY.to_dict(), "sim": SimPhysics(), "seed": 5})
    with pytest.raises(SynthesisDataError, match="another config"):
        generate(other, out, progress=False)


def test_mismatched_lengths_and_rates_are_typed_errors():
    tx, sim, rx = np.zeros(100), np.zeros((2, 100)), np.zeros((2, 100))
    check_example(tx, sim, rx, (16000, 16000, 16000))
    with pytest.raises(LengthMismatchError, match="samples"):
        check_example(tx[:90], sim, rx)
    with pytest.raises(LengthMismatchError, match="samples"):
        check_example(tx, sim, rx[:, :99])
    with pytest.raises(LengthMismatchError, match="binaural"):
        check_example(tx, sim[:1], rx)
    with pytest.raises(SampleRateMismatchError, match="22050"):
        check_example(tx, sim, rx, (16000, 16000, 22050))


def test_pose_outside_the_scene_is_a_typed_error():
    env = Environment(2, 2, 16000, SimPhysics())
    lo, hi = env.scene.bounds
    src = np.array([*env.nav.sample_navigable(np.random.default_rng(0), 1)[0], 1.2])
    with pytest.raises(PoseOutsideSceneError, match="outside the scene"):
        env.render(src, hi + np.array([5.0, 0.0, 0.0]), 0.0, np.zeros(100))
    wall = np.array([lo[0] + 0.01, (lo[1] + hi[1]) / 2, 1.5])  # inside the outer wall
    with pytest.raises(PoseOutsideSceneError, match="walkable"):
        env.render(src, wall, 0.0, np.zeros(100))


def test_bad_config_is_typed():
    with pytest.raises(SynthesisDataError, match="placements"):
        SynthesisDataConfig(placements=1)
    with pytest.raises(SynthesisDataError, match="kinds"):
        SynthesisDataConfig(kinds=("ring",))
    with pytest.raises(SynthesisDataError, match="material"):
        SimPhysics(material="unobtainium")


def test_manifest_records_the_config(tiny_data):
    man = json.loads((tiny_data / "manifest.json").read_text())
    assert man["config"]["sim"]["hrtf"] == "spherical" and man["config"]["rx_ism_order"] == 3
