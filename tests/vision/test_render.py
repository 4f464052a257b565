import math

import numpy as np
import pytest

from avworld.geometry.builder import SceneBuilder, box_room
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Room
from avworld.geometry.semantics import SEMANTIC_ID
from avworld.vision.camera import Camera, CameraConfig, CameraError
from avworld.vision.render import OUTPUTS, Lighting, Renderer

ROOM = (4.0, 3.0, 2.5)


@pytest.fixture(scope="module")
def room():
    return box_room(ROOM)


@pytest.fixture(scope="module")
def renderer(room):
    return Renderer(room, CameraConfig(width=65, height=49, max_depth_m=20.0))


def analytic_depth(cam: Camera, pose, size=ROOM, floor_z=0.0):
    """Planar depth of every pixel inside the box [0, sx] x [0, sy] x [0, sz]."""
    x, y, yaw = pose
    o = np.array([x, y, floor_z + cam.config.height_m])
    d = cam.directions_cam.astype(np.float64)
    d = d / d[..., :1]  # forward component 1: ray parameter = planar depth
    fwd = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    w = d[..., :1] * fwd + d[..., 1:2] * right + d[..., 2:3] * np.array([0.0, 0.0, 1.0])
    best = np.full(w.shape[:-1], np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis in range(3):
            for plane in (0.0, size[axis]):
                s = (plane - o[axis]) / w[..., axis]
                best = np.where((s > 1e-9) & (s < best), s, best)
    return best


@pytest.mark.parametrize("pose", [(1.0, 1.5, 0.0), (1.0, 1.5, math.pi / 2), (3.1, 0.7, -2.3), (2.0, 1.5, math.pi)])
def test_depth_matches_analytic_box(renderer, pose):
    out = renderer.render(pose, outputs=("depth",))
    depth = out["depth"]
    assert depth.shape == (49, 65, 1) and depth.dtype == np.float32
    expected = analytic_depth(renderer.camera, pose)
    np.testing.assert_allclose(depth[..., 0], expected, atol=1e-4)


def test_depth_wall_rows_and_centre(renderer):
    depth = renderer.render((1.0, 1.5, 0.0), outputs=("depth",))["depth"][..., 0]
    # centre pixel (odd size) looks straight at the x = 4 wall, 3 m away
    assert depth[24, 32] == pytest.approx(3.0, abs=1e-4)
    # every pixel whose ray ends on the x = 4 wall reads exactly 3.0 (planar depth)
    cam = renderer.camera
    d = cam.directions_cam / cam.directions_cam[..., :1]
    on_wall = (np.abs(d[..., 1]) * 3.0 < 1.5) & (d[..., 2] * 3.0 < 1.0) & (d[..., 2] * 3.0 > -1.5)
    assert on_wall.sum() > 100
    np.testing.assert_allclose(depth[on_wall], 3.0, atol=1e-4)
    # facing +y from the same spot: the y = 3 wall is 1.5 m away
    depth = renderer.render((1.0, 1.5, math.pi / 2), outputs=("depth",))["depth"][..., 0]
    assert depth[24, 32] == pytest.approx(1.5, abs=1e-4)


def test_ray_into_room_corner(room):
    r = Renderer(room, CameraConfig(width=33, height=33))
    yaw = math.atan2(1.5, 2.0)  # from the centre toward the (4, 3) corner edge
    depth = r.render((2.0, 1.5, yaw), outputs=("depth",))["depth"][..., 0]
    assert depth[16, 16] == pytest.approx(2.5, abs=1e-4)
    np.testing.assert_allclose(depth, analytic_depth(r.camera, (2.0, 1.5, yaw)), atol=1e-4)


def test_non_square_resolution(room):
    for w, h in [(96, 40), (30, 70)]:
        r = Renderer(room, CameraConfig(width=w, height=h, hfov_deg=75))
        pose = (1.3, 1.1, 0.4)
        out = r.render(pose)
        assert out["rgb"].shape == (h, w, 3) and out["depth"].shape == (h, w, 1) and out["semantic"].shape == (h, w)
        np.testing.assert_allclose(out["depth"][..., 0], analytic_depth(r.camera, pose), atol=1e-4)


def test_depth_clipping_normalization_and_misses(room):
    pose = (1.0, 1.5, 0.0)
    ref = Renderer(room, CameraConfig(max_depth_m=20.0)).render(pose, outputs=("depth",))["depth"]
    r = Renderer(room, CameraConfig(max_depth_m=2.0, min_depth_m=1.2))
    d = r.render(pose, outputs=("depth",))["depth"]
    np.testing.assert_allclose(d, np.clip(ref, 1.2, 2.0), atol=1e-6)
    rn = Renderer(room, CameraConfig(max_depth_m=5.0, normalize_depth=True))
    dn = rn.render(pose, outputs=("depth",))["depth"]
    assert dn.min() >= 0.0 and dn.max() <= 1.0
    np.testing.assert_allclose(dn, np.minimum(ref, 5.0) / 5.0, atol=1e-6)
    # outside the room looking away: every ray misses
    out = r.render((10.0, 10.0, 0.0), outputs=("rgb", "depth", "semantic", "instance"))
    assert np.all(out["depth"] == 2.0)
    assert np.all(out["semantic"] == 0) and np.all(out["instance"] == -1) and np.all(out["rgb"] == 0)
    out = rn.render((10.0, 10.0, 0.0), outputs=("depth",))
    assert np.all(out["depth"] == 1.0)


def test_semantics_floor_ceiling_wall(renderer):
    sem = renderer.render((1.0, 1.5, 0.0), outputs=("semantic",))["semantic"]
    assert sem.dtype == np.int16 and sem.shape == (49, 65)
    assert np.all(sem[-1, 10:-10] == SEMANTIC_ID["floor"])
    assert np.all(sem[0, 10:-10] == SEMANTIC_ID["ceiling"])
    assert sem[24, 32] == SEMANTIC_ID["wall"]
    assert set(np.unique(sem)) == {SEMANTIC_ID["floor"], SEMANTIC_ID["ceiling"], SEMANTIC_ID["wall"]}


def furnished_room():
    b = SceneBuilder()
    t = 0.1
    b.add_box((-t, -t, -t), (4 + t, 3 + t, 0.0), "carpet", "floor")
    b.add_box((-t, -t, 2.5), (4 + t, 3 + t, 2.5 + t), "ceiling_plaster", "ceiling")
    b.add_box((-t, -t, 0.0), (0.0, 3 + t, 2.5), "plaster", "wall")
    b.add_box((4.0, -t, 0.0), (4 + t, 3 + t, 2.5), "brick", "wall")
    b.add_box((0.0, -t, 0.0), (4.0, 0.0, 2.5), "painted_plaster_blue", "wall")
    b.add_box((0.0, 3.0, 0.0), (4.0, 3 + t, 2.5), "painted_plaster_green", "wall")
    # a sofa on the right (-y side) when looking along +x from (0.5, 1.5)
    b.add_box((2.0, 0.2, 0.0), (3.0, 0.9, 0.8), "upholstery", "sofa", instance=0)
    b.rooms.append(Room(0, "living_room", ((0, 0), (4, 0), (4, 3), (0, 3)), 0.0, 2.5))
    return b.build()


def test_orientation_and_instances():
    scene = furnished_room()
    r = Renderer(scene, CameraConfig(width=64, height=64))
    out = r.render((0.5, 1.5, 0.0), outputs=("semantic", "instance"))
    sofa = out["semantic"] == SEMANTIC_ID["sofa"]
    assert sofa.any()
    cols = np.nonzero(sofa)[1]
    assert cols.min() >= 32  # image right = heading rotated clockwise = -y here
    np.testing.assert_array_equal(out["instance"] == 0, sofa)


def test_batch_equals_single_and_determinism(room):
    poses = np.array([(1.0, 1.5, 0.0), (2.5, 2.0, 2.0), (3.5, 0.5, -1.0)])
    r = Renderer(room, CameraConfig(width=40, height=30))
    batch = r.render_batch(poses)
    assert batch["rgb"].shape == (3, 30, 40, 3) and batch["rgb"].dtype == np.uint8
    assert batch["depth"].shape == (3, 30, 40, 1) and batch["semantic"].shape == (3, 30, 40)
    for i, p in enumerate(poses):
        single = r.render(p)
        for k in ("rgb", "depth", "semantic"):
            np.testing.assert_array_equal(batch[k][i], single[k])
    r2 = Renderer(room, CameraConfig(width=40, height=30), raycaster=RayCaster(room))
    again = r2.render_batch(poses)
    for k in ("rgb", "depth", "semantic"):
        assert again[k].tobytes() == batch[k].tobytes()
    # a (3,) pose given to render_batch is a batch of one
    assert r.render_batch(poses[0])["rgb"].shape == (1, 30, 40, 3)


def test_outputs_selection_and_errors(room):
    r = Renderer(room, CameraConfig(width=16, height=16))
    out = r.render((1, 1, 0), outputs=("depth",))
    assert list(out) == ["depth"]
    out = r.render((1, 1, 0), outputs="semantic")
    assert list(out) == ["semantic"]
    with pytest.raises(ValueError, match="outputs"):
        r.render((1, 1, 0), outputs=("normals",))
    with pytest.raises(CameraError):
        r.render(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="different scene"):
        Renderer(room, raycaster=RayCaster(box_room()))


def test_rgb_materials_and_texture():
    scene = furnished_room()
    flat = Lighting(ambient=1.0, key=0.0, headlight=0.0, falloff_per_m=0.0)
    r = Renderer(scene, CameraConfig(width=96, height=96), lighting=flat)
    out = r.render((0.5, 1.5, 0.0))
    rgb = out["rgb"].astype(float)
    sem = out["semantic"]
    floor = rgb[sem == SEMANTIC_ID["floor"]]
    wall = rgb[sem == SEMANTIC_ID["wall"]]
    sofa = rgb[sem == SEMANTIC_ID["sofa"]]
    means = [floor.mean(0), wall.mean(0), sofa.mean(0)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(means[i] - means[j]).max() > 10
    # textured carpet floor varies, flat lighting: variation is all texture
    assert floor.std(0).max() > 3.0
    # default lighting: walls facing different ways differ in brightness
    lit = Renderer(scene, CameraConfig(width=96, height=96))
    a = lit.render((2.0, 1.5, 0.0))["rgb"][48, 48].astype(int)  # brick wall x = 4 (normal -x)
    b = lit.render((2.0, 1.5, math.pi))["rgb"][48, 48].astype(int)  # plaster wall x = 0 (normal +x)
    assert a.sum() > 0 and b.sum() > 0 and not np.array_equal(a, b)


def test_texture_fixed_to_world(room):
    """With flat lighting every pixel shows the texel of its world hit point, whatever the pose."""
    flat = Lighting(ambient=1.0, key=0.0, headlight=0.0, falloff_per_m=0.0)
    r = Renderer(room, CameraConfig(width=64, height=64), lighting=flat)
    cam = r.camera
    floor_mat = room.material_index("wood_floor")
    for pose in [(1.0, 1.0, 0.3), (1.6, 1.4, -0.2), (3.0, 2.0, 2.5)]:
        out = r.render(pose)
        o, d = cam.rays(pose)
        t = out["depth"][..., 0] / cam.cos_forward
        pts = o + d * t[..., None]
        floor = out["semantic"] == SEMANTIC_ID["floor"]
        assert floor.sum() > 200
        p = pts[floor]
        expected = r.atlas.lookup(floor_mat, p[:, 0], p[:, 1])
        same = np.all(out["rgb"][floor] == expected, axis=1)
        assert same.mean() > 0.95  # a few hits within float error of a texel edge may differ


def test_threads_render_identical_images(room):
    """Blocks of rows rendered by several threads: bit-identical to one thread, batched or not."""
    poses = np.array([(1.0, 1.5, 0.3), (3.1, 0.7, -2.3), (2.0, 1.5, math.pi)])
    one = Renderer(room, CameraConfig(width=97, height=61))
    for threads in (2, 4):
        many = Renderer(room, CameraConfig(width=97, height=61), threads=threads)
        a, b = one.render_batch(poses, OUTPUTS), many.render_batch(poses, OUTPUTS)
        for k in OUTPUTS:
            assert a[k].tobytes() == b[k].tobytes(), (threads, k)
        job = many.submit(poses[1], ("rgb", "depth"))  # started on the workers; the caller joins in
        single = job.result()
        assert single["rgb"].shape == (61, 97, 3)
        assert single["depth"].tobytes() == one.render(poses[1], ("depth",))["depth"].tobytes()
    with pytest.raises(ValueError, match="threads"):
        Renderer(room, threads=0)


def test_packet_and_single_ray_paths_render_the_same_images(room, monkeypatch):
    """Embree packets in 4x4 tile order (the default where available) against embreex's single
    rays in image order: same depth and semantics, and RGB equal except at face-edge ties."""
    from avworld.geometry.spec import load_scene_spec

    house = load_scene_spec("house:2:3")
    cfg = CameraConfig(width=66, height=50)  # not a multiple of 4 in either direction
    packed = Renderer(house, cfg)
    if not packed.uses_packets:
        pytest.skip("Embree 4 packets are not available with this embreex build")
    monkeypatch.setenv("AVWORLD_EMBREE_PACKETS", "0")
    plain = Renderer(house, cfg)
    assert not plain.uses_packets
    lo = house.triangles.reshape(-1, 3).min(0)
    poses = np.array([(lo[0] + 2.0, lo[1] + 2.0, 0.3), (lo[0] + 3.0, lo[1] + 1.5, -2.0)])
    a, b = packed.render_batch(poses, OUTPUTS), plain.render_batch(poses, OUTPUTS)
    np.testing.assert_allclose(a["depth"], b["depth"], rtol=1e-5, atol=1e-5)
    same_face = a["instance"] == b["instance"]
    assert np.mean(same_face) > 0.99
    assert np.mean(a["semantic"] == b["semantic"]) > 0.99
    assert np.mean(np.all(a["rgb"] == b["rgb"], axis=-1)) > 0.98
    single = packed.render(poses[1], OUTPUTS)  # one pose or a batch: same bytes
    for k in OUTPUTS:
        assert single[k].tobytes() == a[k][1].tobytes()
    monkeypatch.delenv("AVWORLD_EMBREE_PACKETS")
    threaded = Renderer(house, cfg, threads=2)  # packets too, whatever the thread count: same bytes
    assert threaded.uses_packets
    for k, v in threaded.render_batch(poses, OUTPUTS).items():
        assert v.tobytes() == a[k].tobytes(), k
    # more yaws than the per-yaw direction cache holds (128): single frames (cached directions, evicted
    # on the way) against one batch of them all (directions computed for the batch)
    many = np.array([(lo[0] + 2.0, lo[1] + 2.0, yaw) for yaw in np.linspace(-3, 3, 140)])
    batch = packed.render_batch(many, ("rgb", "depth"))
    for j, pose in enumerate(many):
        single = packed.render(pose, ("rgb", "depth"))
        for k in ("rgb", "depth"):
            assert single[k].tobytes() == batch[k][j].tobytes(), (j, k)
    assert len(packed._dir_cache) == 128
    np.testing.assert_allclose(batch["depth"], plain.render_batch(many, ("depth",))["depth"], rtol=1e-5, atol=1e-5)
    import pickle

    copy = pickle.loads(pickle.dumps(packed))  # Embree handles are rebuilt after unpickling
    assert copy.uses_packets
    assert copy.render_batch(poses)["rgb"].tobytes() == a["rgb"].tobytes()


@pytest.mark.parametrize("w,h", [(127, 129), (66, 130)])
def test_packet_blocks_are_whole_tile_bands_and_threads_give_the_same_bytes(w, h):
    from avworld.geometry.spec import load_scene_spec

    house = load_scene_spec("house:2:3")
    cfg = CameraConfig(width=w, height=h)
    one = Renderer(house, cfg)
    if not one.uses_packets:
        pytest.skip("Embree 4 packets are not available with this embreex build")
    lo = house.triangles.reshape(-1, 3).min(0)
    poses = np.array([(lo[0] + 2.0, lo[1] + 2.0, 0.3), (lo[0] + 3.0, lo[1] + 1.5, -2.0)])
    ref = one.render_batch(poses, OUTPUTS)
    for threads in (2, 3):
        r = Renderer(house, cfg, threads=threads)
        blocks = r._pose_blocks()
        assert len(blocks) > 1
        assert blocks[0][0] == 0 and blocks[-1][1] == w * h
        assert all(b[0] % (4 * w) == 0 and b[1] > b[0] for b in blocks)  # bands of 4 rows, none empty
        assert all((b[1] - b[0]) >= 4 * w for b in blocks[:-1])
        for k, v in r.render_batch(poses, OUTPUTS).items():
            assert v.tobytes() == ref[k].tobytes(), (threads, k)


def test_unpickled_where_packets_are_unavailable_it_renders_with_single_rays(monkeypatch):
    import pickle

    from avworld.geometry.embree_packets import PacketTracer
    from avworld.geometry.spec import load_scene_spec

    house = load_scene_spec("house:2:3")
    cfg = CameraConfig(width=40, height=30)
    packed = Renderer(house, cfg)
    if not packed.uses_packets:
        pytest.skip("Embree 4 packets are not available with this embreex build")
    blob = pickle.dumps(packed)
    monkeypatch.setattr(PacketTracer, "create", classmethod(lambda cls, *a, **k: None))
    copy = pickle.loads(blob)
    assert not copy.uses_packets
    monkeypatch.setenv("AVWORLD_EMBREE_PACKETS", "0")
    plain = Renderer(house, cfg)
    lo = house.triangles.reshape(-1, 3).min(0)
    pose = (lo[0] + 2.0, lo[1] + 2.0, 0.3)
    for k, v in copy.render(pose, OUTPUTS).items():
        assert v.tobytes() == plain.render(pose, OUTPUTS)[k].tobytes(), k
