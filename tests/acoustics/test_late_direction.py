"""Direction bins of the late field, and the disk cache keeping them."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.late_direction import NUM_SECTORS, bin_energy
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine

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
