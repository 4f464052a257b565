"""Image reconstruction metrics: PSNR, SSIM and MS-SSIM (numpy/scipy, no torch).

Inputs are batches ``(N, H, W, C)`` (a single ``(H, W, C)`` image is promoted to a batch of
one), either ``uint8`` (divided by 255) or floating point already in ``[0, 1]``. Every metric
works on that ``[0, 1]`` scale, so the data range is 1. Each function returns one value per
image, shape ``(N,)``, float64; average them yourself (``.mean()``).

* PSNR    = 10 * log10(1 / MSE), MSE over all pixels and channels of an image. Identical
            images give ``inf`` (pass ``max_db`` to cap it, e.g. 100).
* SSIM    = Wang et al. 2004: Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03,
            C1 = (K1 L)^2, C2 = (K2 L)^2 with L = 1, computed per channel and averaged over
            channels and positions. Borders as torchmetrics: the image is mirror-padded by 5
            px (``torch`` "reflect") so the map has the image's size.
* MS-SSIM = Wang, Simoncelli & Bovik 2003: 5 scales, weights (0.0448, 0.2856, 0.3001, 0.2363,
            0.1333), 2 x 2 average pooling between scales; the contrast-structure term at
            scales 1..4 (cropped by 5 px, as torchmetrics) and the full SSIM at scale 5, each
            clamped at 0 (torchmetrics' default ``normalize="relu"``) before the weighted
            product. Fewer scales: pass ``weights=MS_SSIM_WEIGHTS[:3]`` (smaller images).

The values agree with ``torchmetrics`` (tests/eval/test_image_metrics.py, to 1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import correlate1d

from avworld.eval.nav_metrics import MetricError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
DATA_RANGE = 1.0


class ImageMetricError(MetricError):
    """Images given to a metric have the wrong shape, dtype or value range."""


def to_unit_float(images, name: str = "images") -> np.ndarray:
    """``(N, H, W, C)`` or ``(H, W, C)`` uint8 / float in [0, 1] -> float64 ``(N, H, W, C)`` in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ImageMetricError(
            f"{name} must have shape (N, H, W, C) or (H, W, C), got {x.shape}; "
            "channels go last (transpose (N, C, H, W) arrays with x.transpose(0, 2, 3, 1))"
        )
    if x.shape[-1] not in (1, 3, 4) and x.shape[1] in (1, 3, 4):
        raise ImageMetricError(
            f"{name} has shape {x.shape}, which looks channels-first; pass (N, H, W, C), e.g. x.transpose(0, 2, 3, 1)"
        )
    if x.dtype == np.uint8:
        return x.astype(np.float64) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ImageMetricError(
            f"{name} has dtype {x.dtype}; pass uint8 (0..255) or floats in [0, 1] "
            "(e.g. x.astype(np.float32) / 255 for other integer images)"
        )
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ImageMetricError(f"{name} contains NaN or inf values; fix the producer of the images")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ImageMetricError(
            f"{name} are floats in [{lo:.4g}, {hi:.4g}], outside [0, 1]; rescale them "
            "((x + 1) / 2 for [-1, 1], x / 255 for [0, 255]) or clip with np.clip(x, 0, 1)"
        )
    return x


def _pair(preds, target) -> tuple[np.ndarray, np.ndarray]:
    p, t = to_unit_float(preds, "preds"), to_unit_float(target, "target")
    if p.shape != t.shape:
        raise ImageMetricError(
            f"preds {p.shape} and target {t.shape} differ in shape; compare images of the same "
            "size and channel count (resize or crop the reconstruction to the original)"
        )
    if p.shape[0] == 0:
        raise ImageMetricError("no images given (N = 0); pass at least one image")
    return p, t


def psnr(preds, target, max_db: float | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image (data range 1); ``inf`` for identical images."""
    p, t = _pair(preds, target)
    mse = np.mean((p - t) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10(DATA_RANGE**2 / mse)
    return out if max_db is None else np.minimum(out, float(max_db))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian of SSIM (the 2-D window is its outer product)."""
    d = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-0.5 * (d / sigma) ** 2)
    return g / g.sum()


def _blur(x: np.ndarray, axes: tuple[int, int], win: np.ndarray) -> np.ndarray:
    for ax in axes:
        x = correlate1d(x, win, axis=ax, mode="mirror")
    return x


def ssim_maps(
    x: np.ndarray,
    y: np.ndarray,
    axes: tuple[int, int] = (1, 2),
    data_range: float = DATA_RANGE,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and contrast-structure maps of two float arrays over the two ``axes`` (same shape)."""
    win = gaussian_window(window, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _blur(x, axes, win), _blur(y, axes, win)
    var_x = np.maximum(_blur(x * x, axes, win) - mu_x**2, 0.0)
    var_y = np.maximum(_blur(y * y, axes, win) - mu_y**2, 0.0)
    cov = _blur(x * y, axes, win) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return lum * cs, cs


def ssim(preds, target) -> np.ndarray:
    """Structural similarity per image (Gaussian 11/1.5, K1 0.01, K2 0.03, data range 1)."""
    p, t = _pair(preds, target)
    _check_min_size(p.shape, SSIM_WINDOW, "SSIM", "use images of at least 11 x 11 px")
    s, _ = ssim_maps(p, t)
    return s.mean(axis=(1, 2, 3))


def _check_min_size(shape: Sequence[int], need: int, what: str, fix: str) -> None:
    h, w = shape[1], shape[2]
    if min(h, w) < need:
        raise ImageMetricError(f"{what} needs images of at least {need} x {need} px, got {h} x {w}; {fix}")


def _pool2(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, : 2 * h2, : 2 * w2].reshape(n, h2, 2, w2, 2, c).mean(axis=(2, 4))


def ms_ssim(preds, target, weights: Sequence[float] = MS_SSIM_WEIGHTS) -> np.ndarray:
    """Multi-scale SSIM per image (default 5 scales, Wang et al. 2003 weights)."""
    p, t = _pair(preds, target)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ImageMetricError(f"weights must be a non-empty sequence of floats, got {weights!r}")
    scales = w.size
    need = SSIM_WINDOW * 2 ** (scales - 1)
    fewer = [k for k in range(scales - 1, 0, -1) if min(p.shape[1:3]) >= SSIM_WINDOW * 2 ** (k - 1)]
    hint = f"pass weights=MS_SSIM_WEIGHTS[:{fewer[0]}] or use larger images" if fewer else "use SSIM instead"
    _check_min_size(p.shape, need, f"MS-SSIM with {scales} scales", hint)
    pad = (SSIM_WINDOW - 1) // 2
    terms = []
    for k in range(scales):
        s, cs = ssim_maps(p, t)
        if k == scales - 1:
            terms.append(s.mean(axis=(1, 2, 3)))
        else:
            terms.append(cs[:, pad:-pad, pad:-pad].mean(axis=(1, 2, 3)))
            p, t = _pool2(p), _pool2(t)
    stack = np.maximum(np.stack(terms), 0.0)
    return np.prod(stack ** w[:, None], axis=0)
