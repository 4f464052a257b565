"""Algorithm 1 of π-AVAS on a toy batch: interpolation, target and loss."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from avworld.models.synthesis.flow import SIGMA, flow_loss, interpolate, velocity_target  # noqa: E402


def test_interpolation_and_target_match_algorithm_1():
    x_sim = torch.tensor([[[1.0, 2.0]], [[0.0, -4.0]], [[3.0, 3.0]]])  # (3, 1, 2)
    x_rx = torch.tensor([[[5.0, 2.0]], [[2.0, 0.0]], [[-1.0, 1.0]]])
    t = torch.tensor([0.0, 0.25, 1.0])
    eps = torch.tensor([[[1.0, -1.0]], [[2.0, 0.0]], [[0.5, 0.5]]])
    psi = interpolate(x_sim, x_rx, t, eps, sigma=0.1)
    # psi = t x_rx + (1 - t) x_sim + sigma eps, worked by hand
    expect = torch.tensor([[[1.1, 1.9]], [[0.5 + 0.2, -3.0]], [[-0.95, 1.05]]])
    torch.testing.assert_close(psi, expect)
    torch.testing.assert_close(velocity_target(x_sim, x_rx), torch.tensor([[[4.0, 0.0]], [[2.0, 4.0]], [[-4.0, -2.0]]]))
    assert SIGMA == 1e-4


def test_loss_is_zero_for_the_true_velocity_and_mse_otherwise():
    g = torch.Generator().manual_seed(1)
    x_sim, x_rx = torch.randn(4, 2, 16, generator=g), torch.randn(4, 2, 16, generator=g)
    tx, pose = torch.randn(4, 16, generator=g), torch.randn(4, 7, generator=g)
    t, eps = torch.rand(4, generator=g), torch.randn(4, 2, 16, generator=g)
    seen = {}

    def ideal(psi, x_tx, p, tt):
        seen["psi"] = psi
        return x_rx - x_sim

    assert float(flow_loss(ideal, tx, x_sim, x_rx, pose, t, eps)) == 0.0
    torch.testing.assert_close(seen["psi"], t[:, None, None] * x_rx + (1 - t[:, None, None]) * x_sim + 1e-4 * eps)
    zero = flow_loss(lambda psi, a, b, c: torch.zeros_like(psi), tx, x_sim, x_rx, pose, t, eps)
    torch.testing.assert_close(zero, ((x_rx - x_sim) ** 2).mean())


def test_neural_baseline_is_the_flow_from_zeros():
    x_rx = torch.ones(2, 2, 4)
    psi = interpolate(torch.zeros_like(x_rx), x_rx, torch.tensor([0.3, 0.8]))
    torch.testing.assert_close(psi[:, 0, 0], torch.tensor([0.3, 0.8]))
