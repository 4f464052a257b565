"""Baselines for the tokenizers at the same latent size (issue 17, "Numbers"); numpy/scipy only.

A tokenizer squeezes an image or a binaural clip into ``latent_values`` numbers; these baselines
squeeze it into the same budget with classic signal processing, so a trained tokenizer's table has
something to beat (and an upper bound, the copy of the input):

* :func:`copy_roundtrip` - the input itself (PSNR ``inf``; the tables cap it, see
  :mod:`avworld.eval.tokenizer_report`).
* :func:`bicubic_roundtrip` - down-sample each image to ``s x s x 3`` with the largest ``s`` such
  that ``3 s^2 <= latent_values`` (a 4x8x8 latent = 256 values -> 9 x 9), then up-sample back.
* :func:`linear_resample_roundtrip` - linear PCM at a lower rate: each ear band-limited and
  resampled to ``latent_values // 2`` samples, then back (a 64 x 20 latent = 1,280 values -> 640
  samples per ear, i.e. 4.27 kHz for 0.15 s clips).
* :func:`mulaw_roundtrip` - 8-bit mu-law (mu = 255) at a lower rate, in the same bytes as a
  float16 latent (``2 V`` bytes for ``V`` values).

"Linear" means uniform PCM (as opposed to mu-law), not linear interpolation: every resampling here
is band-limited. All functions are vectorized over the batch and deterministic.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import resample_poly

from avworld.eval.nav_metrics import MetricError

KEYS_A = -0.5  # Keys (1981) cubic convolution; the "bicubic" of PIL, OpenCV (-0.75 there) and torch (-0.75)
MU = 255
PEAK_BYTES = 2  # the per-clip peak of the mu-law baseline, stored as one float16


class BaselineError(MetricError):
    """Input to a tokenizer baseline has the wrong shape, dtype or latent size."""


def float16_latent_bytes(latent_values: int) -> int:
    """Bytes of a float16 latent of ``latent_values`` numbers (the budget of :func:`mulaw_roundtrip`)."""
    return 2 * _positive_int(latent_values, "latent_values")


def _positive_int(v, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise BaselineError(f"{name} must be a positive integer, got {v!r}; e.g. 4 * 8 * 8 = 256 for a 4x8x8 latent")
    return int(v)


# ---------------------------------------------------------------------------------------- images


def _check_images(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise BaselineError(
            f"images must have shape (N, H, W, 3), got {x.shape}; stack RGB frames on axis 0 with channels last "
            "(x.transpose(0, 2, 3, 1) for (N, 3, H, W))"
        )
    if x.dtype != np.uint8:
        raise BaselineError(
            f"images must be uint8 (0..255), got {x.dtype}; convert with (x * 255).round().astype(np.uint8)"
        )
    return x


def side_for_latent(latent_values: int, channels: int = 3) -> int:
    """The largest ``s`` with ``channels * s * s <= latent_values`` (256 -> 9)."""
    v = _positive_int(latent_values, "latent_values")
    s = math.isqrt(v // channels)
    if s < 1:
        raise BaselineError(f"latent_values={v} is below one pixel ({channels} values); pass at least {channels}")
    return s


def keys_cubic(t: np.ndarray, a: float = KEYS_A) -> np.ndarray:
    """The Keys cubic convolution kernel (support [-2, 2]; a = -0.5 reproduces quadratics)."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def bicubic_matrix(n_in: int, n_out: int, a: float = KEYS_A) -> np.ndarray:
    """``(n_out, n_in)`` resampling matrix of antialiased bicubic interpolation along one axis.

    Pixel centres are aligned (``x_in = (i + 0.5) n_in / n_out - 0.5``). On the way down the kernel
    is stretched by the scale factor (a low-pass of the output's Nyquist, as PIL and torch's
    ``antialias=True`` do); taps outside the image are dropped and each row renormalised to sum 1
    (PIL's border rule), so a constant image stays that constant.
    """
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.arange(n_in)
    w = keys_cubic((src[None, :] - centre[:, None]) / support, a)
    return w / w.sum(axis=1, keepdims=True)


