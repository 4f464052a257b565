"""Gaussian diffusion: closed forms, the VLB term on a toy Gaussian, respacing, seeded samplers."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from avworld.models.worldmodel import AVCDiT, DiffusionError, GaussianDiffusion, beta_schedule  # noqa: E402
from tests.models.worldmodel.helpers import TINY, batch, randomize  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _abar(t: int, steps: int = 1000) -> float:
    betas = [1e-4 + (0.02 - 1e-4) * i / (steps - 1) for i in range(steps)]
    return math.prod(1 - b for b in betas[: t + 1])


def test_linear_schedule_and_q_sample():
    d = GaussianDiffusion()
    assert d.betas[0].item() == pytest.approx(1e-4) and d.betas[-1].item() == pytest.approx(0.02)
    x0, noise = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    ref = torch.stack([math.sqrt(_abar(i)) * x0[j] + math.sqrt(1 - _abar(i)) * noise[j]
                       for j, i in enumerate(t.tolist())])
    torch.testing.assert_close(d.q_sample(x0, t, noise), ref)
    assert beta_schedule("cosine", 1000).max().item() <= 0.999
    with pytest.raises(DiffusionError, match="linear"):
        beta_schedule("quadratic", 10)


def test_posterior_is_the_product_of_gaussians():
    """q(x_{t-1}|x_t,x_0) ∝ N(x_{t-1}; sqrt(abar_{t-1}) x0, 1-abar_{t-1}) N(x_t; sqrt(alpha_t) x_{t-1}, beta_t)."""
    d = GaussianDiffusion()
    x0, xt = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    t = torch.tensor([1, 100, 900])
    mean, var, logvar = d.q_posterior(x0, xt, t)
    for j, i in enumerate(t.tolist()):
        ab_prev, beta = _abar(i - 1), 1e-4 + (0.02 - 1e-4) * i / 999
        prec = 1 / (1 - ab_prev) + (1 - beta) / beta
        ref_mean = (math.sqrt(ab_prev) * x0[j] / (1 - ab_prev) + math.sqrt(1 - beta) * xt[j] / beta) / prec
        torch.testing.assert_close(mean[j], ref_mean)
        assert var[j].item() == pytest.approx(1 / prec) and logvar[j].item() == pytest.approx(math.log(1 / prec))


@pytest.mark.parametrize("t", [0, 1, 37, 999])
def test_vb_term_equals_closed_form_on_a_toy_gaussian(t):
    d = GaussianDiffusion()
    x0, xt, eps, v = 0.7, -0.4, 0.3, 0.25
    vb = d.vb_term(torch.tensor([[eps, v]], dtype=torch.float64), torch.tensor([[x0]], dtype=torch.float64),
                   torch.tensor([[xt]], dtype=torch.float64), torch.tensor([t])).item()
    # reference in plain floats: posterior q, model p (learned-range variance), KL / NLL in bits
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    ab, ab_prev = _abar(t), (_abar(t - 1) if t else 1.0)
    var_q = betas[t] * (1 - ab_prev) / (1 - ab)
    var_clip = var_q if t else betas[1] * (1 - _abar(0)) / (1 - _abar(1))
    mean_q = (math.sqrt(ab_prev) * betas[t] * x0 + math.sqrt(1 - betas[t]) * (1 - ab_prev) * xt) / (1 - ab)
    x0_hat = (xt - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    mean_p = (math.sqrt(ab_prev) * betas[t] * x0_hat + math.sqrt(1 - betas[t]) * (1 - ab_prev) * xt) / (1 - ab)
    frac = (v + 1) / 2
    var_p = math.exp(frac * math.log(betas[t]) + (1 - frac) * math.log(var_clip))
    if t == 0:
        ref = 0.5 * (math.log(2 * math.pi * var_p) + (x0 - mean_p) ** 2 / var_p)
    else:
        ref = 0.5 * (math.log(var_p / var_clip) + (var_clip + (mean_q - mean_p) ** 2) / var_p - 1)
    assert vb == pytest.approx(ref / math.log(2), rel=1e-9)


def test_vb_trains_only_the_variance_and_loss_is_mse_plus_vb():
    d = GaussianDiffusion()
    out = torch.randn(2, 6, 5, requires_grad=True)
    x0, t = {"audio": torch.randn(2, 3, 5)}, torch.tensor([3, 400])
    terms = d.training_losses(lambda x, t: {"audio": out}, x0, t, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(terms["loss"], terms["mse/audio"] + terms["vb/audio"])
    terms["vb/audio"].sum().backward()
    assert torch.all(out.grad[:, :3] == 0) and torch.any(out.grad[:, 3:] != 0)
    with pytest.raises(DiffusionError, match="rgb"):
        d.training_losses(lambda x, t: {"audio": out}, x0, t, mask={"rgb": 1.0})


def test_respacing():
    d = GaussianDiffusion()
    full = d.respace(1000)
    for name in ("betas", "alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped"):
        torch.testing.assert_close(getattr(full, name), getattr(d, name))
    assert torch.equal(full.timestep_map, torch.arange(1000))
    ten = d.respace(10)
    assert ten.num_timesteps == 10 and ten.timestep_map[0] == 0 and ten.timestep_map[-1] == 999
    torch.testing.assert_close(ten.alphas_cumprod, d.alphas_cumprod[ten.timestep_map])
    seen = []
    ten.p_sample_loop(lambda x, t: seen.append(t[0].item()) or {"r": torch.zeros(1, 2)}, {"r": (1, 1)})
    assert seen == ten.timestep_map.flip(0).tolist()  # the model sees the original step indices
    with pytest.raises(DiffusionError, match="1, 1000"):
        d.respace(0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim0", "ddim1"])
def test_seeded_samplers_on_the_model(sampler):
    model = randomize(AVCDiT(TINY), std=0.1).eval()
    x, _, kw = batch(b=2)
    shapes = {k: tuple(v.shape) for k, v in x.items()}
    d = GaussianDiffusion().respace(5)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        if sampler == "ddpm":
            return d.p_sample_loop(model, shapes, kw, generator=g)
        return d.ddim_sample_loop(model, shapes, kw, generator=g, eta=float(sampler[-1]))

    a, b, c = run(0), run(0), run(1)
    assert set(a) == {"rgb", "audio", "reward"} and a["audio"].shape == (2, 8, 6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(not torch.allclose(a[k], c[k]) for k in a)


def test_known_modalities_are_kept():
    d = GaussianDiffusion().respace(4)
    rgb = torch.randn(2, 3)
    seen = []

    def model(x, t):
        seen.append(x["rgb"].clone())
        return {k: torch.zeros(v.shape[0], 2 * v.shape[1]) for k, v in x.items()}

    out = d.ddim_sample_loop(model, {"audio": (2, 3)}, known={"rgb": rgb}, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["rgb"], rgb) and out["audio"].shape == (2, 3)
    # the model saw the known part noised to each step: nearly clean at the last (t = 0) step
    assert torch.allclose(seen[-1], rgb * math.sqrt(_abar(0)), atol=0.05)
