"""Built-in sound bank: contents, determinism, normalization, sample rates, static cadences, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from avworld.sounds import (
    REFERENCE_RMS_DBFS,
    SampleRateError,
    SoundBank,
    SoundBankConfig,
    SoundError,
    SoundType,
    UnknownSoundError,
    active_rms,
    normalize_power,
)
from avworld.sounds.synth_static import STATIC_TYPES


@pytest.fixture(scope="module")
def bank():
    return SoundBank()


def level_db(x: np.ndarray, fs: int) -> float:
    return 20 * np.log10(active_rms(x, fs))


def envelope_on(x: np.ndarray, fs: int, frame_s: float = 0.01, threshold_db: float = -30.0) -> np.ndarray:
    """Boolean "sounding" per frame: frame RMS within ``threshold_db`` of the loudest frame."""
    n = int(frame_s * fs)
    m = x.size // n
    rms = np.sqrt(np.mean(x[: m * n].astype(np.float64).reshape(m, n) ** 2, axis=1))
    return rms > rms.max() * 10 ** (threshold_db / 20)


def runs(on: np.ndarray, frame_s: float) -> list[tuple[bool, float]]:
    """(state, duration_s) of each run of equal states."""
    edges = np.flatnonzero(np.diff(on.astype(int))) + 1
    bounds = np.concatenate([[0], edges, [on.size]])
    return [(bool(on[a]), (b - a) * frame_s) for a, b in zip(bounds[:-1], bounds[1:])]


# ---------------------------------------------------------------- contents
def test_types_and_categories(bank):
    dynamic = bank.names("dynamic")
    assert len(dynamic) >= 100
    assert len(bank.names(kind="speech")) == 100
    assert len(bank.names(kind="music")) >= 10
    assert len(bank.names(kind="background")) >= 8
    assert len(bank.names("static")) >= 5
    assert {"telephone", "alarm", "beeper"} <= set(bank.names("static"))
    assert len(set(bank.names())) == len(bank.types) == len(bank)
    t = bank.get("speaker_017")
    assert isinstance(t, SoundType) and t.category == "dynamic" and t.kind == "speech" and t.is_dynamic
    assert "speaker_017" in bank and "nope" not in bank
    assert bank.get("telephone").param_dict["cycle_s"] == 6.0
    assert bank.num_clips("bg_rain") == 25
    assert len(bank.clip_ids(["telephone", "bg_rain"])) == 50
    assert "122 dynamic" in repr(bank)


def test_speaker_voices_independent_of_count():
    small, big = SoundBank(num_speakers=5), SoundBank(num_speakers=40)
    assert small.get("speaker_003") == big.get("speaker_003")
    f0 = [big.get(f"speaker_{k:03d}").param_dict["f0_hz"] for k in range(40)]
    assert min(f0) < 110 and max(f0) > 190  # low and high voices both present
    assert sum(big.get(f"speaker_{k:03d}").param_dict["female"] for k in range(40)) in range(14, 27)


# ---------------------------------------------------------------- determinism
def test_clips_are_deterministic():
    a, b = SoundBank(seed=3), SoundBank(seed=3)
    for name in ("telephone", "speaker_004", "music_flute_00", "bg_stream"):
        x, y = a.clip(name, 2, duration_s=2.0), b.clip(name, 2, duration_s=2.0)
        assert x.dtype == np.float32 and x.tobytes() == y.tobytes()
    other_seed = SoundBank(seed=4).clip("speaker_004", 2, duration_s=2.0)
    other_clip = a.clip("speaker_004", 3, duration_s=2.0)
    x = a.clip("speaker_004", 2, duration_s=2.0)
    assert not np.array_equal(x, other_seed) and not np.array_equal(x, other_clip)
    # a clip does not depend on the other types in the bank or on cache state
    lean = SoundBank(seed=3, num_speakers=5, num_music=0, num_background=0, include_static=False, cache_size=0)
    assert lean.clip("speaker_004", 2, duration_s=2.0).tobytes() == x.tobytes()


def test_cache_returns_read_only_arrays():
    bank = SoundBank(cache_size=2)
    x = bank.clip("beeper", 0)
    assert bank.clip("beeper", 0) is x
    with pytest.raises(ValueError):
        x[0] = 1.0
    bank.clip("alarm", 0)
    bank.clip("siren", 0)
    assert bank.clip("beeper", 0) is not x  # evicted (LRU of 2) and re-synthesized, identical
    assert np.array_equal(bank.clip("beeper", 0), x)
    blob = pickle.dumps(bank)
    assert len(blob) < len(pickle.dumps(SoundBank(cache_size=2))) + 1000  # the clip cache is not pickled
    assert np.array_equal(pickle.loads(blob).clip("beeper", 0), x)


# ---------------------------------------------------------------- levels and lengths
@pytest.mark.parametrize("fs", [16000, 44100])
def test_every_type_is_normalized_without_clipping(fs):
    bank = SoundBank(sample_rate_hz=fs, num_speakers=3)
    for name in bank.names():
        x = bank.clip(name, 1, duration_s=None if name in STATIC_TYPES else 3.0)
        assert x.dtype == np.float32 and x.ndim == 1 and np.all(np.isfinite(x))
        assert np.max(np.abs(x)) < 1.0, name
        assert level_db(x, fs) == pytest.approx(REFERENCE_RMS_DBFS, abs=0.05), name
        if name not in STATIC_TYPES:
            assert x.size == 3 * fs


def test_full_length_default_clips(bank):
    fs = bank.sample_rate_hz
    for name in ("speaker_042", "music_piano_00", "bg_crowd"):
        x = bank.clip(name, 0)
        assert x.size == 20 * fs and bank.natural_duration_s(name) == 20.0
        assert level_db(x, fs) == pytest.approx(REFERENCE_RMS_DBFS, abs=0.05)
        # time-varying: the level of 1 s blocks changes over the clip
        blocks = np.sqrt(np.mean(x.reshape(20, fs).astype(np.float64) ** 2, axis=1))
        assert blocks.std() / blocks.mean() > 0.05, name
    speech = bank.clip("speaker_042", 0)
    assert 0.05 < np.mean(~envelope_on(speech, fs, 0.02, -35)) < 0.6  # pauses between phrases


def test_static_clips_loop_seamlessly(bank):
    fs = bank.sample_rate_hz
    for name, (_, cycle_s, _) in STATIC_TYPES.items():
        one = bank.clip(name, 0)
        assert one.size == round(cycle_s * fs)
        three = bank.clip(name, 0, duration_s=2.5 * cycle_s)  # rounded up to whole cycles
        assert np.array_equal(three, np.tile(one, 3))
        loop = np.concatenate([one[-200:], one[:200]]).astype(np.float64)
        assert np.max(np.abs(np.diff(loop))) <= 1.5 * np.max(np.abs(np.diff(one.astype(np.float64)))) + 1e-6, name
    assert not np.array_equal(bank.clip("telephone", 0), bank.clip("telephone", 1))  # per-clip detail


@pytest.mark.parametrize("fs", [16000, 44100])
def test_telephone_cadences(fs):
    bank = SoundBank(sample_rate_hz=fs, num_speakers=0)
    frame = 0.01
    # North American bell ring: 2 s ring, 4 s silence, repeating
    on = envelope_on(bank.clip("telephone", 0, duration_s=18.0), fs, frame)
    r = runs(on, frame)
    rings = [d for s, d in r if s]
    gaps = [d for s, d in r[:-1] if not s]
    assert len(rings) == 3
    assert all(2.0 <= d < 2.35 for d in rings)  # the gongs ring on briefly after the current stops
    assert all(3.65 < d <= 4.0 for d in gaps)
    starts = np.flatnonzero(np.diff(on.astype(int)) == 1) + 1
    assert np.allclose(np.diff(np.concatenate([[0], starts])) * frame, 6.0, atol=0.02)
    # the bell is struck 40 times a second (20 Hz ringing current, two gongs)
    x = bank.clip("telephone", 0)[: 2 * fs].astype(np.float64)
    env = np.abs(x)
    spec = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(env.size, 1 / fs)
    band = (freqs > 5) & (freqs < 100)
    peak_hz = freqs[band][np.argmax(spec[band])]
    assert min(abs(peak_hz - 20.0), abs(peak_hz - 40.0)) < 1.0
    # UK double ring: 0.4 on, 0.2 off, 0.4 on, 2.0 off
    r = runs(envelope_on(bank.clip("telephone_uk", 0), fs, frame), frame)
    assert [s for s, _ in r] == [True, False, True, False]
    assert np.allclose([d for _, d in r], [0.4, 0.2, 0.4, 2.0], atol=0.03)
    # fire alarm temporal-3 pattern: three 0.5 s beeps, then 1.5 s off
    r = runs(envelope_on(bank.clip("alarm", 0), fs, frame), frame)
    assert np.allclose([d for _, d in r], [0.5, 0.5, 0.5, 0.5, 0.5, 1.5], atol=0.03)


def test_min_sample_rate_and_nyquist():
    bank = SoundBank(sample_rate_hz=8000, num_speakers=2)
    for name in ("smoke_detector", "speaker_001", "bg_birds", "music_music_box_00"):
        x = bank.clip(name, 0, duration_s=None if name in STATIC_TYPES else 2.0)
        spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
        assert np.all(np.isfinite(x)) and spec[-len(spec) // 50 :].sum() < 0.01 * spec.sum()  # no energy at Nyquist


def test_peak_limiter_is_local():
    from avworld.sounds._dsp import limit_crest

    fs = 16000
    x = 0.5 * np.sin(2 * np.pi * 200 * np.arange(fs) / fs)
    x[8000] = 5.0
    y = limit_crest(x, fs, 1.0)
    assert np.max(np.abs(y)) <= 1.0 + 1e-12
    changed = np.flatnonzero(np.abs(y - x) > 1e-12)
    assert changed.min() > 8000 - 0.02 * fs and changed.max() < 8000 + 0.02 * fs
    assert np.array_equal(limit_crest(x[:7000], fs, 1.0), x[:7000])  # nothing above the ceiling: untouched


# ---------------------------------------------------------------- bad input
def test_unknown_type_lists_close_matches(bank):
    with pytest.raises(UnknownSoundError, match="did you mean 'speaker_017'") as e:
        bank.clip("speaker_17")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    with pytest.raises(UnknownSoundError, match="telephone"):
        bank.get("telefone")
    with pytest.raises(UnknownSoundError, match="unknown sound type 'xyzzy'"):
        bank.num_clips("xyzzy")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sample_rate_hz": 0}, "at least 8000"),
        ({"sample_rate_hz": 16000.0}, "positive integer"),
        ({"sample_rate_hz": True}, "positive integer"),
        ({"sample_rate_hz": 4000}, "at least 8000"),
    ],
)
def test_bad_sample_rate(kwargs, match):
    with pytest.raises(SampleRateError, match=match):
        SoundBank(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_speakers": -1}, "num_speakers"),
        ({"num_background": 11}, "at most 10"),
        ({"clips_per_type": 0}, "clips_per_type"),
        ({"clip_duration_s": 0}, "clip_duration_s"),
        ({"colour": 1}, "unknown SoundBank option"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(SoundError, match=match):
        SoundBank(**kwargs)


def test_bad_clip_requests(bank):
    with pytest.raises(SoundError, match=r"clip index .* \[0, 24\]"):
        bank.clip("telephone", 25)
    with pytest.raises(SoundError, match="clip index"):
        bank.clip("telephone", -1)
    with pytest.raises(SoundError, match="duration_s"):
        bank.clip("bg_rain", 0, duration_s=-1.0)
    with pytest.raises(SoundError, match="silent"):
        normalize_power(np.zeros(100), 16000)
    assert SoundBank(SoundBankConfig(num_speakers=1)).names(kind="speech") == ["speaker_000"]
    with pytest.raises(SoundError, match="category"):
        bank.names("loud")
