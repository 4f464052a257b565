"""The π-AVAS evaluation: flows over batches, summaries with paired intervals, the NFE plot."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.eval.synthesis_eval import nfe_sweep, run_flow, summarize, sweep_plot  # noqa: E402
from avworld.eval.synthesis_metrics import METRICS  # noqa: E402


def _shift_model(psi, x_tx, pose, t):
    """A velocity that is the source audio on both ears: the flow adds x_tx to x_sim."""
    return x_tx[:, None, :].expand_as(psi)


@pytest.mark.parametrize("solver", ["euler", "midpoint", "heun"])
def test_run_flow_integrates_every_batch(solver):
    rng = np.random.default_rng(0)
    tx = rng.standard_normal((5, 32)).astype(np.float32)
    sim = rng.standard_normal((5, 2, 32)).astype(np.float32)
    out, calls = run_flow(_shift_model, tx, sim, np.zeros((5, 7)), solver, 3, batch=2)
    assert calls == 3
    np.testing.assert_allclose(out, sim + tx[:, None, :], atol=1e-5)


def test_summary_pairs_the_refined_output_with_each_other_method():
    per = {m: {k: np.array([1.0, 2.0, 3.0]) + off for k in METRICS} for m, off in
           (("x_sim", 1.0), ("refined", 0.0), ("neural", 2.0))}
    s = summarize(per)
    assert s["methods"]["refined"]["mag"]["mean"] == pytest.approx(2.0)
    assert s["paired"]["refined-x_sim"]["env"]["mean"] == pytest.approx(-1.0)
    assert s["paired"]["refined-neural"]["lre"]["mean"] == pytest.approx(-2.0)
    assert s["paired"]["refined-neural"]["lre"]["ci95"] == pytest.approx(0.0)


def test_nfe_sweep_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    n, T = 3, 1024
    tx = rng.standard_normal((n, T)).astype(np.float32)
    sim = rng.standard_normal((n, 2, T)).astype(np.float32)
    data = {"x_tx": tx, "x_sim": sim, "x_rx": sim + tx[:, None, :], "poses": np.zeros((n, 4)),
            "source": np.ones((n, 3))}
    res = nfe_sweep(_shift_model, data, np.arange(n), nfes=(1, 2, 3))
    for s in ("euler", "midpoint", "heun"):
        assert np.allclose(res[s]["mag"], 0.0, atol=1e-8)  # a constant field: exact at every NFE
    png = sweep_plot(res, tmp_path / "sweep.png", raw=1.0)
    assert png.stat().st_size > 1000


def test_run_flow_in_the_magnitude_domain_keeps_the_phase_source():
    rng = np.random.default_rng(2)
    tx = rng.standard_normal((2, 2048)).astype(np.float32)
    sim = rng.standard_normal((2, 2, 2048)).astype(np.float32)
    zero_velocity = lambda psi, x_tx, pose, t: torch.zeros_like(psi)  # noqa: E731
    # no motion: the refined clip is x_sim itself (its magnitudes with its own phase)
    out, _ = run_flow(zero_velocity, tx, sim, np.zeros((2, 7)), "euler", 2, domain="mag")
    np.testing.assert_allclose(out, sim, atol=1e-4)
    # the neural baseline starts from exact zeros and takes x_tx's phase: silence stays silence
    out, _ = run_flow(zero_velocity, tx, np.zeros_like(sim), np.zeros((2, 7)), "euler", 2, domain="mag",
                      phase_from=tx)
    assert not out.any()
