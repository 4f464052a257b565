"""ODE solvers for the refinement flow d psi / dt = u_t(psi), psi_0 = x_sim, integrated to t = 1.

Every solver takes a budget of network calls (NFE) and spends exactly that many:

- ``euler`` (Algorithm 2): NFE steps of size 1/NFE.
- ``midpoint`` (textbook explicit midpoint): each step evaluates at (psi, t) and at the half-step
  point (psi + h/2 v1, t + h/2) and moves by h v2.
- ``heun`` (explicit trapezoid): evaluates at (psi, t) and at the Euler predictor (psi + h v1, t + h)
  and moves by h (v1 + v2) / 2. The seed's Algorithm 3 ("Midpoint", delta = 2 / n, averaging the
  velocities at psi and at the full Euler step) is this update.

The two second-order solvers take NFE // 2 two-call steps; an odd NFE adds one final Euler step, and
all steps share one size 1 / (NFE // 2 + NFE % 2) (NFE 1 is Euler). The world model's samplers are
DDPM/DDIM noise schedules, not ODE solvers on a straight path, so nothing is shared with them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

SOLVERS = ("euler", "midpoint", "heun")


class SolverError(ValueError):
    """Unknown solver or a bad number of function evaluations."""


class CountingField:
    """Wraps ``field(psi, t) -> velocity`` and counts the calls (``nfe``)."""

    def __init__(self, field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.field = field
        self.nfe = 0

    def __call__(self, psi: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.field(psi, t)


def _time(t: float, like: torch.Tensor) -> torch.Tensor:
    return torch.full((like.shape[0],), float(t), dtype=like.dtype, device=like.device)


def solve(field: Callable, x0: torch.Tensor, solver: str = "euler", nfe: int = 4) -> torch.Tensor:
    """psi_1 from psi_0 = ``x0`` (B, ...) with ``nfe`` calls of ``field(psi, t (B,))``."""
    if solver not in SOLVERS:
        raise SolverError(f"unknown solver {solver!r}; use one of {SOLVERS}")
    if not isinstance(nfe, int) or nfe < 1:
        raise SolverError(f"nfe must be a positive integer, got {nfe!r}")
    psi = x0
    if solver == "euler":
        h = 1.0 / nfe
        for i in range(nfe):
            psi = psi + h * field(psi, _time(i * h, psi))
        return psi
    pairs, single = divmod(nfe, 2)
    h = 1.0 / (pairs + single)
    t = 0.0
    for _ in range(pairs):
        v1 = field(psi, _time(t, psi))
        if solver == "midpoint":
            v2 = field(psi + 0.5 * h * v1, _time(t + 0.5 * h, psi))
            psi = psi + h * v2
        else:
            v2 = field(psi + h * v1, _time(t + h, psi))
            psi = psi + 0.5 * h * (v1 + v2)
        t += h
    if single:
        psi = psi + h * field(psi, _time(t, psi))
    return psi
