"""Split RIRs (early part + shared tail): the stream's tail-reusing path renders what whole RIRs render."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.stream import BinauralStream, SplitRIR, StreamConfig, StreamError
from avworld.acoustics.synthesis import _envelope, _tail_noises, binaural_parts, binaural_rir, render_tail

from .rooms import shoebox

FS = 16000


def _tail(rng: np.random.Generator, length: int, rt_s: float = 0.4) -> np.ndarray:
    t = np.arange(length) / FS
    tail = (rng.standard_normal((2, length)) * np.exp(-6.9 * t / rt_s) * 0.05).astype(np.float32)
    tail.flags.writeable = False
    return tail


def _early(rng: np.random.Generator, width: int) -> np.ndarray:
    return (rng.standard_normal((2, width)) * np.hanning(width)).astype(np.float32)


def _sequence(rng: np.random.Generator) -> list[SplitRIR]:
    """Turns (same tail, new early part), moves (new tail), a stop (same split) and a longer tail."""
    t1, t2, t3 = _tail(rng, 4000), _tail(rng, 4000), _tail(rng, 5500, rt_s=0.6)
    e = [_early(rng, w) for w in (300, 420, 300, 500)]
    return [SplitRIR(e[0], 40, t1), SplitRIR(e[1], 55, t1), SplitRIR(e[1], 55, t1), SplitRIR(e[2], 10, t2),
            SplitRIR(e[3], 200, t2), SplitRIR(e[0], 0, t3), SplitRIR(e[2], 90, t3), SplitRIR(e[3], 30, t1)]


@pytest.mark.parametrize("crossfade_s", [None, 0.01, 0.0])
def test_split_rirs_render_as_their_whole_arrays(crossfade_s):
    rng = np.random.default_rng(3)
    splits = _sequence(rng)
    cfg = StreamConfig(sample_rate_hz=FS, chunk_s=0.1, crossfade_s=crossfade_s, max_rir_s=0.5)
    n = cfg.chunk_samples
    x = rng.standard_normal(n * len(splits)).astype(np.float32)
    x[2 * n : 3 * n] = 0.0  # a silent chunk: no FFTs, state still follows the RIRs
    a, b = BinauralStream(cfg), BinauralStream(cfg)
    for k, h in enumerate(splits):
        chunk = x[k * n : (k + 1) * n]
        got, want = a.step([chunk], [h]), b.step([chunk], [h.full()])
        assert np.abs(got - want).max() <= 2e-6 * max(1.0, np.abs(want).max()), k


def test_split_tail_spectrum_provider_and_writeable_tails_and_mixed_inputs():
    rng = np.random.default_rng(4)
    splits = _sequence(rng)
    cfg = StreamConfig(sample_rate_hz=FS, chunk_s=0.1, max_rir_s=0.5)
    n = cfg.chunk_samples
    calls = []

    def provider_for(tail):
        def spectrum(block, nfft):  # the partition spectra, computed independently
            calls.append((block, nfft))
            P = -(-tail.shape[1] // block)
            padded = np.pad(tail, ((0, 0), (0, P * block - tail.shape[1])))
            return np.stack([np.fft.rfft(padded[:, j * block : (j + 1) * block], nfft, axis=-1)
                             for j in range(P)]).astype(np.complex64)
        return spectrum

    x = rng.standard_normal(n * len(splits)).astype(np.float32)
    with_provider = [SplitRIR(h.early, h.start, h.tail, provider_for(h.tail)) for h in splits]
    writeable = [SplitRIR(h.early, h.start, np.array(h.tail)) for h in splits]  # copied each step
    mixed = [h if k % 3 else h.full() for k, h in enumerate(splits)]  # whole arrays now and then
    ref = BinauralStream(cfg)
    streams = [BinauralStream(cfg) for _ in range(3)]
    for k in range(len(splits)):
        chunk = x[k * n : (k + 1) * n]
        want = ref.step([chunk], [splits[k].full()])
        for stream, seq in zip(streams, (with_provider, writeable, mixed), strict=True):
            got = stream.step([chunk], [seq[k]])
            assert np.abs(got - want).max() <= 2e-6 * max(1.0, np.abs(want).max()), k
    assert calls  # the provider's spectra were used


def test_split_rir_validation():
    rng = np.random.default_rng(5)
    stream = BinauralStream(StreamConfig(sample_rate_hz=FS, chunk_s=0.1, max_rir_s=0.2))
    x = np.ones(stream.chunk_samples, np.float32)
    tail = _tail(rng, 1000)
    with pytest.raises(StreamError, match="must fit"):
        stream.step([x], [SplitRIR(_early(rng, 100), 950, tail)])
    with pytest.raises(StreamError, match="NaN"):
        stream.step([x], [SplitRIR(np.full((2, 10), np.nan, np.float32), 0, tail)])
    with pytest.raises(StreamError, match="longer than max_rir_s"):
        stream.step([x], [SplitRIR(_early(rng, 10), 0, _tail(rng, 4000))])


@pytest.fixture(scope="module")
def room():
    scene = shoebox((6.0, 4.0, 3.0), absorption=0.3)
    engine = AcousticEngine(scene, AcousticConfig(max_rir_s=0.6))
    return engine.spatial_rir([1.0, 1.0, 1.5], [4.0, 2.5, 1.6]), load_hrtf("kemar", FS)


def test_binaural_parts_add_up_to_the_binaural_rir(room):
    srir, hrtf = room
    whole = binaural_rir(srir, hrtf, 0.7)
    early, start, tail = binaural_parts(srir, hrtf, 0.7)
    assert not tail.flags.writeable and tail is binaural_parts(srir, hrtf, 0.7)[2]  # cached per yaw
    assert not np.array_equal(tail, binaural_parts(srir, hrtf, -1.2)[2])  # the late field turns with the head
    assert np.array_equal(SplitRIR(early, start, tail).full(), whole)
    assert early.shape[1] < whole.shape[1] // 4  # the early part is short: only it depends on the yaw


def test_blockwise_tail_equals_the_per_sample_envelope_product(room):
    srir, _ = room
    n = int(np.ceil(srir.duration_s * FS))
    tail = render_tail(srir, n, binaural=True)
    bank = _tail_noises(FS, 1 << int(np.ceil(np.log2(max(2 * n, 4 * FS)))))
    offset = int(srir.noise_seed % (bank.shape[-1] - n))
    env = _envelope(srir, n).astype(np.float64)
    ref = np.stack([np.einsum("bt,bt->t", env, bank[c, :, offset : offset + n].astype(np.float64)) for c in (1, 2)])
    assert np.abs(tail - ref).max() <= 1e-5 * np.abs(ref).max()


def _per_sample_amplitudes(srir, frac: np.ndarray, n: int) -> np.ndarray:
    """(D x 7 x 2, n) float64 reference amplitudes, rows (direction, band, {noise, Hilbert}): sqrt(energy x
    fraction) per bin, interpolated with np.interp between the bins' centres (first value before the first
    centre, a ramp to zero over the bin after the last)."""
    bins = srir.tail.shape[1]
    spb = srir.tail_bin_s * FS
    amp = np.sqrt(srir.tail.T[:, :, None] / spb * frac)  # (B, 7, D)
    amp = np.repeat(amp.transpose(0, 2, 1)[..., None], 2, axis=3).reshape(bins, -1)  # (B, D x 7 x 2)
    centres = (np.arange(bins) + 0.5) * spb
    t = np.arange(n)
    return np.stack([np.interp(t, np.append(centres, centres[-1] + spb), np.append(a, 0.0), left=a[0]) for a in amp.T])


def test_directional_tail_equals_the_per_sample_envelope_product(room):
    """The late field's components (shaped noises in blocks) equal a per-sample reference: every noise
    row times its amplitude interpolated linearly between the bins' centres (np.interp), weighted."""
    from avworld.acoustics.late_decoder import build_decoder
    from avworld.acoustics.late_field import (
        DirectionalTail,
        bin_fractions,
        component_weights,
        direction_noise_bank,
    )

    srir, hrtf = room
    n = int(np.ceil(srir.duration_s * FS))
    dec = build_decoder(hrtf, srir.late_order)
    field = DirectionalTail(srir, dec, n)
    bins = srir.tail.shape[1]
    spb = srir.tail_bin_s * FS
    frac = bin_fractions(srir.tail_dir, bins, srir.tail_bin_s, float(srir.delay_s.min()))
    env = _per_sample_amplitudes(srir, frac, n)  # (126, n)
    total = field.components.shape[1]
    h = (int(spb) + 1) // 2
    k = -(-(n - h) // int(spb))
    bank_len = 1 << int(np.ceil(np.log2(max(2 * (h + k * int(spb)), 4 * FS))))
    bank = direction_noise_bank(FS, bank_len).transpose(1, 0, 2, 3).reshape(126, bank_len)  # (dir, band, h) rows
    offset = int(srir.noise_seed % (bank_len - (h + k * int(spb))))
    ref = component_weights(dec).astype(np.float64) @ (env * bank[:, offset : offset + n].astype(np.float64))
    assert total == n
    assert np.abs(field.components - ref).max() <= 1e-4 * np.abs(ref).max()


def test_two_stage_late_field_matches_its_references(room):
    """With the order-1 second stage: before the crossfade block the components are the single-stage
    ones; after it, orders >= 2 are zero and the first-order rows equal a per-sample reference of the
    quadrant stage (its own noise rows, amplitudes from the merged fractions, order-1 decoder weights)."""
    from avworld.acoustics.late_decoder import build_decoder
    from avworld.acoustics.late_field import (
        LATE_SECTOR_AZ_RAD,
        LATE_STAGE_S,
        DirectionalTail,
        _merge_to_quadrants,
        bin_fractions,
        component_weights,
        direction_noise_bank,
    )

    srir, hrtf = room
    n = int(np.ceil(srir.duration_s * FS))
    dec, dec1 = build_decoder(hrtf, srir.late_order), build_decoder(hrtf, 1)
    one = DirectionalTail(srir, dec, n).components
    two = DirectionalTail(srir, dec, n, late_dec=dec1).components
    m = int(srir.tail_bin_s * FS)
    h = (m + 1) // 2
    k = -(-(n - h) // m)
    jc = int(np.ceil(((srir.delay_s.min() + LATE_STAGE_S) * FS - h) / m))
    lo = h + jc * m
    assert 0 < lo < n - m
    np.testing.assert_array_equal(two[:, :lo], one[:, :lo])
    R = 2 * srir.late_order + 1
    assert not two.reshape(2, R, n)[:, 3:, lo + m :].any()
    bins = srir.tail.shape[1]
    frac = _merge_to_quadrants(bin_fractions(srir.tail_dir, bins, srir.tail_bin_s, float(srir.delay_s.min())))
    env = _per_sample_amplitudes(srir, frac, n)  # (70, n)
    total = h + k * m
    bank_len = 1 << int(np.ceil(np.log2(max(2 * total, 4 * FS))))
    offset = int(srir.noise_seed % (bank_len - total))
    offset2 = (offset + bank_len // 2) % (bank_len - total)
    bank = direction_noise_bank(FS, bank_len)[:, :5].transpose(1, 0, 2, 3).reshape(70, bank_len)
    W4 = component_weights(dec1, LATE_SECTOR_AZ_RAD).astype(np.float64)  # (6, 70)
    ref = W4 @ (env * bank[:, offset2 : offset2 + n].astype(np.float64))  # (6, n): U0, U1, V1 per ear
    got = two.reshape(2, R, n)[:, :3].reshape(6, n)
    assert np.abs(got[:, lo + m :] - ref[:, lo + m :]).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("edge", [1, 7, 40])
def test_tail_noise_offset_at_the_end_of_the_noise_bank(room, edge):
    """Noise seeds whose offset sits at the top of the bank (whole blocks would run past it)."""
    import dataclasses

    srir, _ = room
    n = int(np.ceil(srir.duration_s * FS))
    bank_len = 1 << int(np.ceil(np.log2(max(2 * n, 4 * FS))))
    srir = dataclasses.replace(srir, noise_seed=bank_len - n - edge)  # offset = bank_len - n - edge
    tail = render_tail(srir, n, binaural=True)
    bank = _tail_noises(FS, bank_len)
    offset = bank_len - n - edge
    env = _envelope(srir, n).astype(np.float64)
    ref = np.stack([np.einsum("bt,bt->t", env, bank[c, :, offset : offset + n].astype(np.float64)) for c in (1, 2)])
    assert tail.shape == (2, n) and np.abs(tail - ref).max() <= 1e-5 * np.abs(ref).max()


def test_equal_tails_are_the_same_tail_byte_for_byte():
    """Whether a cache hands back the same tail array or an equal copy (e.g. after an eviction) must
    not change a sample: the stream compares tails by content when identity fails."""
    rng = np.random.default_rng(6)
    splits = _sequence(rng)
    cfg = StreamConfig(sample_rate_hz=FS, chunk_s=0.1, max_rir_s=0.5)
    n = cfg.chunk_samples
    x = rng.standard_normal(n * len(splits)).astype(np.float32)

    def copied(h):
        tail = h.tail.copy()
        tail.flags.writeable = False
        return SplitRIR(h.early.copy(), h.start, tail)

    a, b = BinauralStream(cfg), BinauralStream(cfg)
    for k, h in enumerate(splits):
        chunk = x[k * n : (k + 1) * n]
        assert a.step([chunk], [h]).tobytes() == b.step([chunk], [copied(h)]).tobytes(), k


@pytest.mark.parametrize("chunk", [997, 1600])  # 997: the partition FFT size exceeds 2 chunks
def test_partitioned_tail_convolution_equals_direct_convolution(chunk):
    """The split path convolves tails by uniformly partitioned overlap-add in the frequency domain
    (ring of partition slots, wrapping); each chunk still meets its own step's RIR exactly."""
    from scipy.signal import fftconvolve

    from avworld.acoustics.stream_config import PartitionedAccumulator, partition_fft_size, partition_spectra

    rng = np.random.default_rng(6)
    cfg = StreamConfig(sample_rate_hz=FS, chunk_s=chunk / FS, crossfade_s=0.0, max_rir_s=0.5)
    n = cfg.chunk_samples
    tails = [_tail(rng, length) for length in (7000, 7000, 3100, 7999)]
    steps = 14
    x = rng.standard_normal(n * steps).astype(np.float32)
    x[5 * n : 7 * n] = 0.0  # silence: slots drain without new input
    which = [0, 0, 1, 1, 2, 3, 3, 0, 2, 2, 1, 3, 0, 0]
    ref = np.zeros((2, n * steps + 8000))  # float64 reference: chunk k convolved with tail k, overlap-added
    for k in range(steps):
        y = fftconvolve(x[None, k * n : (k + 1) * n].astype(np.float64), tails[which[k]].astype(np.float64), axes=-1)
        ref[:, k * n : k * n + y.shape[1]] += y
    stream = BinauralStream(cfg)
    got = np.concatenate([stream.step([x[k * n : (k + 1) * n]], [SplitRIR(np.zeros((2, 0), np.float32), 0,
                                                                           tails[which[k]])])
                          for k in range(steps)], axis=1)
    assert np.abs(got - ref[:, : n * steps]).max() <= 2e-6 * np.abs(ref).max()
    # the accumulator alone, against the same reference (spectra of partitions of `chunk` samples)
    acc = PartitionedAccumulator(n, cfg.max_rir_samples)
    assert acc.nfft == partition_fft_size(n) >= 2 * n - 1
    out = []
    for k in range(steps):
        if x[k * n : (k + 1) * n].any():
            acc.add(np.fft.rfft(x[k * n : (k + 1) * n], acc.nfft).astype(np.complex64),
                    partition_spectra(tails[which[k]], n, acc.nfft))
        y = acc.pop()
        out.append(np.zeros((2, n), np.float32) if y is None else y)
    assert np.abs(np.concatenate(out, axis=1) - ref[:, : n * steps]).max() <= 2e-6 * np.abs(ref).max()
    with pytest.raises(ValueError, match="do not fit"):
        acc.add(np.zeros(acc.nfft // 2 + 1, np.complex64), np.zeros((acc.slots, 2, acc.nfft // 2 + 1), np.complex64))
