"""The direction-cue features and reader of benchmarks/bench_binaural_cues.py (benchmarks/_cue_features.py).

No test here needs rlr-audio-propagation; the one touching benchmarks/rlr_reference.py skips without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _cue_features as cf  # noqa: E402

FS = 16000


def _lateral(delay_samples: int, gain_db: float, seed: int = 0, n: int = 4000) -> np.ndarray:
    """White noise reaching the right ear ``delay_samples`` later and ``gain_db`` quieter than the left."""
    s = np.random.default_rng(seed).standard_normal(n + 64)
    left = s[32 : 32 + n]
    right = 10 ** (-gain_db / 20) * s[32 - delay_samples : 32 - delay_samples + n]
    return np.stack([left, right])


@pytest.mark.parametrize("delay", [-9, -3, 0, 4, 11])
def test_gcc_phat_finds_the_interaural_delay(delay):
    x = _lateral(delay, 6.0, seed=delay + 20)
    itd = cf.gcc_phat_itd(x, FS)
    assert abs(itd * FS - delay) < 1.0
    if delay:
        assert np.sign(itd) == np.sign(delay)  # left ear leads -> positive


def test_features_give_the_level_difference_and_its_sign():
    names = cf.feature_names()
    for gain in (8.0, -5.0):
        f = cf.cue_features(_lateral(5, gain, seed=1), FS)
        assert f.shape == (len(names),) and np.all(np.isfinite(f))
        ild = f[[i for i, n in enumerate(names) if n.startswith("ild_")]]
        np.testing.assert_allclose(ild, gain, atol=0.5)  # a pure gain: the same ILD in every band
        ic = f[[i for i, n in enumerate(names) if n.startswith("ic_")]]
        assert ic.min() > 0.9  # one source, a delay of 5 samples: coherent
        assert f[names.index("gcc_phat_itd_ms")] == pytest.approx(1000 * 5 / FS, abs=1000 / FS)


def test_ipd_follows_the_delay_at_low_frequencies():
    names = cf.feature_names()
    f = cf.cue_features(_lateral(4, 0.0, seed=2), FS)
    i = names.index("cos_ipd_250")
    phase = np.arctan2(f[names.index("sin_ipd_250")], f[i])
    fc = 250 * 2 ** 0.25  # the band's geometric centre
    assert phase == pytest.approx(2 * np.pi * fc * 4 / FS, abs=0.35)  # left leads: positive phase


def test_steady_state_matches_a_full_convolution():
    rng = np.random.default_rng(3)
    rir = rng.standard_normal((2, 300)) * np.exp(-np.arange(300) / 60.0)
    dry = rng.standard_normal(1000)
    y = cf.steady_state(dry, rir, 400)
    full = np.stack([np.convolve(dry, h) for h in rir])
    np.testing.assert_allclose(y, full[:, 299:699], atol=1e-9)
    with pytest.raises(ValueError):
        cf.steady_state(dry[:500], rir, 400)


def test_part_energies_split_at_the_direct_delay():
    rir = np.zeros((2, 4000))
    rir[0, 160] = 1.0  # direct at 10 ms
    rir[1, 160 + 400] = 0.5  # early (35 ms after)
    rir[:, 160 + 1600] = 0.25  # late (100 ms after)
    e = cf.part_energies(rir, FS, 0.010)
    np.testing.assert_allclose(e["direct"], [1.0, 0.0])
    np.testing.assert_allclose(e["early"], [0.0, 0.25])
    np.testing.assert_allclose(e["late"], [0.0625, 0.0625])
    assert cf.ild_db(e["late"]) == 0.0 and cf.ild_db(np.array([10.0, 1.0])) == pytest.approx(10.0)


def _cue_dataset(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors of lateral noise bursts, label +1 when the left ear is louder and leads."""
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], n)
    x = np.stack([cf.cue_features(_lateral(int(s * rng.integers(2, 10)), float(s * rng.uniform(2, 12)),
                                           seed=int(rng.integers(1 << 30)), n=2000), FS) for s in y])
    return x, y


def test_reader_separates_separable_data_and_not_shuffled_labels():
    x_tr, y_tr = _cue_dataset(60, 0)
    x_te, y_te = _cue_dataset(60, 1)
    model = cf.fit_logistic(x_tr, y_tr)
    assert np.mean(cf.predict(model, x_te) == y_te) >= 0.97
    # labels shuffled in both sets are unrelated to the cues: the reader is at chance (n = 60: sd 0.065)
    rng = np.random.default_rng(5)
    shuffled = cf.fit_logistic(x_tr, rng.permutation(y_tr))
    assert abs(np.mean(cf.predict(shuffled, x_te) == rng.permutation(y_te)) - 0.5) < 0.2


def test_rlr_frame_mapping():
    pytest.importorskip("rlr_audio_propagation")
    import rlr_reference as rr

    q = np.array(rr.yaw_quaternion(np.pi / 2))  # facing +y: rlr's unrotated listener
    np.testing.assert_allclose(q, [1, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rr.to_rlr([1.0, 2.0, 3.0]), [1.0, 3.0, -2.0])
    assert np.linalg.det(rr.TO_RLR) == pytest.approx(1.0)  # a rotation: the mesh keeps its winding
