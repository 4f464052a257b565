"""Streaming binaural renderer and dry source signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from avworld.acoustics.signals import SignalError, SourceSignal
from avworld.acoustics.stream import BinauralStream, StreamConfig, StreamError, render_static

FS = 16000


def _decaying_rir(rng: np.random.Generator, length: int, delay: int = 20, rt_s: float = 0.3) -> np.ndarray:
    t = np.arange(length) / FS
    rir = rng.standard_normal((2, length)) * np.exp(-6.9 * t / rt_s) * 0.1
    rir[0, delay] += 1.0
    rir[1, delay + 7] += 0.8
    return rir.astype(np.float32)


def _delay_rir(delay_left: int, delay_right: int, gain_left: float = 1.0, gain_right: float = 1.0, length: int = 256):
    rir = np.zeros((2, length), np.float32)
    rir[0, delay_left] = gain_left
    rir[1, delay_right] = gain_right
    return rir


def _run(stream: BinauralStream, x: np.ndarray, rirs: list[np.ndarray]) -> np.ndarray:
    """Stream a single source: chunk k of ``x`` with ``rirs[k]``; returns (2, K * n)."""
    n = stream.chunk_samples
    return np.concatenate([stream.step([x[k * n : (k + 1) * n]], [rirs[k]]) for k in range(len(rirs))], axis=1)


def _emission_time_reference(x: np.ndarray, rirs: list[np.ndarray], fade: np.ndarray) -> np.ndarray:
    """Float64 reference of the documented model: chunk k emits with RIR k, crossfaded from RIR k-1 on change."""
    n = fade.shape[0]
    total = len(rirs) * n
    out = np.zeros((2, total + max(r.shape[1] for r in rirs)))
    prev = None
    for k, h in enumerate(rirs):
        xk = x[k * n : (k + 1) * n].astype(np.float64)
        if prev is None or (prev.shape == h.shape and np.array_equal(prev, h)):
            parts = [(xk, h)]
        else:
            parts = [(xk * (1.0 - fade), prev), (xk * fade, h)]
        for xx, hh in parts:
            y = fftconvolve(xx[None, :], hh.astype(np.float64), axes=-1)
            out[:, k * n : k * n + y.shape[1]] += y
        prev = h
    return out[:, :total]


# ---------------------------------------------------------------------------------------------- source signals


def test_looping_signal_read_in_chunks_equals_read_at_once():
    rng = np.random.default_rng(0)
    sig = SourceSignal(rng.standard_normal(1013).astype(np.float32), FS, loop=True, start_offset_s=0.0)
    whole = sig.read(0, 10_000)
    sizes = [1, 7, 999, 1013, 1014, 2400, 4566]  # sums to 10_000, crosses many wraps
    assert sum(sizes) == 10_000
    parts, pos = [], 0
    for size in sizes:
        parts.append(sig.read(pos, size))
        pos += size
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(whole[1013:2026], sig.audio)  # seamless wrap
    np.testing.assert_array_equal(whole, np.tile(sig.audio, 10)[:10_000])  # reads with and without a wrap
    assert whole.dtype == np.float32


def test_very_short_looping_signal():
    sig = SourceSignal(np.array([1.0, 2.0, 3.0]), FS)
    np.testing.assert_array_equal(sig.read(4, 5), [2, 3, 1, 2, 3])


def test_non_looping_signal_is_silent_after_end():
    audio = np.arange(1, 101, dtype=np.float32)
    sig = SourceSignal(audio, FS, loop=False)
    out = sig.read(90, 30)
    np.testing.assert_array_equal(out[:10], audio[90:])
    np.testing.assert_array_equal(out[10:], 0.0)
    np.testing.assert_array_equal(sig.read(500, 10), 0.0)
    assert sig.duration_s == pytest.approx(100 / FS)


@pytest.mark.parametrize("loop", [True, False])
def test_start_offset(loop):
    audio = np.arange(1, 51, dtype=np.float32)
    sig = SourceSignal(audio, FS, loop=loop, start_offset_s=0.001)  # 16 samples
    assert sig.start_offset_samples == 16
    out = sig.read(0, 100)
    np.testing.assert_array_equal(out[:16], 0.0)
    np.testing.assert_array_equal(out[16:66], audio)
    if loop:
        np.testing.assert_array_equal(out[66:100], audio[:34])
    else:
        np.testing.assert_array_equal(out[66:], 0.0)
    # reading before the start in pieces is consistent too
    np.testing.assert_array_equal(np.concatenate([sig.read(0, 10), sig.read(10, 90)]), out)


def test_negative_start_offset_starts_mid_signal():
    audio = np.arange(100, dtype=np.float32)
    sig = SourceSignal(audio, FS, loop=True, start_offset_s=-30 / FS)
    np.testing.assert_array_equal(sig.read(0, 5), [30, 31, 32, 33, 34])


def test_signal_is_a_private_read_only_copy():
    audio = np.ones(10, np.float64)
    sig = SourceSignal(audio, FS)
    audio[:] = 5.0
    np.testing.assert_array_equal(sig.read(0, 10), 1.0)
    with pytest.raises(ValueError):
        sig.audio[0] = 2.0


@pytest.mark.parametrize(
    ("audio", "rate", "match"),
    [
        (np.zeros(0, np.float32), FS, "empty"),
        (np.array([0.0, np.nan, 1.0]), FS, "NaN"),
        (np.array([0.0, np.inf]), FS, "NaN or infinite"),
        (np.zeros((2, 10), np.float32), FS, "1-D"),
        (np.zeros(10, np.float32), 0, "positive integer"),
        (np.zeros(10, np.float32), -16000, "positive integer"),
        (np.zeros(10, np.float32), 16000.0, "positive integer"),
        (np.zeros(10, np.complex64), FS, "real numbers"),
    ],
)
def test_signal_validation(audio, rate, match):
    with pytest.raises(SignalError, match=match):
        SourceSignal(audio, rate)
    assert issubclass(SignalError, ValueError)


def test_signal_read_validation():
    sig = SourceSignal(np.ones(10, np.float32), FS)
    with pytest.raises(SignalError, match="non-negative"):
        sig.read(0, -1)
    with pytest.raises(SignalError, match="integer sample index"):
        sig.read(0.5, 3)
    assert sig.read(3, 0).shape == (0,)


# ---------------------------------------------------------------------------------------------- configuration


def test_config_validation():
    assert StreamConfig().chunk_samples == 4000
    assert StreamConfig(chunk_s=0.15).chunk_samples == 2400
    assert StreamConfig(crossfade_s=0.01).crossfade_samples == 160
    assert StreamConfig().crossfade_samples == 4000
    with pytest.raises(StreamError, match="whole number of samples"):
        StreamConfig(chunk_s=1 / 30)
    with pytest.raises(StreamError, match="crossfade_s"):
        StreamConfig(crossfade_s=0.5)
    with pytest.raises(StreamError, match="crossfade_s"):
        StreamConfig(crossfade_s=-0.01)
    with pytest.raises(StreamError, match="sample_rate_hz"):
        StreamConfig(sample_rate_hz=0)
    with pytest.raises(StreamError, match="chunk_s"):
        StreamConfig(chunk_s=0.0)
    with pytest.raises(StreamError, match="max_rir_s"):
        StreamConfig(max_rir_s=0.0)
    with pytest.raises(StreamError, match="noise_snr_db"):
        StreamConfig(noise_snr_db=float("nan"))
    with pytest.raises(StreamError, match="num_sources"):
        BinauralStream(StreamConfig(), num_sources=0)


# ---------------------------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(("chunk_s", "rir_len"), [(0.25, 16000), (0.15, 16000), (0.15, 100), (0.01, 3000)])
def test_static_stream_equals_full_convolution(chunk_s, rir_len):
    rng = np.random.default_rng(1)
    cfg = StreamConfig(chunk_s=chunk_s)
    n, chunks = cfg.chunk_samples, 20
    rir = _decaying_rir(rng, rir_len, delay=min(20, rir_len - 8))
    x = rng.standard_normal(chunks * n).astype(np.float32)
    stream = BinauralStream(cfg)
    out = _run(stream, x, [rir] * chunks)
    ref = fftconvolve(x[None, :].astype(np.float64), rir.astype(np.float64), axes=-1)[:, : chunks * n]
    assert out.dtype == np.float32 and out.shape == (2, chunks * n)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    np.testing.assert_allclose(render_static(x, rir), ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    assert stream.samples_rendered == chunks * n


def test_equal_rir_in_a_new_array_is_not_a_change():
    """Fresh arrays with the same values (a cache miss upstream) must not trigger a crossfade."""
    rng = np.random.default_rng(2)
    cfg = StreamConfig(chunk_s=0.05)
    n = cfg.chunk_samples
    rir = _decaying_rir(rng, 2000)
    x = rng.standard_normal(10 * n).astype(np.float32)
    out = _run(BinauralStream(cfg), x, [rir.copy() for _ in range(10)])
    ref = render_static(x, rir)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


def test_in_place_mutation_of_the_rir_is_detected():
    cfg = StreamConfig(chunk_s=0.01)
    n = cfg.chunk_samples
    x = np.random.default_rng(3).standard_normal(4 * n).astype(np.float32)
    rir = _delay_rir(3, 5)
    a = rir.copy()
    stream = BinauralStream(cfg)
    outs = [stream.step([x[:n]], [rir]), stream.step([x[n : 2 * n]], [rir])]
    rir[:] = 0.0
    rir[0, 40] = rir[1, 50] = 0.5  # same object, new contents
    outs += [stream.step([x[2 * n : 3 * n]], [rir]), stream.step([x[3 * n :]], [rir])]
    ref = _emission_time_reference(x, [a, a, rir.copy(), rir.copy()], BinauralStream(cfg)._fade)
    assert np.abs(np.concatenate(outs, axis=1) - ref).max() <= 1e-5 * np.abs(ref).max()


# ---------------------------------------------------------------------------------------------- time alignment


def test_impulse_arrives_after_the_rir_delay_in_the_right_chunk():
    cfg = StreamConfig(chunk_s=0.05)
    n = cfg.chunk_samples  # 800
    rir = _delay_rir(5, 12, gain_left=1.0, gain_right=0.5)
    x = np.zeros(4 * n, np.float32)
    x[n + 100] = 1.0  # arrives inside chunk 1
    x[3 * n - 7] = 1.0  # left arrives at 3n - 2 (chunk 2), right at 3n + 5 (chunk 3): crosses the boundary
    stream = BinauralStream(cfg)
    chunks = [stream.step([x[k * n : (k + 1) * n]], [rir]) for k in range(4)]
    assert chunks[1][0, 105] == pytest.approx(1.0, abs=1e-6)
    assert chunks[1][1, 112] == pytest.approx(0.5, abs=1e-6)
    assert chunks[2][0, n - 2] == pytest.approx(1.0, abs=1e-6)
    assert chunks[3][1, 5] == pytest.approx(0.5, abs=1e-6)
    out = np.concatenate(chunks, axis=1)
    expected = np.zeros_like(out)
    expected[0, [n + 105, 3 * n - 2]] = 1.0
    expected[1, [n + 112, 3 * n + 5]] = 0.5
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_long_tail_carries_over_many_chunks():
    cfg = StreamConfig(chunk_s=0.01, max_rir_s=0.5)
    n = cfg.chunk_samples  # 160
    rir = _delay_rir(1000, 1100, length=1200)  # arrival ~6 chunks later
    x = np.zeros(10 * n, np.float32)
    x[3] = 1.0
    out = _run(BinauralStream(cfg), x, [rir] * 10)
    assert np.argmax(np.abs(out[0])) == 1003 and np.argmax(np.abs(out[1])) == 1103
    np.testing.assert_allclose(np.abs(out).sum(axis=1), [1.0, 1.0], atol=1e-5)


# ---------------------------------------------------------------------------------------------- crossfades


def _max_jump(y: np.ndarray) -> float:
    return float(np.abs(np.diff(y, axis=-1)).max())


@pytest.mark.parametrize("crossfade_s", [None, 0.01])
def test_rir_switch_is_continuous_with_crossfade_and_clicks_without(crossfade_s):
    freq, chunks = 431.0, 12  # 107.75 cycles per chunk: the sine crosses the boundaries at varied phases
    smooth_cfg = StreamConfig(crossfade_s=crossfade_s)
    naive_cfg = StreamConfig(crossfade_s=0.0)
    n = smooth_cfg.chunk_samples
    x = np.sin(2 * np.pi * freq * np.arange(chunks * n) / FS).astype(np.float32)
    near = _delay_rir(7, 19, gain_left=1.0, gain_right=0.9)
    far = _delay_rir(113, 90, gain_left=0.6, gain_right=0.5)
    rirs = [near if k % 2 == 0 else far for k in range(chunks)]  # switches at every chunk boundary
    sine_slope = 2 * np.sin(np.pi * freq / FS)  # max |x[t+1] - x[t]| of the unit sine
    fade_slope = float(np.abs(np.diff(BinauralStream(smooth_cfg)._fade)).max())
    # rigorous bound for two faded, delayed copies: (g_old + g_new) * (sine slope + fade slope)
    bound = (1.0 + 0.6) * (sine_slope + fade_slope)

    smooth = _run(BinauralStream(smooth_cfg), x, rirs)
    naive = _run(BinauralStream(naive_cfg), x, rirs)
    assert _max_jump(smooth) < bound
    assert _max_jump(naive) > 2 * bound  # the path switch leaves a gap / an overlap: steps of ~ the amplitude
    assert _max_jump(naive) > 0.9
    if crossfade_s is None:
        # fading over the whole chunk keeps the jumps at the sine's own slope (times the largest gain, 1)
        assert _max_jump(smooth) < 1.05 * sine_slope
    # a static RIR gives the sine's own slope (sanity of the bound)
    assert _max_jump(_run(BinauralStream(smooth_cfg), x, [near] * chunks)) <= sine_slope * 1.0001
    # and the stream follows the documented emission-time crossfade model exactly
    for cfg, out in ((smooth_cfg, smooth), (naive_cfg, naive)):
        ref = _emission_time_reference(x, rirs, BinauralStream(cfg)._fade)
        assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


def test_after_a_switch_later_chunks_use_the_new_rir_only():
    rng = np.random.default_rng(4)
    cfg = StreamConfig(chunk_s=0.05)
    n = cfg.chunk_samples
    a, b = _decaying_rir(rng, 3000, delay=10), _decaying_rir(rng, 5000, delay=60)  # lengths differ too
    x = rng.standard_normal(12 * n).astype(np.float32)
    rirs = [a] * 4 + [b] * 8
    out = _run(BinauralStream(cfg), x, rirs)
    ref = _emission_time_reference(x, rirs, BinauralStream(cfg)._fade)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    # once the tail of everything emitted with `a` has died (chunk 4 + 5000 samples), only `b` is heard
    start = 5 * n + 5000
    tail_ref = fftconvolve(x[None, 5 * n :].astype(np.float64), b.astype(np.float64), axes=-1)
    np.testing.assert_allclose(out[:, start:], tail_ref[:, start - 5 * n : 12 * n - 5 * n], atol=1e-4)


def test_rir_change_during_silence_and_silent_sources():
    rng = np.random.default_rng(5)
    cfg = StreamConfig(chunk_s=0.05)
    n = cfg.chunk_samples
    a, b, c = (_decaying_rir(rng, 2000, delay=d) for d in (10, 40, 80))
    x = rng.standard_normal(8 * n).astype(np.float32)
    x[2 * n : 4 * n] = 0.0  # silent while the RIR changes a -> b -> c
    rirs = [a, a, b, c, c, a, a, a]
    out = _run(BinauralStream(cfg), x, rirs)
    ref = _emission_time_reference(x, rirs, BinauralStream(cfg)._fade)
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()
    silent = _run(BinauralStream(cfg), np.zeros(8 * n, np.float32), rirs)
    np.testing.assert_array_equal(silent, 0.0)


# ---------------------------------------------------------------------------------------------- mixing, noise, reset


def test_two_sources_mix_equals_sum_of_each_alone():
    rng = np.random.default_rng(6)
    cfg = StreamConfig(chunk_s=0.05)
    n, chunks = cfg.chunk_samples, 8
    xs = rng.standard_normal((2, chunks * n)).astype(np.float32)
    rirs = [
        [_decaying_rir(rng, 3000, delay=10 + 5 * (k // 3)) for k in range(chunks)],
        [_decaying_rir(rng, 1500, delay=30)] * chunks,
    ]
    both = BinauralStream(cfg, num_sources=2)
    mixes, pers = [], []
    for k in range(chunks):
        mix, per = both.step_per_source([x[k * n : (k + 1) * n] for x in xs], [r[k] for r in rirs])
        assert per.shape == (2, 2, n) and per.dtype == np.float32 and mix.dtype == np.float32
        np.testing.assert_allclose(mix, per.sum(axis=0), atol=1e-6)
        mixes.append(mix)
        pers.append(per)
    alone = [_run(BinauralStream(cfg), xs[s], rirs[s]) for s in range(2)]
    together = np.concatenate(mixes, axis=1)
    scale = np.abs(together).max()
    np.testing.assert_allclose(together, alone[0] + alone[1], atol=1e-6 * scale)
    for s in range(2):
        np.testing.assert_allclose(np.concatenate([p[s] for p in pers], axis=1), alone[s], atol=1e-6 * scale)


def test_noise_is_seeded_and_has_the_requested_snr():
    rng = np.random.default_rng(7)
    cfg = StreamConfig(chunk_s=0.25, noise_snr_db=10.0)
    n, chunks = cfg.chunk_samples, 8
    x = rng.standard_normal(chunks * n).astype(np.float32)
    x[6 * n :] = 0.0  # last chunks: dry silence, but the reverberant tail still sounds in chunk 6
    rir = _decaying_rir(rng, 2000)

    def run(seed):
        stream = BinauralStream(cfg, seed=seed)
        return [stream.step_per_source([x[k * n : (k + 1) * n]], [rir]) for k in range(chunks)]

    first, again, other = run(0), run(0), run(1)
    for (m1, _), (m2, _) in zip(first, again):
        np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(first[0][0], other[0][0])
    clean = render_static(x, rir)
    for k, (mix, per) in enumerate(first):
        np.testing.assert_allclose(per[0], clean[:, k * n : (k + 1) * n], atol=1e-5)  # ground truth stays clean
        noise = mix - per.sum(axis=0)
        signal_power = np.mean(per.sum(axis=0).astype(np.float64) ** 2)
        if signal_power == 0.0:
            np.testing.assert_array_equal(mix, 0.0)  # documented: silent chunks get no noise
            continue
        snr = 10 * np.log10(signal_power / np.mean(noise.astype(np.float64) ** 2))
        assert abs(snr - 10.0) < 0.5, (k, snr)
        assert abs(np.corrcoef(noise[0], noise[1])[0, 1]) < 0.1  # independent per ear
    assert np.all(first[-1][0] == 0.0)


def test_reset_clears_the_carry_and_reseeds():
    rng = np.random.default_rng(8)
    cfg = StreamConfig(chunk_s=0.05, noise_snr_db=20.0)
    n = cfg.chunk_samples
    rir = _decaying_rir(rng, 8000)  # tail spans many chunks
    loud = rng.standard_normal(n).astype(np.float32)
    stream = BinauralStream(cfg, seed=3)
    first = stream.step([loud], [rir])
    assert np.abs(stream.step([np.zeros(n, np.float32)], [rir])).max() > 0.01  # the tail is carried
    stream.step([loud], [rir])
    stream.reset()
    np.testing.assert_array_equal(stream.step([np.zeros(n, np.float32)], [rir]), 0.0)
    assert stream.samples_rendered == n
    stream.reset(seed=3)
    np.testing.assert_array_equal(stream.step([loud], [rir]), first)  # same as a fresh stream with seed 3


# ---------------------------------------------------------------------------------------------- validation


def test_step_validation():
    cfg = StreamConfig(chunk_s=0.01, max_rir_s=0.1)
    n = cfg.chunk_samples
    stream = BinauralStream(cfg, num_sources=2)
    x = np.zeros(n, np.float32)
    rir = _delay_rir(1, 2)
    with pytest.raises(StreamError, match="expected 2 dry chunk"):
        stream.step([x], [rir, rir])
    with pytest.raises(StreamError, match="expected 2 RIR"):
        stream.step([x, x], [rir])
    with pytest.raises(StreamError, match=r"expected \(160,\)"):
        stream.step([x, x[:-1]], [rir, rir])
    for bad in (rir[:1], rir[0], np.zeros((3, 10)), np.zeros((2, 0))):
        with pytest.raises(StreamError, match=r"expected \(2, L\)"):
            stream.step([x, x], [rir, bad])
    with pytest.raises(StreamError, match="longer than max_rir_s"):
        stream.step([x, x], [rir, np.zeros((2, 1601), np.float32)])
    nan_x = x.copy()
    nan_x[3] = np.nan
    with pytest.raises(StreamError, match="dry chunk of source 0 contains NaN"):
        stream.step([nan_x, x], [rir, rir])
    nan_rir = rir.copy()
    nan_rir[1, 5] = np.nan
    with pytest.raises(StreamError, match="RIR of source 1 contains NaN"):
        stream.step([x, x], [rir, nan_rir])
    with pytest.raises(StreamError, match="rir must have shape"):
        render_static(x, rir[0])
    assert issubclass(StreamError, ValueError)
    assert stream.samples_rendered == 0  # rejected steps change nothing


def test_spectrum_providers_and_dry_keys_change_nothing():
    """Cached RIR spectra (providers) and chunk spectra (dry_keys) give the same bytes as none."""
    import scipy.fft as sfft

    rng = np.random.default_rng(3)
    cfg = StreamConfig(sample_rate_hz=FS, chunk_s=0.05, max_rir_s=0.2)
    n = cfg.chunk_samples
    loop = rng.standard_normal(4 * n).astype(np.float32)  # a looping clip of 4 chunks
    rirs = [_decaying_rir(rng, length) for length in (900, 900, 2500, 1700, 1700, 900)]
    plain, cached = BinauralStream(cfg, seed=0), BinauralStream(cfg, seed=0)
    calls = []

    def provider(h):
        def spectrum(nfft):
            calls.append(nfft)
            return sfft.rfft(h, nfft, axis=-1)

        return spectrum

    for k in range(12):
        x = loop[(k % 4) * n : (k % 4 + 1) * n]
        h = rirs[k % len(rirs)]
        key = 0 if k == 7 else k % 4  # chunk 3 under chunk 0's key: detected (samples compared), not trusted
        a = plain.step([x], [h])
        b = cached.step([x], [h], spectra=[provider(h)], dry_keys=[key])
        assert a.tobytes() == b.tobytes(), k
    assert calls and all(nfft == cached.fft_size(1024) or nfft >= n for nfft in calls)
    with pytest.raises(StreamError, match="dry keys"):
        cached.step([loop[:n]], [rirs[0]], dry_keys=[0, 1])
