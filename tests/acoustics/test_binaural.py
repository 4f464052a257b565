"""Binaural rendering of spatial RIRs: interaural cues, yaw handling, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample

from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.late_field import yaw_weights
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.synthesis import binaural_rir, directional_tail, head_directions, rir_length

from .rooms import shoebox

FS = 16000


@pytest.fixture(scope="module")
def free_field():
    # a large, almost fully absorbing room: the first 20 ms hold only the direct sound
    scene = shoebox((30.0, 30.0, 30.0), absorption=0.99)
    return AcousticEngine(scene, AcousticConfig(air_absorption=False, ism_order=1, max_rir_s=0.3))


def _cues(b: np.ndarray, n: int = int(0.02 * FS)) -> tuple[float, float]:
    """(ITD in ms, positive when the LEFT ear leads; ILD in dB, positive when left is louder)."""
    seg = b[:, :n].astype(np.float64)
    up = 8
    left, right = resample(seg[0], n * up), resample(seg[1], n * up)
    xc = np.correlate(right, left, "full")
    itd_ms = (np.argmax(xc) - (n * up - 1)) / (FS * up) * 1e3
    ild_db = 10 * np.log10(np.sum(seg[0] ** 2) / np.sum(seg[1] ** 2))
    return itd_ms, ild_db


def _render(engine, hrtf, azimuth_deg: float, yaw: float = 0.0, elevation: float = 0.0):
    L = np.array([15.0, 15.0, 15.0])
    a, e = np.radians(azimuth_deg + np.degrees(yaw)), np.radians(elevation)
    S = L + 2.0 * np.array([np.cos(a) * np.cos(e), np.sin(a) * np.cos(e), np.sin(e)])
    return binaural_rir(engine.spatial_rir(S, L), hrtf, yaw)


@pytest.mark.parametrize("hrtf_name", ["kemar", "spherical"])
def test_left_right_cues(free_field, hrtf_name):
    hrtf = load_hrtf(hrtf_name, FS)
    itd_l, ild_l = _cues(_render(free_field, hrtf, 90.0))
    assert 0.5 <= itd_l <= 0.8 and ild_l > 3.0
    itd_r, ild_r = _cues(_render(free_field, hrtf, -90.0))
    assert -0.8 <= itd_r <= -0.5 and ild_r < -3.0
    itd_f, ild_f = _cues(_render(free_field, hrtf, 0.0))
    assert abs(itd_f) < 0.07 and abs(ild_f) < 1.0


def test_front_and_back_differ_with_kemar(free_field):
    hrtf = load_hrtf("kemar", FS)
    front, back = _render(free_field, hrtf, 0.0), _render(free_field, hrtf, 180.0)
    n = int(0.02 * FS)
    spec_f = np.abs(np.fft.rfft(front[0, :n], 512))
    spec_b = np.abs(np.fft.rfft(back[0, :n], 512))
    band = slice(int(2000 / FS * 512), int(7000 / FS * 512))
    diff_db = np.abs(20 * np.log10(spec_f[band] / spec_b[band]))
    assert diff_db.mean() > 2.0  # pinna colouring


def test_yaw_rotates_the_scene_relative_to_the_head(free_field):
    """A source straight ahead with the head turned 90 deg right sounds like a source at the left."""
    hrtf = load_hrtf("kemar", FS)
    L = np.array([15.0, 15.0, 15.0])
    srir = free_field.spatial_rir(L + [2.0, 0.0, 0.0], L)  # source on +x
    turned = binaural_rir(srir, hrtf, -np.pi / 2)  # facing -y: +x is on the left
    itd, ild = _cues(turned)
    assert itd > 0.5 and ild > 3.0
    left_source = binaural_rir(free_field.spatial_rir(L + [0.0, 2.0, 0.0], L), hrtf, 0.0)
    n = int(0.02 * FS)
    assert np.allclose(turned[:, :n], left_source[:, :n], atol=1e-6)


def test_head_frame():
    v = np.array([[0.0, 1.0, 0.0]])
    np.testing.assert_allclose(head_directions(v, 0.0), [[0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(head_directions(v, np.pi / 2), [[1, 0, 0]], atol=1e-12)  # +y ahead after turning left


def test_binaural_deterministic_and_yaw_only_does_not_resimulate():
    scene = shoebox((6.0, 4.0, 3.0), absorption=0.3, scattering=0.4)
    eng = AcousticEngine(scene)
    hrtf = load_hrtf("kemar", FS)
    srir = eng.spatial_rir((1.0, 1.0, 1.5), (4.0, 3.0, 1.5))
    a, b = binaural_rir(srir, hrtf, 0.3), binaural_rir(srir, hrtf, 0.3)
    assert a.tobytes() == b.tobytes()
    traces = len(eng._traces)
    c = binaural_rir(srir, hrtf, 1.3)
    assert len(eng._traces) == traces and not np.allclose(a, c)
    # the late field turns with the head, but a new yaw only re-mixes the position's rendered components
    n = rir_length(srir)
    field = directional_tail(srir, hrtf, n)
    tail_start = int((srir.delay_s.max() + 0.03) * FS)
    assert not np.allclose(a[:, tail_start:], c[:, tail_start:], atol=1e-6)
    assert directional_tail(srir, hrtf, n) is field
    R = 2 * srir.late_order + 1
    w = yaw_weights(srir.late_order, 1.3)
    np.testing.assert_allclose(c[:, tail_start:], np.stack([w @ field.components[:R], w @ field.components[R:]])
                               [:, tail_start:], atol=1e-6)


def test_hrtf_rate_mismatch_is_an_error():
    eng = AcousticEngine(shoebox(), AcousticConfig(sample_rate_hz=16000))
    srir = eng.spatial_rir((1.0, 1.0, 1.5), (4.0, 3.0, 1.5))
    with pytest.raises(ValueError, match="sample rate"):
        binaural_rir(srir, load_hrtf("kemar", 44100), 0.0)


def test_onsets_referenced_to_the_head_centre(free_field):
    """Frontal sound reaches both ears at d/c; from the side the near ear leads by ~ITD/2."""
    hrtf = load_hrtf("kemar", FS)
    d_samples = 2.0 / 343.0 * FS
    front = np.abs(_render(free_field, hrtf, 0.0)).max(axis=0)
    assert abs(int(np.argmax(front > 0.3 * front.max())) - d_samples) <= 2
    left = np.abs(_render(free_field, hrtf, 90.0))
    near = int(np.argmax(left[0] > 0.3 * left[0].max()))
    lead_ms = (d_samples - near) / FS * 1e3
    assert 0.1 <= lead_ms <= 0.5, lead_ms
