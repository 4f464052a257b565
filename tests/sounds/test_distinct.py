"""The built-in types are distinct: simple classifiers tell speakers, instruments and backgrounds apart."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.features import mel_filterbank
from avworld.sounds import SoundBank

FS = 16000


def frames(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    m = 1 + (x.size - n) // hop
    return x[np.arange(n)[None, :] + hop * np.arange(m)[:, None]]


def speaker_features(x: np.ndarray, fs: int) -> np.ndarray:
    """Long-term spectral shape of the voiced frames (24 log-mel bands up to 4 kHz) + median F0 (autocorrelation)."""
    n = int(2 ** np.ceil(np.log2(0.05 * fs)))
    fr = frames(x.astype(np.float64), n, n // 2) * np.hanning(n)
    power = np.abs(np.fft.rfft(fr, axis=1)) ** 2
    ac = np.fft.irfft(np.abs(np.fft.rfft(fr, 2 * n, axis=1)) ** 2, axis=1)[:, :n]
    lo, hi = int(fs / 400), int(fs / 60)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    periodicity = ac[np.arange(len(ac)), lag] / (ac[:, 0] + 1e-12) * n / (n - lag)
    energy = power.sum(axis=1)
    voiced = (periodicity > 0.6) & (energy > energy.max() * 1e-3)
    assert voiced.sum() > 20
    lm = np.log(power[voiced] @ mel_filterbank(fs, n, 24, 100.0, 4000.0).T + 1e-12)
    lm -= lm.mean(axis=1, keepdims=True)  # spectral shape, not level
    return np.concatenate([lm.mean(axis=0), [10.0 * np.median(np.log(fs / lag[voiced]))]])


def texture_features(x: np.ndarray, fs: int) -> np.ndarray:
    """Mean and spread of the log-mel spectral shape over active frames, onset flux, activity."""
    n = int(2 ** np.ceil(np.log2(0.032 * fs)))
    power = np.abs(np.fft.rfft(frames(x.astype(np.float64), n, n // 2) * np.hanning(n), axis=1)) ** 2
    lm = np.log(power @ mel_filterbank(fs, n, 40, 50.0, 7000.0).T + 1e-10)
    level = np.log(power.sum(axis=1) + 1e-12)
    active = level > level.max() - 12
    shape = lm[active] - level[active, None]
    flux = np.maximum(np.diff(level), 0).mean()
    return np.concatenate([shape.mean(axis=0), shape.std(axis=0), [flux, np.log(active.mean() + 1e-3)]])


def nearest_centroid_accuracy(train: np.ndarray, test: np.ndarray, scale: np.ndarray | None = None) -> float:
    """train (K, D) one centroid per class, test (K, D): fraction of test rows nearest their own centroid."""
    s = np.ones(train.shape[1]) if scale is None else scale
    d = np.linalg.norm((test[:, None, :] - train[None, :, :]) / s, axis=-1)
    return float(np.mean(np.argmin(d, axis=1) == np.arange(len(test))))


@pytest.fixture(scope="module")
def bank():
    return SoundBank(sample_rate_hz=FS, num_speakers=24)


def test_speakers_are_recognizable(bank):
    """Nearest centroid on clip 0 of 24 speakers classifies their clip 1 (10 s each) at >= 90 %."""
    names = bank.names(kind="speech")
    assert len(names) == 24
    feats = np.array([[speaker_features(bank.clip(n, i, duration_s=10.0), FS) for i in (0, 1)] for n in names])
    acc = nearest_centroid_accuracy(feats[:, 0], feats[:, 1])
    assert acc >= 0.9, acc
    # and the F0 a listener would hear follows the speaker's parameter
    f0 = np.exp(feats[:, 0, -1] / 10.0)
    nominal = np.array([bank.get(n).param_dict["f0_hz"] for n in names])
    assert np.corrcoef(np.log(f0), np.log(nominal))[0, 1] > 0.95


@pytest.mark.parametrize("kind", ["music", "background"])
def test_music_and_background_types_are_distinct(bank, kind):
    """Every type is nearer to its own other clips than the other types are (nearest centroid, 12 s clips)."""
    names = bank.names(kind=kind)
    feats = np.array([[texture_features(bank.clip(n, i, duration_s=12.0), FS) for i in (0, 1, 2)] for n in names])
    centroids = feats[:, :2].mean(axis=1)
    scale = centroids.std(axis=0) + 1e-9
    acc = nearest_centroid_accuracy(centroids, feats[:, 2], scale)
    assert acc >= 0.9, acc
    # pairwise: the distance between two types' centroids exceeds the spread within a type
    d = np.linalg.norm((centroids[:, None] - centroids[None]) / scale, axis=-1)
    within = np.linalg.norm((feats[:, 0] - feats[:, 1]) / scale, axis=-1)
    off = d[~np.eye(len(names), dtype=bool)]
    assert off.min() > 0.5 * np.median(within)
    assert np.median(off) > 2.0 * np.median(within)
