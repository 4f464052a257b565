"""Scene save/load: exact round trips and one typed error per failure mode."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from avworld.geometry.builder import SceneBuilder, box_room
from avworld.geometry.io import (
    SCENE_SCHEMA_VERSION,
    CorruptSceneFileError,
    MissingSceneFileError,
    NotASceneFileError,
    SceneChecksumError,
    SceneCountMismatchError,
    SceneFormatError,
    UnsupportedSchemaVersionError,
    decode_array,
    encode_array,
    glb_topology,
    load_scene,
    save_scene,
)
from avworld.geometry.materials import Material
from avworld.geometry.scene import Door, Room, Scene, SceneObject

ARRAYS = ("vertices", "faces", "face_material", "face_semantic", "face_instance")


def _assert_identical(a: Scene, b: Scene) -> None:
    assert b.content_hash == a.content_hash
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), name
    assert b.materials == a.materials
    assert b.rooms == a.rooms
    assert b.doors == a.doors
    assert b.objects == a.objects
    assert json.dumps(b.metadata_dict(), sort_keys=True) == json.dumps(a.metadata_dict(), sort_keys=True)


def _furnished_scene() -> Scene:
    """Two rooms, a door, a table (instance 0), non-round coordinates and an inf TL."""
    b = SceneBuilder()
    b.add_box((-0.1, -0.1, -0.1), (6.1, 3.1, 0.0), "tile", "floor")
    b.add_box((2.95, 0.0, 0.0), (3.05, 3.0, 2.4), "plaster", "wall", skip=("bottom",))
    b.add_box((1.0 / 3, 0.7, 0.0), (1.0 + math.pi / 10, 1.3, 0.75), "wood_furniture", "table", instance=0)
    wall = Material("odd_wall", (0.1, 0.2, 0.3), (0.1,) * 7, (0.2,) * 7, (float("inf"),) * 7, secondary=(0.5, 0.5, 0.5))
    b.add_quad([(0.0, 0.0, 0.0), (0.0, 3.0, 0.0), (0.0, 3.0, 2.4), (0.0, 0.0, 2.4)], wall, "wall")
    b.add_triangles(np.random.default_rng(0).normal(size=(3, 3)), [[0, 1, 2]], "metal", "object", instance=1)
    b.rooms += [
        Room(0, "living_room", ((0.0, 0.0), (2.95, 0.0), (2.95, 3.0), (0.0, 3.0)), 0.0, 2.4),
        Room(1, "kitchen", ((3.05, 0.0), (6.0, 0.0), (6.0, 3.0), (3.05, 3.0)), 0.0, 2.4),
    ]
    b.doors.append(Door(0, (3.0, 1.5), (1.0, 0.0), 0.9, 2.1, 0.1, (0, 1), is_open=False))
    b.objects += [
        SceneObject(0, "table", (1.0 / 3, 0.7, 0.0), (1.0 + math.pi / 10, 1.3, 0.75), room=0, yaw_deg=12.5),
        SceneObject(1, "object", (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0)),
    ]
    return b.build(meta={"generator": "test", "seed": 7, "tags": ["a", "b"], "nested": {"x": 0.1, "big": 1e300}})


# --------------------------------------------------------------------------- round trips
def test_box_room_round_trip_to_directory(tmp_path):
    scene = box_room()
    glb = save_scene(scene, tmp_path / "out")
    assert glb == tmp_path / "out" / "scene.glb"
    assert (tmp_path / "out" / "scene.json").is_file()
    for p in (tmp_path / "out", glb, glb.with_suffix(".json")):
        _assert_identical(scene, load_scene(p))


def test_furnished_scene_round_trip_is_bit_exact(tmp_path):
    scene = _furnished_scene()
    glb = save_scene(scene, tmp_path / "house.glb")
    assert glb.name == "house.glb" and (tmp_path / "house.json").is_file()
    loaded = load_scene(glb)
    _assert_identical(scene, loaded)
    assert loaded.doors[0].is_open is False
    assert loaded.materials[loaded.material_index("odd_wall")].transmission_loss_db[0] == float("inf")


def test_sidecar_is_strict_json_with_documented_fields(tmp_path):
    scene = _furnished_scene()
    save_scene(scene, tmp_path, name="s1")
    text = (tmp_path / "s1.json").read_text()
    doc = json.loads(text, parse_constant=lambda tok: pytest.fail(f"non-strict JSON token {tok}"))
    assert doc["format"] == "avworld-scene"
    assert doc["schema_version"] == SCENE_SCHEMA_VERSION == 1
    assert doc["content_hash"] == scene.content_hash
    assert doc["counts"]["vertices"] == len(scene.vertices) and doc["counts"]["faces"] == scene.num_faces
    for key in ("materials", "rooms", "doors", "objects", "meta", "glb_sha256", "glb_file"):
        assert key in doc
    assert set(doc["arrays"]) == {"vertices", "face_material", "face_semantic", "face_instance"}


def test_glb_holds_exact_topology_and_opens_with_trimesh(tmp_path):
    import trimesh

    scene = _furnished_scene()
    glb = save_scene(scene, tmp_path)
    verts32, faces = glb_topology(glb.read_bytes())
    assert np.array_equal(faces, scene.faces)
    assert np.array_equal(verts32, scene.vertices.astype(np.float32))
    # A generic viewer applies the node transform: z-up world -> glTF y-up.
    generic = trimesh.load(str(glb), force="mesh")
    assert np.allclose(generic.bounds[:, 1], scene.bounds[:, 2], atol=1e-5)


def test_procedural_house_round_trip(tmp_path):
    procedural = pytest.importorskip("avworld.geometry.procedural")
    scene = procedural.generate_house(procedural.HouseConfig(num_rooms=4), seed=1)
    _assert_identical(scene, load_scene(save_scene(scene, tmp_path)))


@pytest.mark.parametrize(
    ("arr", "dtype"),
    [
        (np.array([3, 3, 3, 1, 1, 2] * 10, np.int16), "<i2"),
        (np.arange(100, dtype=np.int32) - 50, "<i4"),
        (np.random.default_rng(1).normal(size=(17, 3)), "<f8"),
    ],
)
def test_array_codec_round_trip(arr, dtype):
    out = decode_array(json.loads(json.dumps(encode_array(arr, dtype))))
    assert out.dtype == np.dtype(dtype) and np.array_equal(out, arr)


# --------------------------------------------------------------------------- errors
@pytest.fixture
def saved(tmp_path):
    glb = save_scene(box_room(), tmp_path)
    return glb, glb.with_suffix(".json")


def _edit_sidecar(json_path, **changes):
    doc = json.loads(json_path.read_text())
    doc.update(changes)
    json_path.write_text(json.dumps(doc))


def test_missing_files(tmp_path, saved):
    glb, side = saved
    with pytest.raises(MissingSceneFileError, match="no such scene"):
        load_scene(tmp_path / "nope")
    with pytest.raises(MissingSceneFileError, match="sidecar not found"):
        load_scene(tmp_path / "other.glb")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingSceneFileError, match="no scene sidecar"):
        load_scene(tmp_path / "empty")
    glb.unlink()
    with pytest.raises(MissingSceneFileError, match=r"scene\.glb"):
        load_scene(side)


def test_ambiguous_directory(tmp_path):
    save_scene(box_room(), tmp_path, name="a")
    _assert_identical(box_room(), load_scene(tmp_path))  # the only sidecar is found
    save_scene(box_room(), tmp_path, name="b")
    with pytest.raises(SceneFormatError, match="several .json files"):
        load_scene(tmp_path)


def test_corrupt_json(saved):
    _, side = saved
    side.write_text(side.read_text()[:200])
    with pytest.raises(CorruptSceneFileError, match="not valid JSON"):
        load_scene(side)


def test_nan_token_in_json_is_rejected(saved):
    _, side = saved
    side.write_text(side.read_text().replace('"schema_version": 1', '"schema_version": 1, "x": NaN'))
    with pytest.raises(CorruptSceneFileError, match="NaN"):
        load_scene(side)


def test_corrupt_glb_with_valid_checksum(saved):
    import hashlib

    glb, side = saved
    junk = np.random.default_rng(0).bytes(500)
    glb.write_bytes(junk)
    _edit_sidecar(side, glb_sha256=hashlib.sha256(junk).hexdigest())
    with pytest.raises(CorruptSceneFileError, match="not a readable GLB"):
        load_scene(side)


def test_tampered_glb_fails_checksum(saved):
    glb, _ = saved
    data = bytearray(glb.read_bytes())
    data[-5] ^= 0xFF
    glb.write_bytes(bytes(data))
    with pytest.raises(SceneChecksumError, match="SHA-256"):
        load_scene(glb)


def test_edited_sidecar_fails_content_hash(saved):
    _, side = saved
    doc = json.loads(side.read_text())
    doc["rooms"][0]["room_type"] = "kitchen"
    side.write_text(json.dumps(doc))
    with pytest.raises(SceneChecksumError, match="content hash"):
        load_scene(side)


def test_wrong_format(saved, tmp_path):
    _, side = saved
    _edit_sidecar(side, format="something-else")
    with pytest.raises(NotASceneFileError, match="something-else"):
        load_scene(side)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(NotASceneFileError):
        load_scene(tmp_path / "list.json")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unsupported_schema_version(saved, version):
    _, side = saved
    _edit_sidecar(side, schema_version=version)
    with pytest.raises(UnsupportedSchemaVersionError, match=r"reads schema versions \[1\]"):
        load_scene(side)


def test_count_mismatch(saved):
    _, side = saved
    doc = json.loads(side.read_text())
    doc["counts"]["faces"] += 1
    side.write_text(json.dumps(doc))
    with pytest.raises(SceneCountMismatchError, match="faces"):
        load_scene(side)


def test_mismatched_pair_detected(tmp_path):
    save_scene(box_room(), tmp_path / "a")
    save_scene(_furnished_scene(), tmp_path / "b")
    (tmp_path / "a" / "scene.glb").write_bytes((tmp_path / "b" / "scene.glb").read_bytes())
    other_sha = json.loads((tmp_path / "b" / "scene.json").read_text())["glb_sha256"]
    _edit_sidecar(tmp_path / "a" / "scene.json", glb_sha256=other_sha)
    with pytest.raises(SceneCountMismatchError, match="different scenes"):
        load_scene(tmp_path / "a")


def test_bad_array_data(saved):
    _, side = saved
    doc = json.loads(side.read_text())
    doc["arrays"]["vertices"]["data"] = "not base64!!"
    side.write_text(json.dumps(doc))
    with pytest.raises(CorruptSceneFileError, match="vertices"):
        load_scene(side)


def test_missing_field(saved):
    _, side = saved
    doc = json.loads(side.read_text())
    del doc["rooms"]
    side.write_text(json.dumps(doc))
    with pytest.raises(CorruptSceneFileError, match="rooms"):
        load_scene(side)


def test_bad_save_path_and_all_errors_are_value_errors(tmp_path):
    with pytest.raises(SceneFormatError, match="pass a directory or a path ending in .glb"):
        save_scene(box_room(), tmp_path / "scene.obj")
    for cls in (MissingSceneFileError, CorruptSceneFileError, SceneChecksumError, NotASceneFileError,
                UnsupportedSchemaVersionError, SceneCountMismatchError):
        assert issubclass(cls, SceneFormatError) and issubclass(cls, ValueError)
