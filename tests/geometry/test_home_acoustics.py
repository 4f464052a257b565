"""Home-like acoustics of procedural houses (issue 16, item 3): soft furnishings, the
contents allowance and the ``HouseConfig.acoustic_damping`` knob."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.analysis import band_reverberation_times
from avworld.acoustics.spatial_rir import AcousticEngine
from avworld.acoustics.synthesis import mono_rir
from avworld.geometry.materials import (
    BUILTIN_MATERIALS,
    CONTENTS_SURFACES,
    NUM_BANDS,
    SOFT_MATERIALS,
    damped,
    get_material,
)
from avworld.geometry.procedural import HouseConfig, HouseConfigError, generate_house

HARD = ("plaster", "wall_tile", "tile", "wood_floor", "concrete", "marble", "ceiling_plaster", "brick")


def _room_faces(scene, room) -> np.ndarray:
    """Faces whose centre lies in the room's box (its walls' inner faces included)."""
    centres = scene.triangles.mean(axis=1)
    lo, hi = room.polygon_array.min(axis=0) - 0.02, room.polygon_array.max(axis=0) + 0.02
    return np.all((centres[:, :2] >= lo) & (centres[:, :2] <= hi), axis=1)


def test_soft_materials_have_seven_bands_and_absorb_more_than_hard_surfaces():
    hard = np.array([get_material(n).absorption for n in HARD])
    for name in SOFT_MATERIALS:
        m = BUILTIN_MATERIALS[name]
        assert len(m.absorption) == len(m.scattering) == NUM_BANDS == 7
        a = np.asarray(m.absorption)
        # 500 Hz to 4 kHz: every soft material beats every hard surface band by band
        assert np.all(a[2:6] > hard[:, 2:6].max(axis=0)), name
    assert {"rug", "drape", "sheer_curtain", "books", "towel", "carpet_underlay"} <= SOFT_MATERIALS


def test_damped_scales_soft_absorption_and_leaves_other_materials_alone():
    rug, plaster, glass = get_material("rug"), get_material("plaster"), get_material("glass")
    assert damped(rug, 1.0) is rug and damped(glass, 3.0, contents=True) is glass
    assert damped(plaster, 2.0) is plaster  # a hard surface without the contents allowance
    lo, hi = np.asarray(damped(rug, 0.5).absorption), np.asarray(damped(rug, 2.0).absorption)
    assert np.all(lo[1:] < np.asarray(rug.absorption)[1:]) and np.all(hi[1:] > np.asarray(rug.absorption)[1:])
    assert np.all(hi < 1.0)
    furnished = np.asarray(damped(plaster, 1.0, contents=True).absorption)
    assert np.all(furnished > np.asarray(plaster.absorption))
    assert damped(rug, 2.0).name == "rug" and damped(rug, 2.0).albedo == rug.albedo


def test_living_rooms_and_bedrooms_have_soft_furnishings():
    kinds: set[str] = set()
    for seed in range(5):
        scene = generate_house(HouseConfig(num_rooms=6), seed=seed)
        names = np.array([m.name for m in scene.materials])[scene.face_material]
        soft = np.isin(names, sorted(SOFT_MATERIALS))
        kinds |= set(names[soft])
        for room in scene.rooms:
            if room.room_type not in ("living_room", "bedroom"):
                continue
            faces = _room_faces(scene, room)
            area = float(scene.face_areas[faces & soft].sum())
            assert area >= 4.0, (seed, room.room_type, area)
            cats = {o.category for o in scene.objects if o.room == room.index}
            assert cats & {"sofa", "armchair", "bed"}, (seed, room.room_type, cats)
            floor = set(names[faces & (scene.triangles.mean(axis=1)[:, 2] < 0.05)])
            assert floor & {"rug", "rug_blue", "rug_beige", "carpet_underlay"}, (seed, room.room_type, floor)
    assert {"upholstery", "bedding", "books", "towel"} <= kinds
    assert kinds & {"drape", "curtain"}


def _t30_mid(scene, source, listener) -> float:
    srir = AcousticEngine(scene).spatial_rir(source, listener)
    return float(np.mean(band_reverberation_times(mono_rir(srir), srir.sample_rate_hz, (2, 3))))


def test_drier_house_has_shorter_rt60_and_the_same_geometry():
    houses = {k: generate_house(HouseConfig(num_rooms=2, acoustic_damping=k), seed=3) for k in (0.5, 1.0, 2.0)}
    ref = houses[1.0]
    for scene in houses.values():  # the knob draws no random numbers: same mesh, other absorption
        assert scene.vertices.tobytes() == ref.vertices.tobytes()
        assert scene.face_material.tobytes() == ref.face_material.tobytes()
        assert [m.name for m in scene.materials] == [m.name for m in ref.materials]
    room = next(r for r in ref.rooms if r.room_type == "living_room")
    c = room.centroid
    src, lis = np.array([c[0] - 0.8, c[1], 1.6]), np.array([c[0] + 0.8, c[1], 1.3])
    for p in (src, lis):  # clear of furniture
        for o in ref.objects:
            lo, hi = np.asarray(o.bbox_min) - 0.2, np.asarray(o.bbox_max) + 0.2
            assert not np.all((p > lo) & (p < hi)), o.category
    rt = [_t30_mid(houses[k], src, lis) for k in (0.5, 1.0, 2.0)]
    assert rt[0] > 1.1 * rt[1] > 1.21 * rt[2], rt
    assert 0.2 < rt[1] < 0.9, rt


def test_soft_and_contents_absorption_follow_the_knob():
    wet = generate_house(HouseConfig(num_rooms=4, acoustic_damping=0.5), seed=1)
    dry = generate_house(HouseConfig(num_rooms=4, acoustic_damping=2.0), seed=1)
    changed = 0
    for mw, md in zip(wet.materials, dry.materials):
        aw, ad = np.asarray(mw.absorption), np.asarray(md.absorption)
        if mw.name in SOFT_MATERIALS or mw.name in CONTENTS_SURFACES:
            assert np.all(ad > aw), mw.name
            changed += 1
        else:
            assert np.array_equal(aw, ad), mw.name
    assert changed >= 5


def test_empty_houses_get_no_rugs_and_no_contents_allowance():
    scene = generate_house(HouseConfig(num_rooms=4, furniture_density=0.0), seed=2)
    names = {m.name for m in scene.materials}
    assert not names & {"rug", "rug_blue", "rug_beige"}
    for m in scene.materials:
        if m.name in CONTENTS_SURFACES:
            assert m.absorption == get_material(m.name).absorption


@pytest.mark.parametrize("value", [0.0, 0.2, 4.5, float("nan"), "1.0", True, None])
def test_bad_acoustic_damping_names_field_and_range(value):
    with pytest.raises(HouseConfigError, match=r"acoustic_damping.*\[0\.25, 4\.0\]"):
        HouseConfig(acoustic_damping=value)


def test_same_seed_same_bytes_with_the_knob():
    cfg = HouseConfig(num_rooms=5, acoustic_damping=1.7)
    a, b = generate_house(cfg, seed=4), generate_house(cfg, seed=4)
    assert a.content_hash == b.content_hash
    assert a.vertices.tobytes() == b.vertices.tobytes()
    assert a.materials == b.materials
    assert generate_house(HouseConfig(num_rooms=5), seed=4).content_hash != a.content_hash
    assert HouseConfig(acoustic_damping=2).acoustic_damping == 2.0
