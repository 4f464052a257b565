"""LPIPS (Zhang et al. 2018, "v0.1", AlexNet variant) from local weight files; nothing is downloaded.

The network is written here because torchvision (where AlexNet lives) does not work with the
CPU torch of this project. It reproduces the reference implementation (the ``lpips`` package):

* inputs in [-1, 1] are normalized by the scaling layer (shift -0.030, -0.088, -0.188; scale
  0.458, 0.448, 0.450);
* AlexNet's five ReLU outputs (torchvision's ``features`` layout: conv 11x11/4, pool, conv 5x5,
  pool, conv 3x3, conv 3x3, conv 3x3) are unit-normalized along channels (eps 1e-10);
* the squared differences are weighted per channel by the learned 1x1 "lin" layers, averaged
  over space and summed over the five layers.

Weights: torchvision's AlexNet state dict (``alexnet-owt-7be5be79.pth``: keys
``features.{0,3,6,8,10}.{weight,bias}``; ``classifier.*`` is ignored) and the LPIPS linear layers
(``lpips/weights/v0.1/alex.pth``: keys ``lin{0..4}.model.1.weight``), either as two files or one
file holding both dicts merged. Pass them as ``PATH`` or ``BACKBONE,LINEAR``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

CHANNELS = (64, 192, 384, 256, 256)
_CONVS = ((3, 64, 11, 4, 2), (64, 192, 5, 1, 2), (192, 384, 3, 1, 1), (384, 256, 3, 1, 1), (256, 256, 3, 1, 1))
_FEATURE_INDEX = (0, 3, 6, 8, 10)  # torchvision's alexnet.features indices of the convolutions
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPSWeightsError(ValueError):
    """LPIPS weight files that are missing, unreadable or of another layout."""


class AlexLPIPS(nn.Module):
    """LPIPS-Alex distance; ``forward(x, y)`` takes (N, 3, H, W) in [-1, 1], returns (N,)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, stride=s, padding=p) for i, o, k, s, p in _CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max-pool before the 2nd and 3rd convolutions
                x = nn.functional.max_pool2d(x, 3, 2)
            x = torch.relu(conv(x))
            out.append(x)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for fx, fy, lin in zip(self.features(x), self.features(y), self.lins):
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((nx - ny) ** 2).mean(dim=(2, 3))[:, 0]
        return total

    def load_reference(self, state: dict) -> AlexLPIPS:
        """Load a state dict in the reference layout (torchvision's ``features.*`` + LPIPS' ``lin*``)."""
        want = {}
        for j, f in enumerate(_FEATURE_INDEX):
            for p in ("weight", "bias"):
                want[f"convs.{j}.{p}"] = f"features.{f}.{p}"
        for j in range(5):
            want[f"lins.{j}.weight"] = f"lin{j}.model.1.weight"
        missing = sorted(v for v in want.values() if v not in state)
        if missing:
            raise LPIPSWeightsError(f"the LPIPS weights lack {missing[:4]} ({len(missing)} keys): pass torchvision's "
                                    "AlexNet state dict (features.*) and LPIPS v0.1 alex.pth (lin*.model.1.weight)")
        own = self.state_dict()
        new = {}
        for k, ref in want.items():
            v = state[ref]
            if tuple(v.shape) != tuple(own[k].shape):
                raise LPIPSWeightsError(f"LPIPS weight {ref} has shape {tuple(v.shape)}, AlexNet-LPIPS needs "
                                        f"{tuple(own[k].shape)}: these are not AlexNet / LPIPS-alex weights")
            new[k] = v.float()
        self.load_state_dict({**own, **new})
        return self


def _read(path: Path) -> dict:
    if not path.is_file():
        raise LPIPSWeightsError(f"{path}: no such file; LPIPS needs torchvision's AlexNet weights and LPIPS v0.1 "
                                "alex.pth as local files (avworld downloads nothing)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds on foreign or corrupt files
        raise LPIPSWeightsError(f"{path}: not a readable torch state dict") from None
    if not isinstance(state, dict):
        raise LPIPSWeightsError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def load_lpips(spec: str) -> AlexLPIPS:
    """An eval-mode :class:`AlexLPIPS` from ``"PATH"`` (both dicts merged) or ``"BACKBONE,LINEAR"``."""
    state: dict = {}
    for part in str(spec).split(","):
        if part.strip():
            state.update(_read(Path(part.strip())))
    return AlexLPIPS().load_reference(state).eval()


@torch.no_grad()
def lpips_distance(model: AlexLPIPS, a, b, batch: int = 64) -> np.ndarray:
    """Per-item LPIPS of uint8 frames (N, H, W, 3)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"LPIPS needs two (N, H, W, 3) uint8 arrays of one shape, got {a.shape} and {b.shape}")
    out = []
    for i in range(0, len(a), batch):
        x = torch.from_numpy(a[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        y = torch.from_numpy(b[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        out.append(model(x, y).numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)
