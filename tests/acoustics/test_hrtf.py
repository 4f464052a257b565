"""HRTFs: KEMAR / spherical-head cues (ITD, ILD, front-back), interpolation, SOFA files, errors."""

from __future__ import annotations

import time
from functools import lru_cache

import h5py
import numpy as np
import pytest
from scipy.signal import resample_poly

from avworld.acoustics import hrtf as hrtf_mod
from avworld.acoustics import sofa
from avworld.acoustics.headmodel import direction_grid, spherical_head_hrirs
from avworld.acoustics.hrtf import HRTF, SUPPORTED_SAMPLE_RATES_HZ, HRTFError, load_hrtf

SOURCES = ["kemar", "spherical"]
RATES = [16000, 44100]
LEFT, RIGHT, FRONT, BACK = (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)


def itd_ms(ir: np.ndarray, fs: int, up: int = 16) -> float:
    """Interaural time difference (> 0: the left ear leads) from the 16x upsampled cross-correlation."""
    x = resample_poly(ir.astype(np.float64), up, 1, axis=-1)
    corr = np.correlate(x[1], x[0], mode="full")
    return (int(np.argmax(corr)) - (x.shape[1] - 1)) / up / fs * 1e3


def ild_db(ir: np.ndarray) -> float:
    """Interaural level difference (> 0: the left ear is louder) from the HRIR energies."""
    e = np.sum(ir.astype(np.float64) ** 2, axis=-1)
    return float(10 * np.log10(e[0] / e[1]))


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("source", SOURCES)
def test_lateral_sources_give_itd_and_ild(source, fs):
    h = load_hrtf(source, fs)
    assert h.sample_rate_hz == fs and h.irs.dtype == np.float32 and h.irs.shape[1] == 2
    left, right = h.lookup(np.array([LEFT, RIGHT]))
    assert 0.5 <= itd_ms(left, fs) <= 0.8
    assert ild_db(left) > 6.0
    assert -0.8 <= itd_ms(right, fs) <= -0.5
    assert ild_db(right) < -6.0
    front = h.lookup(np.array([FRONT]))[0]
    assert abs(itd_ms(front, fs)) < 0.05 and abs(ild_db(front)) < 1.0


@pytest.mark.parametrize("fs", RATES)
def test_kemar_front_and_back_differ(fs):
    h = load_hrtf("kemar", fs)
    front, back = h.lookup(np.array([FRONT, BACK]))
    n = 1024
    f = np.fft.rfftfreq(n, 1.0 / fs)
    band = (f >= 1000) & (f <= 0.9 * fs / 2)
    db = [20 * np.log10(np.abs(np.fft.rfft(x[0], n))[band] + 1e-12) for x in (front, back)]
    assert np.mean(np.abs(db[0] - db[1])) > 1.5  # pinna and torso cues


def test_kemar_is_cached_and_fast_to_reload():
    h = load_hrtf("kemar", 16000)
    t0 = time.perf_counter()
    assert load_hrtf("kemar", 16000) is h
    assert time.perf_counter() - t0 < 0.01
    assert h.name == "kemar" and h.irs.shape[0] == len(h.directions) == 711  # 710 measured + south pole
    assert not h.irs.flags.writeable
    assert hash(h) == hash(h) and lru_cache(maxsize=2)(lambda x: 1)(h) == 1  # usable as a cache key


@pytest.mark.parametrize("source", SOURCES)
def test_interpolation_weights(source):
    h = load_hrtf(source, 16000)
    idx, w = h.lookup_weights(h.directions)
    np.testing.assert_array_equal(idx[np.arange(len(idx)), w.argmax(axis=1)], np.arange(len(idx)))
    assert np.all(w.max(axis=1) == 1.0)
    np.testing.assert_array_equal(h.lookup(h.directions), h.irs)  # measured directions reproduced exactly
    q = np.random.default_rng(0).normal(size=(5000, 3))
    idx, w = h.lookup_weights(q)
    assert idx.shape == w.shape == (5000, 3) and idx.dtype == np.int64
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0, atol=1e-12)
    # the weighted directions point (up to length) where the query points
    rec = np.einsum("nk,nkj->nj", w, h.directions[idx])
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(rec / np.linalg.norm(rec, axis=1, keepdims=True), qn, atol=1e-9)
    # the three weighted directions are close to the query (local interpolation)
    assert np.degrees(np.arccos(np.clip(np.einsum("nj,nkj->nk", qn, h.directions[idx]), -1, 1))).max() < 60


