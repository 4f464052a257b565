"""π-AVAS metrics against closed forms: MAG, ENV, LRE, RT60 via deconvolution, intervals."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.eval.audio_metrics import AudioMetricError
from avworld.eval.synthesis_metrics import (
    METRICS,
    all_metrics,
    envelope_distance,
    estimate_ir,
    lr_energy_ratio,
    lre,
    mag_distance,
    mean_ci,
    paired_ci,
    rt60_error,
    rt60_from_ir,
)

SR = 16000


def _tone(amp=(1.0, 0.5), f=500.0, n=8000):
    t = np.arange(n) / SR  # 500 Hz: a whole number of periods in 8000 samples
    return np.stack([a * np.sin(2 * np.pi * f * t) for a in amp])


def test_mag_distance_identity_scaling_and_ears():
    x = _tone()
    assert mag_distance(x, x)[0] == 0.0
    silent = mag_distance(np.zeros_like(x), x)[0]
    for g in (0.5, 2.0):
        assert mag_distance(g * x, x)[0] == pytest.approx((1 - g) ** 2 * silent, rel=1e-9)
    # summed over ears: changing only the right ear adds only the right ear's term
    y = x.copy()
    y[1] = 0
    right_only = mag_distance(np.zeros((2, 8000)) + np.stack([np.zeros(8000), x[1]]), np.zeros((2, 8000)))[0]
    assert mag_distance(y, x)[0] == pytest.approx(right_only, rel=1e-9)


def test_envelope_distance_of_a_scaled_tone():
    x = _tone(amp=(1.0, 0.5))
    # the Hilbert envelope of a periodic tone is its amplitude: per ear |g - 1| * A, summed over the ears
    assert envelope_distance(0.8 * x, x)[0] == pytest.approx(0.2 * 1.0 + 0.2 * 0.5, rel=1e-6)


def test_lre_is_the_change_of_the_left_right_energy_ratio():
    x = _tone(amp=(1.0, 1.0))
    assert lr_energy_ratio(x)[0] == pytest.approx(0.0, abs=1e-9)
    y = x * np.array([[2.0], [1.0]])
    assert lre(y, x)[0] == pytest.approx(20 * np.log10(2.0), rel=1e-9)
    assert lre(x * 3.0, x)[0] == pytest.approx(0.0, abs=1e-9)


def _decaying_ir(rt60, n=8000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return rng.standard_normal((2, n)) * 10 ** (-3 * t / rt60)  # energy falls 60 dB in rt60 s


@pytest.mark.parametrize("rt60", [0.2, 0.4])
def test_rt60_of_an_exponential_decay(rt60):
    assert rt60_from_ir(_decaying_ir(rt60), SR) == pytest.approx(rt60, rel=0.08)


def _clip(tx, rt60, seed):
    h = _decaying_ir(rt60, n=6400, seed=seed)
    return np.stack([np.convolve(tx, h[c])[: len(tx)] for c in range(2)])


def test_rt60_error_through_the_estimated_impulse_response():
    rng = np.random.default_rng(1)
    tx = rng.standard_normal(8000)  # a 0.5 s clip, as in the default data
    short, short2, long = _clip(tx, 0.1, 2), _clip(tx, 0.1, 3), _clip(tx, 0.8, 2)
    # a decay shorter than the 128 ms window is measured within 25 %
    assert rt60_from_ir(estimate_ir(short[None], tx[None])[0], SR) == pytest.approx(0.1, rel=0.25)
    assert rt60_error(short[None], short[None], tx[None], SR)[0] == 0.0
    same = rt60_error(short2[None], short[None], tx[None], SR)[0]
    differ = rt60_error(long[None], short[None], tx[None], SR)[0]
    assert same < 0.05 and differ > 0.4  # another noise draw barely moves it; a longer decay does
    with pytest.raises(AudioMetricError, match="x_tx"):
        estimate_ir(short[None], tx[None, :100])


def test_all_metrics_and_shapes():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((3, 2, 4000)) * 0.1
    tx = rng.standard_normal((3, 4000))
    m = all_metrics(target * 0.5, target, tx, SR)
    assert set(m) == set(METRICS) and all(v.shape == (3,) for v in m.values())
    same = all_metrics(target, target, tx, SR)
    for k in ("mag", "env", "lre", "lsd", "ild", "itd"):
        assert np.allclose(same[k], 0.0), k
    with pytest.raises(AudioMetricError):
        mag_distance(target[:, :, :100], target)


def test_intervals():
    mean, half, n = mean_ci([1.0, 2.0, 3.0, 4.0, np.nan])
    assert (mean, n) == (2.5, 4)
    assert half == pytest.approx(1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)
    d = paired_ci([1.0, 2.0, 3.0], [0.5, 1.0, np.nan])
    assert d[0] == pytest.approx(0.75) and d[2] == 2
