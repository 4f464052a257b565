"""Spatial RIRs: free field, image sources vs pyroomacoustics, occlusion, transmission, errors."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.bands import SampleRateError
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine, AcousticsError, PositionError
from avworld.acoustics.synthesis import mono_rir

from .rooms import shoebox, two_rooms

FS = 16000
C = 343.0


def test_free_field_delay_and_inverse_distance():
    """A huge, fully absorbing room is a free field for the first ~50 ms."""
    scene = shoebox((60.0, 60.0, 60.0), absorption=0.99)
    eng = AcousticEngine(scene, AcousticConfig(air_absorption=False, ism_order=1, max_rir_s=0.3))
    src = np.array([30.0, 30.0, 30.0])
    amps = []
    for r in (1.0, 2.0, 4.0, 8.0):
        lst = src + np.array([r, 0.0, 0.0])
        srir = eng.spatial_rir(src, lst)
        assert srir.order[0] == 0
        assert srir.delay_s[0] == pytest.approx(r / C, abs=1e-9)
        assert np.allclose(srir.gain[0], 1.0 / (4 * np.pi * r), rtol=1e-5)
        h = mono_rir(srir)
        peak = int(np.argmax(np.abs(h[: int(0.05 * FS)])))
        assert abs(peak - r / C * FS) <= 1.0
        # a band-limited impulse at a fractional delay spreads over a few samples; its
        # energy does not depend on the fraction
        amps.append(np.sqrt(np.sum(h[peak - 40 : peak + 40].astype(np.float64) ** 2)))
    amps = np.array(amps)
    np.testing.assert_allclose(amps * np.array([1, 2, 4, 8]), 1.0 / (4 * np.pi), rtol=0.02)


def _pra_image_sources(size, absorption, src, mic, order):
    pra = pytest.importorskip("pyroomacoustics")
    room = pra.ShoeBox(list(size), fs=FS, materials=pra.Material(absorption), max_order=order,
                       air_absorption=False, ray_tracing=False)
    room.add_source(list(src))
    room.add_microphone(np.array(mic)[:, None])
    room.image_source_model()
    s = room.sources[0]
    vis = room.visibility[0][0].astype(bool)
    d = np.linalg.norm(s.images[:, vis] - np.array(mic)[:, None], axis=0)
    damp = np.asarray(s.damping)[..., vis].reshape(-1, vis.sum())[0]
    amp = damp / (4 * np.pi * d)
    order_idx = np.argsort(d)
    return d[order_idx] / pra.constants.get("c"), amp[order_idx]


def test_shoebox_first_arrivals_match_pyroomacoustics():
    size, absorption = (6.0, 4.0, 3.0), 0.2
    src, mic = (1.5, 1.2, 1.5), (4.2, 2.5, 1.6)
    t_pra, a_pra = _pra_image_sources(size, absorption, src, mic, order=3)
    scene = shoebox(size, absorption=absorption, scattering=0.0)
    eng = AcousticEngine(scene, AcousticConfig(air_absorption=False, ism_order=3, speed_of_sound_m_s=C))
    srir = eng.spatial_rir(src, mic)
    assert len(srir.delay_s) == len(t_pra) == 1 + 6 + 18 + 38
    t_ours = srir.delay_s[:20]
    a_ours = srir.gain[:20, 3]  # uniform material: every band equal
    np.testing.assert_allclose(t_ours * FS, t_pra[:20] * FS, atol=1.0)
    np.testing.assert_allclose(20 * np.log10(a_ours), 20 * np.log10(a_pra[:20]), atol=1.0)


def test_occluded_listener_gets_only_transmission_and_door_raises_level():
    src = np.array([2.5, 3.0, 1.5])
    behind = np.array([7.5, 3.0, 1.5])  # next room, no line of sight (door at y in [0.5, 1.5])
    open_scene, closed_scene = two_rooms(door_open=True), two_rooms(door_open=False)
    cfg = AcousticConfig(air_absorption=False)
    eng_open, eng_closed = AcousticEngine(open_scene, cfg), AcousticEngine(closed_scene, cfg)
    s_open = eng_open.spatial_rir(src, behind)
    assert not s_open.has_direct_path
    direct = s_open.order == -1
    assert direct.sum() == 1
    d = np.linalg.norm(behind - src)
    # through the partition: free-field amplitude times its transmission loss (35 dB)
    np.testing.assert_allclose(s_open.gain[direct][0], 10 ** (-35 / 20) / (4 * np.pi * d), rtol=1e-4)
    # same distance with line of sight (both in the big first room along its length)
    eng_los = AcousticEngine(shoebox((10.0, 4.0, 3.0), absorption=0.2, scattering=0.2), cfg)
    e_los = np.sum(mono_rir(eng_los.spatial_rir(src, src + np.array([d, 0.0, 0.0]))) ** 2)
    e_open = np.sum(mono_rir(s_open) ** 2)
    e_closed = np.sum(mono_rir(eng_closed.spatial_rir(src, behind)) ** 2)
    assert e_open < e_los
    assert e_closed < e_open  # opening the door raises the level


def test_deterministic_samples():
    scene = shoebox(absorption=0.3, scattering=0.3)
    a = mono_rir(AcousticEngine(scene).spatial_rir((1, 1, 1.5), (4, 3, 1.2)))
    b = mono_rir(AcousticEngine(scene).spatial_rir((1, 1, 1.5), (4, 3, 1.2)))
    assert a.tobytes() == b.tobytes()


def test_positions_that_passed_are_not_probed_again_and_bad_ones_still_fail():
    eng = AcousticEngine(shoebox())
    ok = (3.0, 2.0, 1.5)
    eng.check_position(ok, "source")

    class NoRays:  # any further probe would need Embree
        scene = eng.rc.scene

        @property
        def embree(self):
            raise AssertionError("probed again")

    real, eng.rc = eng.rc, NoRays()
    eng.check_position(ok, "source")  # known: no probe
    with pytest.raises(AssertionError, match="probed again"):
        eng.check_position((3.0, 2.0, 1.4), "listener")  # a new point is probed
    eng.rc = real
    with pytest.raises(PositionError, match="inside a solid"):
        eng._check_positions([(ok, "source"), ((-0.05, 2.0, 1.5), "listener")])


def test_spatial_rir_is_small():
    scene = shoebox(absorption=0.1, scattering=0.3)
    srir = AcousticEngine(scene, AcousticConfig(max_rir_s=2.0)).spatial_rir((1, 1, 1.5), (4, 3, 1.2))
    assert srir.nbytes < 200_000


@pytest.mark.parametrize(
    "pos, match",
    [
        ((-0.05, 2.0, 1.5), "inside a solid"),
        ((3.0, 2.0, -5.0), "outside the scene"),
        ((30.0, 2.0, 1.5), "outside the scene"),
        ((np.nan, 2.0, 1.5), "finite"),
    ],
)
def test_bad_positions(pos, match):
    eng = AcousticEngine(shoebox())
    with pytest.raises(PositionError, match=match):
        eng.spatial_rir(pos, (3.0, 2.0, 1.5))
    with pytest.raises(PositionError, match=match):
        eng.spatial_rir((3.0, 2.0, 1.5), pos)


def test_bad_config():
    with pytest.raises(SampleRateError, match="unsupported sample rate"):
        AcousticConfig(sample_rate_hz=12345)
    with pytest.raises(AcousticsError, match="ism_order"):
        AcousticConfig(ism_order=9)


@pytest.mark.parametrize("fs", [44100, 48000])
def test_high_sample_rates(fs):
    scene = shoebox((60.0, 60.0, 60.0), absorption=0.99)
    eng = AcousticEngine(scene, AcousticConfig(sample_rate_hz=fs, air_absorption=False, ism_order=1, max_rir_s=0.2))
    src, r = np.array([30.0, 30.0, 30.0]), 3.0
    h = mono_rir(eng.spatial_rir(src, src + [r, 0.0, 0.0]))
    assert abs(int(np.argmax(np.abs(h))) - r / C * fs) <= 1.0