def test_coarse_set_with_duplicate_directions():
    """Sparse cells (padded candidate lists) and repeated directions, as in many SOFA files."""
    dirs = direction_grid(30.0)
    dirs = np.vstack([dirs, dirs[:5], np.tile([0.0, 0.0, 1.0], (3, 1))])
    _, irs = spherical_head_hrirs(16000, dirs)
    h = HRTF("coarse", 16000, dirs, irs)
    q = np.random.default_rng(4).normal(size=(20000, 3))
    idx, w = h.lookup_weights(q)
    assert np.all(w >= 0) and np.allclose(w.sum(axis=1), 1.0)
    rec = np.einsum("nk,nkj->nj", w, h.directions[idx])
    np.testing.assert_allclose(
        rec / np.linalg.norm(rec, axis=1, keepdims=True), q / np.linalg.norm(q, axis=1, keepdims=True), atol=1e-9
    )
    np.testing.assert_array_equal(h.lookup(dirs), h.irs)  # duplicates have equal responses here


def test_interpolation_between_neighbours():
    """Half way between two measured directions: ITD and third-octave levels lie between the neighbours'."""
    fs = 44100
    h = load_hrtf("kemar", fs)
    az = np.radians([30.0, 32.5, 35.0])
    ir = h.lookup(np.column_stack([np.cos(az), np.sin(az), np.zeros(3)])).astype(np.float64)
    itds = [itd_ms(x, fs) for x in ir]
    assert min(itds[0], itds[2]) - 0.01 <= itds[1] <= max(itds[0], itds[2]) + 0.01
    n = 2048
    power = np.abs(np.fft.rfft(ir, n, axis=-1)) ** 2
    f = np.fft.rfftfreq(n, 1.0 / fs)
    centres = 1000.0 * 2.0 ** (np.arange(-6, 13) / 3.0)  # 250 Hz .. 16 kHz
    bands = np.stack([power[..., (f >= c * 2 ** -(1 / 6)) & (f < c * 2 ** (1 / 6))].mean(-1) for c in centres], -1)
    level = 10 * np.log10(bands)  # (3, 2, B)
    lo, hi = np.minimum(level[0], level[2]), np.maximum(level[0], level[2])
    assert np.all(level[1] >= lo - 1.5) and np.all(level[1] <= hi + 1.5)
    # onset-aligned interpolation beats plain averaging of the HRIRs at high frequencies
    naive = 10 * np.log10(np.abs(np.fft.rfft(0.5 * (ir[0] + ir[2]), n, axis=-1)) ** 2 + 1e-30)
    ref = 0.5 * (10 * np.log10(power[0]) + 10 * np.log10(power[2]))
    hf = (f > 8000) & (f < 18000)
    err_aligned = np.mean(np.abs(10 * np.log10(power[1]) - ref)[:, hf])
    err_naive = np.mean(np.abs(naive - ref)[:, hf])
    assert err_aligned < err_naive


def test_lookup_weights_speed():
    h = load_hrtf("kemar", 16000)
    q = np.random.default_rng(1).normal(size=(300, 3))
    h.lookup_weights(q)
    t0 = time.perf_counter()
    for _ in range(20):
        h.lookup_weights(q)
    assert (time.perf_counter() - t0) / 20 < 0.005  # ~0.2 ms on a laptop core; loose for busy CI


def test_spectra_and_lookup_spectra():
    h = load_hrtf("spherical", 16000)
    s = h.spectra(256)
    assert s.shape == (len(h.directions), 2, 129) and s.dtype == np.complex64
    assert h.spectra(256) is s
    np.testing.assert_allclose(np.fft.irfft(s, 256, axis=-1)[..., : h.length], h.irs, atol=1e-6)
    sp = h.lookup_spectra(h.directions[:10], 256)
    np.testing.assert_allclose(sp, s[:10], atol=1e-5)
    with pytest.raises(ValueError, match="shorter"):
        h.spectra(h.length - 1)


