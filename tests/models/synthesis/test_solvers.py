"""Solvers of the refinement flow against closed forms (Euler, Midpoint, Heun; NFE counting)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from avworld.models.synthesis.solvers import SOLVERS, CountingField, SolverError, solve  # noqa: E402


def _x0():
    return torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("nfe", [1, 2, 3, 4, 7])
def test_constant_field_is_integrated_exactly(solver, nfe):
    c = torch.tensor([[0.3, -1.1, 2.0]], dtype=torch.float64)
    out = solve(lambda psi, t: c.expand_as(psi), _x0(), solver, nfe)
    torch.testing.assert_close(out, _x0() + c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("solver", ["midpoint", "heun"])
@pytest.mark.parametrize("nfe", [2, 4, 6])
def test_field_linear_in_time_is_exact_for_second_order_solvers(solver, nfe):
    # v = a + b t integrates to a + b / 2 over [0, 1]; both second-order rules are exact for it
    a, b = 0.7, -1.3
    out = solve(lambda psi, t: (a + b * t)[:, None].expand_as(psi), _x0(), solver, nfe)
    torch.testing.assert_close(out, _x0() + a + b / 2, rtol=0, atol=1e-12)


def test_euler_is_not_exact_on_a_time_dependent_field():
    out = solve(lambda psi, t: t[:, None].expand_as(psi), _x0(), "euler", 4)
    # sum_{i<4} (i / 4) / 4 = 6 / 16, not 1/2
    torch.testing.assert_close(out, _x0() + 6 / 16, rtol=0, atol=1e-12)


def _decay_error(solver, nfe):
    out = solve(lambda psi, t: -psi, _x0(), solver, nfe)
    return float((out - _x0() * math.exp(-1.0)).abs().max())


@pytest.mark.parametrize("solver", ["midpoint", "heun"])
def test_second_order_error_falls_about_fourfold_when_nfe_doubles(solver):
    e = [_decay_error(solver, n) for n in (8, 16, 32, 64)]
    ratios = [e[i] / e[i + 1] for i in range(3)]
    assert all(3.6 < r < 4.5 for r in ratios), ratios  # -> 4 as the steps shrink


def test_euler_error_falls_about_twofold_when_nfe_doubles():
    e = [_decay_error("euler", n) for n in (8, 16, 32, 64)]
    ratios = [e[i] / e[i + 1] for i in range(3)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios


@pytest.mark.parametrize("solver", SOLVERS)
def test_nfe_counts_the_network_calls(solver):
    for nfe in range(1, 11):
        field = CountingField(lambda psi, t: -psi)
        solve(field, _x0(), solver, nfe)
        assert field.nfe == nfe


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("nfe", [1, 2, 4, 5, 10])
def test_ideal_velocity_returns_x_rx(solver, nfe):
    g = torch.Generator().manual_seed(0)
    x_sim = torch.randn(3, 2, 64, generator=g, dtype=torch.float64)
    x_rx = torch.randn(3, 2, 64, generator=g, dtype=torch.float64)
    out = solve(lambda psi, t: x_rx - x_sim, x_sim, solver, nfe)
    torch.testing.assert_close(out, x_rx, rtol=0, atol=1e-12)


def test_solver_times_are_those_of_each_rule():
    seen = []

    def field(psi, t):
        seen.append(float(t[0]))
        return torch.zeros_like(psi)

    solve(field, _x0(), "euler", 4)
    assert seen == [0.0, 0.25, 0.5, 0.75]
    seen.clear()
    solve(field, _x0(), "midpoint", 4)
    assert seen == [0.0, 0.25, 0.5, 0.75]
    seen.clear()
    solve(field, _x0(), "heun", 4)
    assert seen == [0.0, 0.5, 0.5, 1.0]
    seen.clear()
    solve(field, _x0(), "heun", 3)  # one Heun step of 1/2, then an Euler step
    assert seen == [0.0, 0.5, 0.5]


def test_bad_solver_or_nfe_is_a_typed_error():
    with pytest.raises(SolverError, match="unknown solver"):
        solve(lambda p, t: p, _x0(), "rk4", 4)
    with pytest.raises(SolverError, match="positive integer"):
        solve(lambda p, t: p, _x0(), "euler", 0)
