"""Least-squares start of the refiner's per-bin ear matrices (``RefinerConfig.direct_ears``).

Before flow training, the linear path can start where a linear calibration of the physics puts it:
per frequency bin f, the 2 x 2 matrix W_f that best maps x_sim's two ears to x_rx's in the least-squares
sense over every training frame (magnitudes ** mag_power in the ``mag`` domain, samples in ``wave``).
With D_f = W_f - I, the straight path psi_t = (I + t D_f) x_sim has the velocity
D_f (I + t D_f)^-1 psi_t = (D_f - t D_f^2 + ...) psi_t; the path's matrices start at its first two
terms, A_f = D_f and B_f = -D_f^2, so one Euler step from x_sim lands exactly on W_f x_sim. Training
then moves everything (the matrices included) by the flow loss as usual.

Why: the linear path's parameters each touch one bin of one ear, so their gradients under the mean
flow loss are tiny and a few thousand Adam steps move them little while the gated stack fits the
training placement (docs/synthesis.md gives the measurements).
"""

from __future__ import annotations

import torch


class CalibrationError(ValueError):
    """Inputs that cannot be fitted (shapes, no ear matrices in the model)."""


def fit_ear_matrices(sim: torch.Tensor, rx: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """(bins, 2, 2) least-squares W_f [ear out, ear in] with rx[:, ear, f] ~ W_f @ sim[:, :, f].

    ``sim``, ``rx``: (N, 2 * bins, frames) in the refiner's channel layout (left bins, then right bins).
    ``ridge`` (relative to the mean input power per bin) keeps silent bins well posed (W_f -> 0 there).
    """
    if sim.shape != rx.shape or sim.ndim != 3 or sim.shape[1] % 2:
        raise CalibrationError(f"sim and rx must both be (N, 2 * bins, frames), got {tuple(sim.shape)} and "
                               f"{tuple(rx.shape)}")
    n, ch, frames = sim.shape
    x = sim.double().reshape(n, 2, ch // 2, frames).permute(2, 1, 0, 3).reshape(ch // 2, 2, -1)  # (F, 2, M)
    y = rx.double().reshape(n, 2, ch // 2, frames).permute(2, 1, 0, 3).reshape(ch // 2, 2, -1)
    xx = x @ x.transpose(1, 2)  # (F, 2, 2)
    yx = y @ x.transpose(1, 2)
    eye = torch.eye(2, dtype=xx.dtype, device=xx.device)
    reg = ridge * (xx.diagonal(dim1=1, dim2=2).mean(dim=1) + 1e-30)[:, None, None] * eye
    return torch.linalg.solve(xx + reg, yx.transpose(1, 2)).transpose(1, 2).float()  # W = yx (xx)^-1


@torch.no_grad()
def start_ear_matrices(model, sim: torch.Tensor, rx: torch.Tensor) -> torch.Tensor:
    """Set ``model.ears`` / ``ears_t`` to D / -D^2 of the least-squares fit (D = W - I); returns W."""
    if getattr(model, "ears", None) is None:
        raise CalibrationError("the model has no ear matrices: build it with RefinerConfig(direct=True, "
                               "direct_ears=True)")
    w = fit_ear_matrices(sim, rx)
    if w.shape != model.ears.shape:
        raise CalibrationError(f"fitted matrices {tuple(w.shape)} do not match the model's {tuple(model.ears.shape)}")
    d = w - torch.eye(2, dtype=w.dtype, device=w.device)
    model.ears.copy_(d)
    model.ears_t.copy_(-(d @ d))
    return w