def test_spherical_model_unit_dc_gain_and_symmetry():
    dirs, irs = spherical_head_hrirs(48000, direction_grid(30.0))
    np.testing.assert_allclose(irs.sum(axis=-1), 1.0, atol=0.02)  # head shadow has unit gain at DC
    mirrored = dirs * np.array([1.0, -1.0, 1.0])
    _, irs_m = spherical_head_hrirs(48000, mirrored)
    np.testing.assert_allclose(irs_m[:, ::-1], irs, atol=1e-12)


def _write_sofa(path, dirs_sph, irs, fs, cartesian=False, receivers_swapped=False, delay=None, drop=()):
    """A minimal SOFA SimpleFreeFieldHRIR file (netCDF-4 variables as HDF5 datasets)."""
    m, r = irs.shape[0], (irs.shape[1] if irs.ndim == 3 else 2)
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = "SOFA"
        f.attrs["SOFAConventions"] = "SimpleFreeFieldHRIR"
        f.attrs["DataType"] = "FIR"
        f.attrs["RoomType"] = "free field"
        for name, size in (("M", m), ("R", r), ("N", irs.shape[-1]), ("I", 1), ("C", 3), ("E", 1)):
            f.create_dataset(name, data=np.arange(size, dtype=np.float64))
        if "Data.IR" not in drop:
            f.create_dataset("Data.IR", data=irs)
        ds = f.create_dataset("Data.SamplingRate", data=np.array([float(fs)]))
        ds.attrs["Units"] = "hertz"
        f.create_dataset("Data.Delay", data=np.zeros((1, r)) if delay is None else delay)
        az, el = np.radians(dirs_sph[:, 0]), np.radians(dirs_sph[:, 1])
        if cartesian:
            pos = np.column_stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)]) * 1.5
            typ, units = "cartesian", "metre"
        else:
            pos, typ, units = np.column_stack([dirs_sph, np.full(m, 1.5)]), "spherical", "degree, degree, metre"
        ds = f.create_dataset("SourcePosition", data=pos)
        ds.attrs["Type"], ds.attrs["Units"] = typ, units
        for name, val in (("ListenerPosition", [0, 0, 0]), ("ListenerView", [1, 0, 0]), ("ListenerUp", [0, 0, 1])):
            ds = f.create_dataset(name, data=np.array([val], dtype=np.float64))
            ds.attrs["Type"], ds.attrs["Units"] = "cartesian", "metre"
        ears = np.array([[0, 0.09, 0], [0, -0.09, 0]], dtype=np.float64)[: max(r, 1)]
        if receivers_swapped:
            ears = ears[::-1]
        ds = f.create_dataset("ReceiverPosition", data=ears[:, :, None])
        ds.attrs["Type"], ds.attrs["Units"] = "cartesian", "metre"


def _grid_deg(step=30.0):
    d = direction_grid(step)
    return np.column_stack([np.degrees(np.arctan2(d[:, 1], d[:, 0])), np.degrees(np.arcsin(d[:, 2]))]), d


@pytest.mark.parametrize("cartesian", [False, True])
def test_sofa_round_trip(tmp_path, cartesian):
    sph, dirs = _grid_deg()
    irs = np.random.default_rng(2).normal(size=(len(dirs), 2, 64)) * np.exp(-np.arange(64) / 10.0)
    path = tmp_path / "set.sofa"
    _write_sofa(path, sph, irs, 16000, cartesian=cartesian)
    h = load_hrtf(str(path), 16000)
    assert h.name == "set.sofa" and h.sample_rate_hz == 16000
    np.testing.assert_allclose(h.directions, dirs, atol=1e-9)
    np.testing.assert_allclose(h.irs, irs.astype(np.float32), rtol=0, atol=0)
    h32 = load_hrtf(str(path), 32000)  # resampled 2x
    assert h32.irs.shape == (len(dirs), 2, 128)
    np.testing.assert_allclose(h32.irs[..., ::2], irs, atol=0.05 * np.abs(irs).max())


