"""Algorithm 1 of π-AVAS: conditional flow matching from x_sim to x_rx.

psi_t = t x_rx + (1 - t) x_sim + sigma eps, and the network regresses the constant velocity
x_rx - x_sim of that straight path. The pure neural baseline is the same with x_sim = 0.
"""

from __future__ import annotations

import torch

#: the seed's noise scale
SIGMA = 1e-4


def interpolate(x_sim: torch.Tensor, x_rx: torch.Tensor, t: torch.Tensor, eps: torch.Tensor | None = None,
                sigma: float = SIGMA) -> torch.Tensor:
    """psi_t (B, ...) for per-example times ``t`` (B,)."""
    tt = t.reshape(-1, *([1] * (x_rx.ndim - 1))).to(x_rx.dtype)
    psi = tt * x_rx + (1 - tt) * x_sim
    if eps is not None:
        psi = psi + sigma * eps
    return psi


def velocity_target(x_sim: torch.Tensor, x_rx: torch.Tensor) -> torch.Tensor:
    """u* = x_rx - x_sim."""
    return x_rx - x_sim


def flow_loss(model, x_tx, x_sim, x_rx, pose, t, eps, sigma: float = SIGMA) -> torch.Tensor:
    """Mean squared error of the network's velocity at psi_t against x_rx - x_sim."""
    psi = interpolate(x_sim, x_rx, t, eps, sigma)
    return torch.mean((model(psi, x_tx, pose, t) - velocity_target(x_sim, x_rx)) ** 2)