def resize_bicubic(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Float ``(N, H, W, C)`` -> float64 ``(N, height, width, C)``, separable antialiased bicubic."""
    x = np.asarray(images, dtype=np.float64)
    mh, mw = bicubic_matrix(x.shape[1], height), bicubic_matrix(x.shape[2], width)
    return np.einsum("ih,nhwc,jw->nijc", mh, x, mw, optimize=True)


def bicubic_roundtrip(images_uint8, latent_values: int) -> np.ndarray:
    """Down-sample to ``s x s`` (``3 s^2 <= latent_values``) and back, both bicubic; uint8 ``(N, H, W, 3)``.

    Keys cubic convolution (a = -0.5) with antialiasing on the way down (:func:`bicubic_matrix`),
    written out as two small matrices per axis, so the whole batch is two matrix products. Not
    ``scipy.ndimage.zoom(order=3)``: that is a cubic B-spline *interpolation* with no low-pass, so
    64 -> 9 px would alias (sample every 7th pixel) and make the baseline look worse than bicubic
    down-sampling as everyone implements it (PIL, torch ``antialias=True``). The result is clipped
    to [0, 255] and rounded.
    """
    x = _check_images(images_uint8)
    s = side_for_latent(latent_values)
    n, h, w, _ = x.shape
    small = resize_bicubic(x, s, s)
    back = resize_bicubic(small, h, w)
    return np.clip(np.rint(back), 0, 255).astype(np.uint8)


def copy_roundtrip(x) -> np.ndarray:
    """The copy-of-input upper bound: a copy of ``x`` (images or audio), unchanged."""
    return np.array(x, copy=True)


# ----------------------------------------------------------------------------------------- audio


def _check_audio(audio) -> np.ndarray:
    x = np.asarray(audio)
    if x.ndim != 3 or x.shape[1] != 2:
        raise BaselineError(
            f"audio must have shape (N, 2, S) (left, right on axis 1), got {x.shape}; "
            "stack binaural clips on axis 0 (x.transpose(0, 2, 1) for (N, S, 2))"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise BaselineError(f"audio must be float waveforms, got {x.dtype}; use x.astype(np.float32) / 32768 for int16")
    if not np.all(np.isfinite(x)):
        raise BaselineError("audio contains NaN or inf samples; fix the producer of the clips")
    return x.astype(np.float64)


def resample_length(x: np.ndarray, n_out: int) -> np.ndarray:
    """Resample the last axis of ``x`` to exactly ``n_out`` samples, band-limited.

    ``scipy.signal.resample_poly`` with the exact ratio ``n_out / n_in`` reduced by their gcd (no
    rational approximation is needed: both are integers) and its default Kaiser-windowed FIR
    low-pass at the lower Nyquist, zero-padded at the clip's edges. Measured on avw-tiny test clips
    (2,400 -> 640 / 1,279 -> 2,400 samples): ``padtype="line"`` changes LSD by +0.5 dB and SI-SDR by
    < 0.1 dB; the FFT resampler (which treats the short clip as periodic) has 1-3.5 dB worse LSD.
    """
    n_in = x.shape[-1]
    if n_out == n_in:
        return x.copy()
    g = math.gcd(n_out, n_in)
    y = resample_poly(x, n_out // g, n_in // g, axis=-1)
    return y[..., :n_out]


def linear_resample_roundtrip(audio, latent_values: int) -> np.ndarray:
    """Each ear resampled to ``latent_values // 2`` samples and back (see :func:`resample_length`).

    ``(N, 2, S)`` float -> float32 ``(N, 2, S)``. A budget of ``2 S`` values or more keeps the clip
    as it is (nothing is up-sampled beyond the original rate).
    """
    x = _check_audio(audio)
    per_ear = _positive_int(latent_values, "latent_values") // 2
    if per_ear < 1:
        raise BaselineError(f"latent_values={latent_values} leaves no sample per ear; pass at least 2")
    s = x.shape[-1]
    if per_ear >= s:
        return x.astype(np.float32)
    return resample_length(resample_length(x, per_ear), s).astype(np.float32)


def mulaw_encode(x: np.ndarray, bits: int = 8, mu: int = MU) -> np.ndarray:
    """``x`` in [-1, 1] -> integer codes 0 .. 2^bits - 1 (mu-law companding, uniform code grid)."""
    levels = 2**bits - 1
    y = np.sign(x) * np.log1p(mu * np.abs(np.clip(x, -1.0, 1.0))) / np.log1p(mu)
    return np.rint((y + 1) / 2 * levels).astype(np.int64)


def mulaw_decode(codes: np.ndarray, bits: int = 8, mu: int = MU) -> np.ndarray:
    """Inverse of :func:`mulaw_encode` (float64 in [-1, 1])."""
    levels = 2**bits - 1
    y = codes.astype(np.float64) / levels * 2 - 1
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def mulaw_samples_per_ear(latent_bytes: int, bits: int = 8) -> int:
    """Samples per ear that ``latent_bytes`` hold at ``bits`` per sample, after the 2-byte peak."""
    b = _positive_int(latent_bytes, "latent_bytes")
    return (b - PEAK_BYTES) * 8 // bits // 2


def mulaw_roundtrip(audio, latent_bytes: int, bits: int = 8) -> np.ndarray:
    """Resample, mu-law quantize (mu = 255, ``bits`` per sample), decode, resample back.

    The budget is ``latent_bytes`` (a float16 latent of ``V`` values: ``2 V`` bytes, see
    :func:`float16_latent_bytes`). Each clip is normalised by its own peak (the largest ``|x|`` over
    both ears of the resampled clip, so the ears keep their level difference); that peak is stored
    as one float16, and its 2 bytes come out of the budget, leaving ``(latent_bytes - 2) * 8 / bits
    / 2`` samples per ear (2,560 bytes at 8 bits -> 1,279 samples per ear). ``(N, 2, S)`` float ->
    float32 ``(N, 2, S)``. A silent clip stays silent.
    """
    x = _check_audio(audio)
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise BaselineError(f"bits must be an integer in 2..16, got {bits!r}; 8 is the classic mu-law")
    per_ear = mulaw_samples_per_ear(latent_bytes, bits)
    if per_ear < 1:
        need = PEAK_BYTES + math.ceil(2 * bits / 8)
        raise BaselineError(f"latent_bytes={latent_bytes} holds no sample per ear at {bits} bits; pass at least {need}")
    s = x.shape[-1]
    low = resample_length(x, min(per_ear, s))
    peak = np.abs(low).max(axis=(1, 2), keepdims=True)
    peak16 = peak.astype(np.float16).astype(np.float64)
    peak16 = np.where(peak16 < peak, np.nextafter(peak16.astype(np.float16), np.float16(np.inf)), peak16)
    safe = np.where(peak16 > 0, peak16, 1.0)
    dec = mulaw_decode(mulaw_encode(low / safe, bits), bits) * safe
    dec = np.where(peak16 > 0, dec, 0.0)
    return resample_length(dec, s).astype(np.float32)
