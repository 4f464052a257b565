"""Turn depth images into RGB pictures for people (semantic ids: use
:func:`avworld.vision.topdown.colorize_semantic`)."""

from __future__ import annotations

import numpy as np

# A short perceptually ordered ramp (dark purple -> blue -> green -> yellow), close to viridis.
_RAMP = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
)


def depth_to_rgb(depth: np.ndarray, max_depth_m: float | None = None) -> np.ndarray:
    """(..., H, W[, 1]) metres -> (..., H, W, 3) uint8; near = dark, far = bright.

    ``max_depth_m`` fixes the scale; by default each image uses its own maximum so
    short indoor views still use the whole ramp.
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.shape[-1] == 1:
        d = d[..., 0]
    scale = float(max_depth_m) if max_depth_m else float(max(d.max(), 1e-6))
    x = np.clip(d / scale, 0.0, 1.0) * (len(_RAMP) - 1)
    i = np.minimum(x.astype(np.int64), len(_RAMP) - 2)
    f = (x - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)