def test_sofa_receiver_order_and_delay(tmp_path):
    sph, dirs = _grid_deg()
    irs = np.zeros((len(dirs), 2, 16))
    irs[:, 0, 0], irs[:, 1, 0] = 1.0, 0.5
    path = tmp_path / "swapped.sofa"
    _write_sofa(path, sph, irs, 16000, receivers_swapped=True, delay=np.array([[0.0, 3.0]]))
    h = load_hrtf(str(path), 16000)
    assert h.irs.shape == (len(dirs), 2, 19)
    # the file's receiver 1 (y > 0) is the left ear, delayed by 3 samples
    np.testing.assert_array_equal(h.irs[:, 0, 3], 0.5)
    np.testing.assert_array_equal(h.irs[:, 1, 0], 1.0)


def test_sofa_with_pole_gap_gets_synthetic_pole(tmp_path):
    sph, dirs = _grid_deg(15.0)
    keep = sph[:, 1] >= -45.0
    _, irs = spherical_head_hrirs(16000, dirs[keep])
    path = tmp_path / "nobottom.sofa"
    _write_sofa(path, sph[keep], irs, 16000)
    h = load_hrtf(str(path), 16000)
    assert len(h.directions) == keep.sum() + 1
    np.testing.assert_allclose(h.directions[-1], [0, 0, -1])
    down = h.lookup(np.array([[0.1, 0.0, -1.0]]))[0]
    assert abs(itd_ms(down, 16000)) < 0.05


def test_bad_sources(tmp_path):
    with pytest.raises(HRTFError, match="not found"):
        load_hrtf(str(tmp_path / "missing.sofa"))
    bad = tmp_path / "text.sofa"
    bad.write_text("not a sofa file")
    with pytest.raises(HRTFError, match="not an HDF5"):
        load_hrtf(str(bad))
    sph, dirs = _grid_deg()
    irs = np.zeros((len(dirs), 2, 8))
    _write_sofa(tmp_path / "noir.sofa", sph, irs, 16000, drop=("Data.IR",))
    with pytest.raises(HRTFError, match=r"missing SOFA variable.*Data\.IR"):
        load_hrtf(str(tmp_path / "noir.sofa"))
    _write_sofa(tmp_path / "mono.sofa", sph, irs[:, :1], 16000)
    with pytest.raises(HRTFError, match="R=1 receivers"):
        load_hrtf(str(tmp_path / "mono.sofa"))
    _write_sofa(tmp_path / "flat.sofa", sph, irs[..., 0], 16000)
    with pytest.raises(HRTFError, match=r"\(M, R, N\)"):
        load_hrtf(str(tmp_path / "flat.sofa"))
    with pytest.raises(HRTFError, match="unknown HRTF source 'kemer'"):
        load_hrtf("kemer")


@pytest.mark.parametrize("rate", [8000, 44100.5, "16000", True])
def test_unsupported_sample_rate(rate):
    with pytest.raises(HRTFError, match="supported") as info:
        load_hrtf("spherical", rate)
    assert str(SUPPORTED_SAMPLE_RATES_HZ) in str(info.value)


def test_kemar_falls_back_to_spherical_without_slab(monkeypatch):
    monkeypatch.setattr(hrtf_mod, "_LOADED", {})
    monkeypatch.setattr(sofa, "kemar_data_path", lambda: None)
    with pytest.warns(RuntimeWarning, match="pip install slab"):
        h = load_hrtf("kemar", 22050)
    assert h.name == "spherical" and h.sample_rate_hz == 22050


def test_hrtf_validation():
    dirs = direction_grid(30.0)
    with pytest.raises(HRTFError, match="shape"):
        HRTF("x", 16000, dirs, np.zeros((len(dirs), 1, 8)))
    with pytest.raises(HRTFError, match="non-zero"):
        HRTF("x", 16000, np.zeros((4, 3)), np.zeros((4, 2, 8)))
    half = dirs[dirs[:, 2] > 0.1]  # directions above the horizon only
    with pytest.raises(HRTFError, match="surround"):
        HRTF("x", 16000, half, np.zeros((len(half), 2, 8))).lookup_weights(np.array([[1.0, 0, 0]]))
    h = HRTF("x", 16000, dirs, np.zeros((len(dirs), 2, 8)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        h.lookup(np.zeros((3, 2)))
