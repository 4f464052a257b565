"""User-mesh import: formats, up axes, floor detection, labels, errors."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avworld.geometry.builder import box_room
from avworld.geometry.mesh_import import (
    SUPPORTED_EXTENSIONS,
    MeshImportConfig,
    MeshImportError,
    detect_floor_z,
    import_mesh,
    material_for_names,
    up_axis_rotation,
)
from avworld.geometry.raycast import RayCaster
from avworld.geometry.semantics import semantic_id
from avworld.geometry.up_axis_check import UpAxisWarning

ROOM = (4.0, 3.0, 2.5)
# z-up -> y-up (what a glTF exporter does): (x, y, z) -> (x, z, -y)
Z_TO_Y = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float)


def _room_mesh(up: str = "z") -> trimesh.Trimesh:
    s = box_room(ROOM)
    m = trimesh.Trimesh(s.vertices, s.faces, process=False)
    if up == "y":
        m.apply_transform(Z_TO_Y)
    return m


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
def test_y_up_room_in_every_format(tmp_path, ext):
    path = tmp_path / f"room{ext}"
    _room_mesh("y").export(path)
    scene = import_mesh(path, MeshImportConfig(up_axis="y"))
    assert scene.num_faces == box_room(ROOM).num_faces
    assert detect_floor_z(scene.vertices, scene.faces) == pytest.approx(0.0, abs=1e-6)
    assert scene.floor_z == pytest.approx(0.0, abs=1e-6)
    lo, hi = scene.bounds
    assert np.allclose(lo, [-0.1, -0.1, -0.1], atol=1e-5) and np.allclose(hi, [4.1, 3.1, 2.6], atol=1e-5)
    assert scene.meta["up_axis"] == "y" and scene.meta["source"] == str(path)
    labels = set(scene.face_semantic.tolist())
    assert {semantic_id("floor"), semantic_id("ceiling"), semantic_id("wall")} <= labels


def test_imported_room_can_be_raycast_onto_floor(tmp_path):
    path = tmp_path / "room.glb"
    _room_mesh("y").export(path)
    scene = import_mesh(path, MeshImportConfig(up_axis="y"))
    xy = np.array([[0.5, 0.5], [2.0, 1.5], [3.5, 2.5]])
    origins = np.c_[xy, np.full(len(xy), 1.5)]
    hits = RayCaster(scene).cast(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)))
    assert hits.hit.all()
    assert np.allclose(hits.distance, 1.5, atol=1e-4)
    assert np.all(scene.face_semantic[hits.face] == semantic_id("floor"))
    up = RayCaster(scene).cast(origins, np.tile([0.0, 0.0, 1.0], (len(xy), 1)))
    assert np.all(scene.face_semantic[up.face] == semantic_id("ceiling"))


@pytest.mark.parametrize("up", ["x", "y", "z", "-x", "-y", "-z"])
def test_every_up_axis_maps_to_plus_z(tmp_path, up):
    rot = up_axis_rotation(up)
    assert np.isclose(np.linalg.det(rot), 1.0)
    axis = {"x": 0, "y": 1, "z": 2}[up.lstrip("-")]
    src_up = np.zeros(3)
    src_up[axis] = -1.0 if up.startswith("-") else 1.0
    assert np.allclose(rot @ src_up, [0, 0, 1])
    # A room written with that up axis comes back floor-down.
    m = _room_mesh("z")
    to_src = np.eye(4)
    to_src[:3, :3] = rot.T
    m.apply_transform(to_src)
    path = tmp_path / "room.ply"
    m.export(path)
    scene = import_mesh(path, MeshImportConfig(up_axis=up))
    assert scene.floor_z == pytest.approx(0.0, abs=1e-6)


def test_scale_and_given_floor(tmp_path):
    path = tmp_path / "room_cm.obj"
    m = _room_mesh("z")
    m.apply_scale(100.0)
    m.export(path)
    scene = import_mesh(path, MeshImportConfig(scale=0.01, floor_z=0.0))
    assert np.allclose(scene.bounds[1], [4.1, 3.1, 2.6], atol=1e-6)
    assert scene.meta["floor_z_detected"] is False and scene.meta["scale"] == 0.01


def test_material_names_are_mapped(tmp_path):
    floor = trimesh.creation.box((4, 4, 0.1))
    floor.apply_translation((0, 0, -0.05))
    floor.visual = trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(name="Carpet_01"))
    sofa = trimesh.creation.box((2, 1, 0.5))
    sofa.apply_translation((0, 0, 0.25))
    sofa.visual = trimesh.visual.TextureVisuals(material=trimesh.visual.material.PBRMaterial(name="velvet"))
    blob = trimesh.creation.icosphere(radius=0.2)
    blob.apply_translation((1.5, 1.5, 0.5))
    tscene = trimesh.Scene()
    tscene.add_geometry(floor, geom_name="floor_geom")
    tscene.add_geometry(sofa, geom_name="sofa_geom")
    tscene.add_geometry(blob, geom_name="blob")
    path = tmp_path / "mats.glb"
    tscene.export(path)
    cfg = MeshImportConfig(up_axis="z", material_map=(("velvet", "bedding"),), default_material="metal")
    scene = import_mesh(path, cfg)
    names = {m.name for m in scene.materials}
    assert names == {"carpet", "bedding", "metal"}
    floor_faces = scene.face_semantic == semantic_id("floor")
    carpet = scene.material_index("carpet")
    assert floor_faces.any() and np.all(scene.face_material[floor_faces] == carpet)


def test_material_for_names_defaults():
    cfg = MeshImportConfig()
    assert material_for_names(["WoodFloor"], cfg) == "wood_floor"
    assert material_for_names(["wall_tile_white"], cfg) == "wall_tile"
    assert material_for_names(["Window.001"], cfg) == "glass"
    assert material_for_names(["mystery"], cfg) == "default"
    assert material_for_names(["floor"], MeshImportConfig(material_map=(("FLOOR", "marble"),))) == "marble"


def test_degenerate_faces_are_dropped(tmp_path):
    m = _room_mesh("z")
    v = np.vstack([m.vertices, [[1, 1, 1], [2, 2, 2], [3, 3, 3]]])  # collinear
    f = np.vstack([m.faces, [[0, 0, 1], [len(v) - 3, len(v) - 2, len(v) - 1]]])
    path = tmp_path / "degen.ply"
    trimesh.Trimesh(v, f, process=False).export(path)
    scene = import_mesh(path)
    assert scene.num_faces == len(m.faces) and len(scene.vertices) == len(m.vertices)


def test_floor_detection_ignores_stray_low_triangles():
    m = _room_mesh("z")
    v = np.vstack([m.vertices, [[1.0, 1.0, -0.8], [1.1, 1.0, -0.8], [1.0, 1.1, -0.8]]])
    f = np.vstack([m.faces, [[len(v) - 3, len(v) - 2, len(v) - 1]]])
    assert detect_floor_z(v, f) == pytest.approx(0.0, abs=1e-9)


def test_floor_detection_multi_level():
    # Two stacked slabs: the lower (larger) one is the floor, a table top is not.
    lower = trimesh.creation.box((5, 5, 0.1))
    lower.apply_translation((0, 0, 0.2 - 0.05))
    table = trimesh.creation.box((1, 1, 0.05))
    table.apply_translation((0, 0, 0.75))
    m = trimesh.util.concatenate([lower, table])
    assert detect_floor_z(m.vertices, m.faces) == pytest.approx(0.2, abs=1e-9)


# --------------------------------------------------------------------------- errors
def test_walls_and_ceiling_only_has_no_floor(tmp_path):
    s = box_room(ROOM)
    keep = s.face_normals[:, 2] < 0.5  # drop every up-facing face
    path = tmp_path / "no_floor.obj"
    trimesh.Trimesh(s.vertices, s.faces[keep], process=False).export(path)
    with pytest.raises(MeshImportError, match="no floor found.*check --up-axis"):
        import_mesh(path)


def test_wrong_up_axis_hint(tmp_path):
    # A y-up room (minus the wall sides that happen to face source +z) read as z-up: no floor.
    m = _room_mesh("y")
    keep = ~np.isclose(np.asarray(m.face_normals)[:, 2], 1.0)
    path = tmp_path / "yup.ply"
    trimesh.Trimesh(m.vertices, m.faces[keep], process=False).export(path)
    with pytest.raises(MeshImportError, match="up-axis"):
        import_mesh(path, MeshImportConfig(up_axis="z"))


@pytest.mark.parametrize("ext", SUPPORTED_EXTENSIONS)
def test_random_bytes_give_clear_error(tmp_path, ext):
    path = tmp_path / f"junk{ext}"
    path.write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(MeshImportError, match=str(path.name)):
        import_mesh(path)


@pytest.mark.parametrize("ext", [".glb", ".ply"])
def test_truncated_file(tmp_path, ext):
    path = tmp_path / f"room{ext}"
    _room_mesh("z").export(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MeshImportError, match="corrupt or truncated"):
        import_mesh(path)


def test_missing_unsupported_and_empty(tmp_path):
    with pytest.raises(MeshImportError, match="not found"):
        import_mesh(tmp_path / "nope.glb")
    (tmp_path / "mesh.fbx").write_bytes(b"x")
    with pytest.raises(MeshImportError, match=r"supported: \['.glb', '.gltf', '.obj', '.ply'\]"):
        import_mesh(tmp_path / "mesh.fbx")
    (tmp_path / "empty.obj").write_text("# nothing here\n")
    with pytest.raises(MeshImportError, match="no triangles"):
        import_mesh(tmp_path / "empty.obj")
    pts = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(10, 3))).export(pts)
    with pytest.raises(MeshImportError, match="no triangles"):
        import_mesh(pts)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"up_axis": "up"}, "up_axis"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"default_material": "unobtainium"}, "unknown material"),
        ({"material_map": (("floor", "lava"),)}, "unknown material"),
        ({"material_map": (("", "tile"),)}, "material_map"),
        ({"floor_z": float("inf")}, "floor_z"),
    ],
)
def test_bad_config(tmp_path, kwargs, match):
    path = tmp_path / "room.obj"
    _room_mesh("z").export(path)
    with pytest.raises(MeshImportError, match=match):
        import_mesh(path, MeshImportConfig(**kwargs))


def test_imported_scene_saves_and_loads(tmp_path):
    from avworld.geometry.io import load_scene, save_scene

    path = tmp_path / "room.ply"
    _room_mesh("z").export(path)
    scene = import_mesh(path)
    glb = save_scene(scene, tmp_path / "saved")
    assert load_scene(glb).content_hash == scene.content_hash
    # Our own .glb is ordinary y-up glTF: importing it with up_axis="y" gives the world back.
    again = import_mesh(glb, MeshImportConfig(up_axis="y"))
    assert np.allclose(again.vertices, scene.vertices, atol=1e-6)
    assert np.array_equal(again.face_semantic, scene.face_semantic)


def test_imported_room_navigable_area(tmp_path):
    nav = pytest.importorskip("avworld.geometry.navigation")
    path = tmp_path / "room.glb"
    _room_mesh("y").export(path)
    scene = import_mesh(path, MeshImportConfig(up_axis="y"))
    assert not scene.rooms
    cfg = nav.NavConfig()
    grid = nav.NavGrid.build(scene, cfg)
    r = cfg.agent_radius_m
    expected = (ROOM[0] - 2 * r) * (ROOM[1] - 2 * r)
    assert grid.navigable_area_m2 == pytest.approx(expected, rel=0.05)


# --------------------------------------------------------------------------- up axis: defaults and checks
def test_auto_up_axis_is_y_for_gltf_and_z_for_obj_and_ply(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UpAxisWarning)  # a correct import warns about nothing
        for ext, up in ((".glb", "y"), (".gltf", "y"), (".obj", "z"), (".ply", "z")):
            path = tmp_path / f"room{ext}"
            _room_mesh(up).export(path)
            scene = import_mesh(path)  # default config: up_axis="auto"
            assert MeshImportConfig().up_axis == "auto"
            assert scene.meta["up_axis"] == up, ext
            assert scene.floor_z == pytest.approx(0.0, abs=1e-6)
            assert np.allclose(scene.bounds[1], [4.1, 3.1, 2.6], atol=1e-5), ext


def _house_files(tmp_path, rooms: int = 3):
    import shutil

    from avworld.geometry.io import save_scene
    from avworld.geometry.procedural import HouseConfig, generate_house

    house = generate_house(HouseConfig(num_rooms=rooms), seed=3)
    glb = save_scene(house, tmp_path / "saved")
    bare = tmp_path / "bare.glb"  # avworld's .glb without its sidecar: a plain y-up glTF file
    shutil.copy(glb, bare)
    return house, glb, bare


def test_saved_avworld_scenes_load_exactly_as_before(tmp_path):
    import warnings

    from avworld.geometry.spec import load_scene_spec

    house, glb, bare = _house_files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpAxisWarning)
        for spec in (glb, glb.with_suffix(".json"), glb.parent):
            for up in ("auto", "z", "y"):  # a saved scene ignores the up axis: it is loaded exactly, z-up
                loaded = load_scene_spec(str(spec), up)
                assert loaded.content_hash == house.content_hash
                assert loaded.rooms == house.rooms
        # without its sidecar the .glb is imported as glTF (y-up): the geometry comes back standing
        imported = load_scene_spec(str(bare))
    assert imported.meta["up_axis"] == "y"
    assert np.allclose(imported.bounds, house.bounds, atol=1e-5)
    assert imported.floor_z == pytest.approx(house.floor_z, abs=0.01)  # detected: the area-weighted floor level


def test_a_house_read_on_its_side_warns_and_names_up_axis(tmp_path):
    house, _, bare = _house_files(tmp_path)
    with pytest.warns(UpAxisWarning, match=r"wider than it is tall.*--up-axis.*try --up-axis y"):
        import_mesh(bare, MeshImportConfig(up_axis="z"))  # the old default for every format
    ply = tmp_path / "house.ply"
    trimesh.Trimesh(house.vertices, house.faces, process=False).export(ply)
    with pytest.warns(UpAxisWarning, match="try --up-axis z"):
        import_mesh(ply, MeshImportConfig(up_axis="x"))


def test_an_upside_down_house_warns_from_its_navigable_area(tmp_path):
    import warnings

    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.up_axis_check import navigable_reasons, warn_if_suspect

    # (the navigable share of this house: 56 % standing, 21 % upside down; other houses upside
    # down keep up to 46 %, so not every upside-down scan is caught)
    _, _, bare = _house_files(tmp_path, rooms=4)
    good = import_mesh(bare)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpAxisWarning)
        assert warn_if_suspect(good, NavGrid.build(good, NavConfig())) == []
    with pytest.warns(UpAxisWarning, match="upside down"):  # caught at import already (furnishing)
        flipped = import_mesh(bare, MeshImportConfig(up_axis="-y"))  # the roof is now the floor
    nav = NavGrid.build(flipped, NavConfig())
    assert navigable_reasons(flipped, nav)
    with pytest.warns(UpAxisWarning, match=r"navigable area .* is only \d+ % of the floor-plan area.*--up-axis y"):
        warn_if_suspect(flipped, nav)


def test_the_floor_below_a_large_horizontal_surface_warns():
    from avworld.geometry.up_axis_check import shape_reasons

    # a big slab 1 m below the floor picked by the area rule (the floor is far larger)
    room = box_room((8.0, 8.0, 2.5))
    slab = trimesh.creation.box((3, 3, 0.02))
    slab.apply_translation((4, 4, -1.0))
    v = np.vstack([room.vertices, slab.vertices])
    f = np.vstack([room.faces, slab.faces + len(room.vertices)])
    from avworld.geometry.scene import Scene

    s = Scene(v, f, np.zeros(len(f), np.int16), room.materials[:1], np.zeros(len(f), np.int16), None,
              meta={"floor_z": 0.0, "importer": "avworld.geometry.mesh_import", "up_axis": "z"})
    assert any("not the lowest large horizontal surface" in r for r in shape_reasons(s))
    assert shape_reasons(room) == []  # the room alone: its floor slab is only 0.1 m thick


@pytest.mark.parametrize("rooms", [2, 3])
def test_an_upside_down_house_with_a_large_navigable_share_warns_from_its_furnishing(tmp_path, rooms):
    """These two houses keep > 30 % navigable upside down (the navigable-area check is silent);
    their furniture then hangs from the ceiling, which the import-time check sees."""
    import warnings

    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.up_axis_check import MAX_FURNISHING_HEIGHT, furnishing_height, navigable_reasons

    _, _, bare = _house_files(tmp_path, rooms=rooms)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UpAxisWarning)
        good = import_mesh(bare)
    assert furnishing_height(good)[0] < MAX_FURNISHING_HEIGHT - 0.05
    with pytest.warns(UpAxisWarning, match=r"hangs from the ceiling.*upside down.*--up-axis"):
        flipped = import_mesh(bare, MeshImportConfig(up_axis="-y"))
    assert furnishing_height(flipped)[0] > MAX_FURNISHING_HEIGHT + 0.05
    assert navigable_reasons(flipped, NavGrid.build(flipped, NavConfig())) == []  # the other check misses it
