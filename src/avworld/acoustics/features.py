"""Audio features for agents and models: SoundSpaces' pooled magnitude spectrogram and log-mel.

Both use librosa-style framing (``librosa.stft`` with ``center=True``): the signal is
padded by ``n_fft // 2`` on both sides (``pad_mode="reflect"``, librosa's default before
0.10 and what SoundSpaces ran with), frame ``t`` covers padded samples
``[t * hop, t * hop + n_fft)``, giving ``1 + n // hop_length`` frames. The window is a
periodic Hann window of ``win_length`` samples centred in ``n_fft`` with zeros around it.
Magnitudes are unnormalized ``|sum x[n] w[n] exp(-2j pi k n / n_fft)|``, like librosa.

:func:`spectrogram` reproduces SoundSpaces' ``compute_spectrogram`` (AudioGoal): per channel
``log1p(block_reduce(|stft|, (4, 4), np.mean))`` where skimage's ``block_reduce`` pads the
(F, T) array at the end with zeros (``cval=0``) to a multiple of the block and then takes
the mean over every full 4x4 block, so the last row/column blocks are averaged with those
zeros. With 16 kHz audio, ``n_fft=512`` and ``hop_length=160`` this gives 257 bins ->
65 rows and, for 1 s (16000 samples, 101 frames), 26 columns: SoundSpaces' (65, 26, 2),
here channel-first as (2, 65, 26). Shorter chunks: 0.25 s (4000 samples, 26 frames) ->
(2, 65, 7); 0.15 s (2400 samples, 16 frames) -> (2, 65, 4).

:func:`log_mel` uses a Slaney-style mel filterbank (our implementation of librosa's
``htk=False, norm="slaney"`` default): the mel scale is linear below 1 kHz
(``mel = 3 f / 200``) and logarithmic above (``mel = 15 + 27 ln(f / 1000) / ln 6.4``);
``n_mels + 2`` points equally spaced in mel between ``f_min`` and ``f_max`` define
triangles over the FFT bin frequencies, each scaled by ``2 / (f[i + 2] - f[i])`` so every
filter has unit area in Hz. Output ``log(mel @ |stft| ** power + log_offset)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft


@dataclass(frozen=True)
class SpectrogramConfig:
    n_fft: int = 512
    hop_length: int = 160
    win_length: int = 400
    pool: tuple[int, int] = (4, 4)  # (frequency, time) block of skimage-style zero-padded mean pooling
    log1p: bool = True
    pad_mode: str = "reflect"  # or "constant" (zeros, librosa >= 0.10)


@dataclass(frozen=True)
class MelConfig:
    sample_rate_hz: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    win_length: int = 400
    n_mels: int = 64
    f_min_hz: float = 0.0
    f_max_hz: float | None = None  # None: Nyquist
    log_offset: float = 1e-6
    power: float = 2.0
    pad_mode: str = "reflect"


def _check_framing(n_fft: int, hop: int, win: int, pad_mode: str) -> None:
    if n_fft < 2 or hop < 1 or not 1 <= win <= n_fft:
        raise ValueError(f"need n_fft >= 2, hop_length >= 1 and 1 <= win_length <= n_fft; got {n_fft}, {hop}, {win}")
    if pad_mode not in ("reflect", "constant"):
        raise ValueError(f"pad_mode must be 'reflect' or 'constant', got {pad_mode!r}")


def _check_audio(audio, n_fft: int, pad_mode: str) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 2:
        raise ValueError(f"audio must be (channels, samples), got shape {x.shape}; use audio[None] for mono")
    if not np.issubdtype(x.dtype, np.floating):
        hint = " (scale integer PCM to [-1, 1] floats first)" if np.issubdtype(x.dtype, np.integer) else ""
        raise ValueError(f"audio must be a real floating-point array, got dtype {x.dtype}{hint}")
    if x.shape[0] < 1:
        raise ValueError("audio has no channels")
    min_len = n_fft // 2 + 1 if pad_mode == "reflect" else 1
    if x.shape[1] < min_len:
        raise ValueError(f"audio has {x.shape[1]} samples; need at least {min_len} for n_fft={n_fft} ({pad_mode} pad)")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x.sum(dtype=np.float64)):  # (exact for float32 values: the sum cannot overflow)
        raise ValueError("audio contains NaN or inf")
    return x


@lru_cache(maxsize=16)
def _window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of win_length, zero-padded (centred) to n_fft."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    out = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    out[left : left + win_length] = w
    return out.astype(np.float32)


def num_frames(num_samples: int, hop_length: int) -> int:
    return 1 + int(num_samples) // int(hop_length)


def stft_magnitude(
    audio: np.ndarray, n_fft: int = 512, hop_length: int = 160, win_length: int = 400, pad_mode: str = "reflect"
) -> np.ndarray:
    """(C, n) -> (C, n_fft // 2 + 1, 1 + n // hop_length) float32 ``|STFT|`` (librosa framing, centred)."""
    return _stft_magnitude_tf(audio, n_fft, hop_length, win_length, pad_mode).transpose(0, 2, 1)


def _stft_magnitude_tf(audio, n_fft: int, hop_length: int, win_length: int, pad_mode: str) -> np.ndarray:
    """(C, T, F) float32 ``|STFT|`` (frames first: the layout the FFT produces)."""
    _check_framing(n_fft, hop_length, win_length, pad_mode)
    x = _check_audio(audio, n_fft, pad_mode)
    pad = n_fft // 2
    c, n = x.shape
    xp = np.empty((c, n + 2 * pad), np.float32)
    xp[:, pad : pad + n] = x
    if pad_mode == "reflect":  # (np.pad's reflect, without its generic machinery)
        xp[:, :pad] = x[:, pad:0:-1]
        xp[:, pad + n :] = x[:, n - 2 : n - 2 - pad : -1] if n - 2 - pad >= 0 else x[:, n - 2 :: -1][:, :pad]
    else:
        xp[:, :pad] = 0.0
        xp[:, pad + n :] = 0.0
    t = num_frames(n, hop_length)
    frames = np.lib.stride_tricks.as_strided(
        xp, shape=(c, t, n_fft), strides=(xp.strides[0], hop_length * xp.strides[1], xp.strides[1]), writeable=False
    )
    spec = scipy.fft.rfft(frames * _window(n_fft, win_length), axis=-1)  # (C, T, F) complex64
    return np.abs(spec)


@lru_cache(maxsize=32)
def _pool_matrix(n: int, block: int) -> np.ndarray:
    """(ceil(n / block), n): row i averages entries [i * block, (i + 1) * block) over ``block`` (missing = 0)."""
    m = np.zeros((-(-n // block), n), dtype=np.float32)
    m[np.arange(n) // block, np.arange(n)] = 1.0 / block
    return m


def _pool_mean(x: np.ndarray, block: tuple[int, int]) -> np.ndarray:
    """(C, F, T) -> (C, ceil(F / bf), ceil(T / bt)) like ``skimage.measure.block_reduce(x, block, np.mean)``:
    the input is zero-padded at the end to whole blocks and every block is averaged over bf * bt entries."""
    _, f, t = x.shape
    return _pool_matrix(f, block[0]) @ x @ _pool_matrix(t, block[1]).T


def spectrogram(audio: np.ndarray, config: SpectrogramConfig = SpectrogramConfig()) -> np.ndarray:
    """(C, n) -> (C, F, T) float32 SoundSpaces spectrogram: log1p of 4x4 mean-pooled ``|STFT|``."""
    bf, bt = config.pool
    if bf < 1 or bt < 1:
        raise ValueError(f"pool sizes must be >= 1, got {config.pool}")
    mag = _stft_magnitude_tf(audio, config.n_fft, config.hop_length, config.win_length, config.pad_mode)
    c, t, f = mag.shape
    # zero-pad to whole blocks, sum each block, divide by its size (skimage's block_reduce mean);
    # plain reductions (a BLAS product this small can cost milliseconds with threaded BLAS)
    fp, tp = -(-f // bf), -(-t // bt)
    padded = np.zeros((c, tp * bt, fp * bf), np.float32)
    padded[:, :t, :f] = mag
    blocks = padded.reshape(c, tp * bt, fp, bf)
    freq = blocks[..., 0].copy()
    for i in range(1, bf):  # (adding strided slices beats a reduction over short axes)
        freq += blocks[..., i]
    frames = freq.reshape(c, tp, bt, fp)
    out = frames[:, :, 0].copy()
    for i in range(1, bt):
        out += frames[:, :, i]
    out = np.ascontiguousarray(out.transpose(0, 2, 1))  # (C, F', T')
    out *= np.float32(1.0 / (bf * bt))
    return np.log1p(out, out=out) if config.log1p else out


def spectrogram_shape(num_samples: int, config: SpectrogramConfig = SpectrogramConfig()) -> tuple[int, int]:
    """(F, T) of :func:`spectrogram` for ``num_samples`` samples, without computing it."""
    f = config.n_fft // 2 + 1
    t = num_frames(num_samples, config.hop_length)
    return -(-f // config.pool[0]), -(-t // config.pool[1])


def hz_to_mel(f_hz):
    """Slaney mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above (27 mel per factor 6.4)."""
    f = np.asarray(f_hz, dtype=np.float64)
    return np.where(f < 1000.0, 3.0 * f / 200.0, 15.0 + 27.0 * np.log(np.maximum(f, 1e-12) / 1000.0) / np.log(6.4))


def mel_to_hz(mel):
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m < 15.0, 200.0 * m / 3.0, 1000.0 * np.exp((m - 15.0) * np.log(6.4) / 27.0))


@lru_cache(maxsize=16)
def mel_filterbank(
    sample_rate_hz: int, n_fft: int, n_mels: int, f_min_hz: float = 0.0, f_max_hz: float | None = None
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 Slaney-normalized triangular filters (unit area in Hz)."""
    f_max = sample_rate_hz / 2.0 if f_max_hz is None else float(f_max_hz)
    if not 0.0 <= f_min_hz < f_max <= sample_rate_hz / 2.0 or n_mels < 1:
        raise ValueError(f"need 0 <= f_min < f_max <= Nyquist and n_mels >= 1; got {f_min_hz}, {f_max}, {n_mels}")
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate_hz)
    pts = mel_to_hz(np.linspace(hz_to_mel(f_min_hz), hz_to_mel(f_max), n_mels + 2))
    lower = (fft_hz[None, :] - pts[:-2, None]) / (pts[1:-1] - pts[:-2])[:, None]
    upper = (pts[2:, None] - fft_hz[None, :]) / (pts[2:] - pts[1:-1])[:, None]
    fb = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (pts[2:] - pts[:-2]))[:, None]
    return fb.astype(np.float32)


def log_mel(audio: np.ndarray, config: MelConfig = MelConfig()) -> np.ndarray:
    """(C, n) -> (C, n_mels, T) float32 ``log(mel_filterbank @ |STFT| ** power + log_offset)``."""
    mag = stft_magnitude(audio, config.n_fft, config.hop_length, config.win_length, config.pad_mode)
    fb = mel_filterbank(config.sample_rate_hz, config.n_fft, config.n_mels, config.f_min_hz, config.f_max_hz)
    power = mag if config.power == 1.0 else mag**config.power
    return np.log(np.matmul(fb, power) + np.float32(config.log_offset)).astype(np.float32)
