"""Direction of the late field: binning, gains per ear, and sound entering a room through its door."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.late_direction import ISOTROPIC, NUM_SECTORS, bin_energy, tail_gains
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.synthesis import binaural_parts
from avworld.geometry.scene import Room

from .rooms import two_rooms


@pytest.fixture(scope="module")
def hrtf():
    return load_hrtf("kemar", 16000)


def test_bins_take_the_arrival_azimuth_and_split_off_the_vertical_part():
    el = np.radians(30.0)
    arrive = np.array([[0.0, 1.0, 0.0],  # from +y (90 deg): sector 2
                       [-1.0, 0.0, 0.0],  # from -x (180 deg): sector 4
                       [np.cos(el), 0.0, np.sin(el)],  # 30 deg up from +x: 3/4 sector 0, 1/4 vertical
                       [0.0, 0.0, -1.0]])  # from below: vertical only
    energy = np.tile(np.arange(1.0, 5.0)[:, None], (1, 7))  # contribution i carries energy i + 1 in every band
    e = bin_energy(arrive, energy)
    assert e.shape == (7, NUM_SECTORS + 1)
    np.testing.assert_allclose(e[:, 2], 1.0)
    np.testing.assert_allclose(e[:, 4], 2.0)
    np.testing.assert_allclose(e[:, 0], 3.0 * 0.75)
    np.testing.assert_allclose(e[:, NUM_SECTORS], 3.0 * 0.25 + 4.0)
    np.testing.assert_allclose(e.sum(axis=1), 10.0)  # energy is conserved


def test_isotropic_field_keeps_the_tail_and_a_lateral_one_favours_the_near_ear(hrtf):
    iso = np.tile(ISOTROPIC, (7, 1))
    for yaw in (0.0, 0.7, -2.0):
        np.testing.assert_allclose(tail_gains(iso, hrtf, yaw), 1.0, atol=1e-6)
    assert tail_gains(None, hrtf, 0.3) is None
    left = np.zeros((7, NUM_SECTORS + 1))
    left[:, 2] = 1.0  # everything arrives from world +y, the left of a head at yaw 0
    g = tail_gains(left, hrtf, 0.0)
    ild_db = 20 * np.log10(g[0] / g[1])
    assert np.all(ild_db[3:] > 6.0)  # 1-8 kHz: the head's shadow, ~10-20 dB for a lateral source
    assert ild_db[6] > ild_db[0] + 3.0  # more at high frequencies than at 125 Hz
    g_turned = tail_gains(left, hrtf, np.pi)  # facing -x: +y is now on the right
    np.testing.assert_allclose(20 * np.log10(g_turned[1] / g_turned[0]), ild_db, atol=2.5)  # KEMAR is near-symmetric


ROOMS = (Room(0, "a", ((0, 0), (5, 0), (5, 4), (0, 4)), 0.0, 3.0),
         Room(1, "b", ((5.15, 0), (10, 0), (10, 4), (5.15, 4)), 0.0, 3.0))


@pytest.mark.parametrize("receiver", ["sphere", "box"])
def test_sound_through_a_door_arrives_from_the_door_side(hrtf, receiver):
    """Source in one room, listener in the next: the late energy arrives from the doorway's side, so
    the tail is louder in the ear facing the door, and the ears swap when the head turns round.
    Without room outlines the engine's receiver is a sphere at the listener, with them the room's box."""
    cfg = AcousticConfig(max_rir_s=0.6, air_absorption=False, directional_tail=True)
    scene = two_rooms(door_open=True)
    if receiver == "box":
        scene = dataclasses.replace(scene, rooms=ROOMS)
    eng = AcousticEngine(scene, cfg)
    assert (eng._room_box(np.array([7.5, 1.0, 1.5])) is not None) == (receiver == "box")
    src, ear = np.array([2.0, 3.0, 1.5]), np.array([7.5, 1.0, 1.5])  # door in the wall x = 5..5.15, y 0.5-1.5
    srir = eng.spatial_rir(src, ear)
    assert srir.tail_dir is not None and srir.tail_dir.shape == (7, NUM_SECTORS + 1)
    np.testing.assert_allclose(srir.tail_dir.sum(axis=1), 1.0, rtol=1e-5)
    centres = np.radians(45.0 * np.arange(NUM_SECTORS))
    f = srir.tail_dir[3, :NUM_SECTORS]  # 1 kHz
    mean_x = float(np.dot(f, np.cos(centres)))
    # net arrival from -x, where the door is; a room's box averages the flux over the room (weaker)
    assert mean_x < (-0.2 if receiver == "sphere" else -0.08)  # measured -0.38 / -0.16

    def late_ild(yaw: float) -> float:
        _, _, tail = binaural_parts(srir, hrtf, yaw)
        e = np.mean(tail[:, int(0.05 * 16000):] ** 2, axis=1)
        return float(10 * np.log10(e[0] / e[1]))

    # facing +y the door (-x) is on the left; facing -y it is on the right
    need = 1.5 if receiver == "sphere" else 0.5  # measured +2.9 / -3.5 dB (sphere), +1.0 / -1.8 dB (box)
    assert late_ild(np.pi / 2) > need and late_ild(-np.pi / 2) < -need
    iso = AcousticEngine(scene, dataclasses.replace(cfg, directional_tail=False))
    assert AcousticConfig().directional_tail is False  # experimental: off by default
    flat = iso.spatial_rir(src, ear)
    assert flat.tail_dir is None
    np.testing.assert_array_equal(flat.tail, srir.tail)  # the direction changes the tail's balance, not its energy
    t0, t1 = binaural_parts(flat, hrtf, 0.3)[2], binaural_parts(flat, hrtf, 1.9)[2]
    assert t0 is t1  # isotropic: one tail for every yaw


def test_disk_cache_keeps_the_tail_direction(tmp_path):
    from avworld.acoustics.cache import RIRCache

    for directional in (True, False):
        eng = AcousticEngine(two_rooms(door_open=True), AcousticConfig(max_rir_s=0.3, directional_tail=directional))
        first = RIRCache(eng, directory=tmp_path).get([2.0, 3.0, 1.5], [7.5, 1.0, 1.5])
        again = RIRCache(eng, directory=tmp_path)
        loaded = again.get([2.0, 3.0, 1.5], [7.5, 1.0, 1.5])
        assert again.disk_hits == 1
        if directional:
            np.testing.assert_array_equal(loaded.tail_dir, first.tail_dir)
        else:
            assert first.tail_dir is None and loaded.tail_dir is None
