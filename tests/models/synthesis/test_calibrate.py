"""Least-squares start of the refiner's per-bin ear matrices."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from avworld.models.synthesis import GatedConvRefiner, RefinerConfig, solve  # noqa: E402
from avworld.models.synthesis.calibrate import (  # noqa: E402
    CalibrationError,
    fit_ear_matrices,
    start_ear_matrices,
)

BINS = 257


def _pair(seed: int = 0, noise: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    sim = torch.rand(6, 2 * BINS, 9, generator=g)
    w = torch.randn(BINS, 2, 2, generator=g)
    left, right = sim[:, :BINS], sim[:, BINS:]
    rx = torch.cat([w[None, :, 0, 0, None] * left + w[None, :, 0, 1, None] * right,
                    w[None, :, 1, 0, None] * left + w[None, :, 1, 1, None] * right], dim=1)
    return sim, rx + noise * torch.randn(rx.shape, generator=g), w


def test_fit_recovers_known_matrices_per_bin():
    sim, rx, w = _pair()
    torch.testing.assert_close(fit_ear_matrices(sim, rx), w, atol=1e-4, rtol=1e-4)


def test_fit_is_the_least_squares_solution_under_noise():
    """Against numpy's lstsq on one bin, built independently from the flattened frames."""
    sim, rx, _ = _pair(1, noise=0.3)
    got = fit_ear_matrices(sim, rx)
    f = 17
    x = torch.stack([sim[:, f].reshape(-1), sim[:, BINS + f].reshape(-1)], 1).double()
    y = torch.stack([rx[:, f].reshape(-1), rx[:, BINS + f].reshape(-1)], 1).double()
    ref = torch.linalg.lstsq(x, y).solution.T.float()
    torch.testing.assert_close(got[f], ref, atol=1e-4, rtol=1e-4)


def test_one_euler_step_from_x_sim_lands_on_the_fit():
    sim, rx, w = _pair(2)
    cfg = RefinerConfig(channels=4, blocks=2, emb_dim=8, domain="mag", mag_power=1.0, direct=True, direct_ears=True)
    model = GatedConvRefiner(cfg).eval()
    start_ear_matrices(model, sim, rx)
    tx, pose = torch.rand(6, BINS, 9), torch.zeros(6, 7)
    with torch.no_grad():
        out = solve(lambda psi, t: model(psi, tx, pose, t), sim, "euler", 1)
    torch.testing.assert_close(out, rx, atol=1e-3, rtol=1e-3)
    # with more steps the affine-in-t path approximates the straight path's velocity D (I + t D)^-1
    with torch.no_grad():
        out4 = solve(lambda psi, t: model(psi, tx, pose, t), sim, "euler", 4)
    assert (out4 - rx).abs().mean() < 0.5 * (sim - rx).abs().mean()


def test_bad_inputs_are_typed():
    sim, rx, _ = _pair()
    with pytest.raises(CalibrationError, match="2 \\* bins"):
        fit_ear_matrices(sim[:, :-1], rx[:, :-1])
    with pytest.raises(CalibrationError):
        fit_ear_matrices(sim, rx[:, :, :-1])
    plain = GatedConvRefiner(RefinerConfig(channels=4, blocks=2, emb_dim=8, domain="mag", direct=True))
    with pytest.raises(CalibrationError, match="direct_ears=True"):
        start_ear_matrices(plain, sim, rx)
