"""Gaussian diffusion (improved DDPM, Nichol & Dhariwal 2021) over a dict of modalities.

Compact re-implementation of the parts the world model needs:

* **Schedule**: ``steps`` (1000) betas, ``linear`` (1e-4..0.02 scaled by 1000/steps) or
  ``cosine``; float64 buffers, cast to the data's dtype when used.
* **Model output**: epsilon prediction; with ``learn_sigma`` the model also outputs ``v`` in
  [-1, 1] per channel (second half of the channels) and the reverse variance is the
  learned-range interpolation ``log var = (v+1)/2 log beta_t + (1-v)/2 log beta~_t``.
  Without it the variance is fixed to the posterior variance ``beta~_t`` ("fixed small").
* **Loss** (:meth:`GaussianDiffusion.training_losses`), the improved-DDPM hybrid loss per
  modality: ``mse + vb * steps / 1000`` where ``mse`` is the mean squared epsilon error and
  ``vb`` the variational bound term L_t in bits per dimension with a **stop-gradient on the
  mean** (the VLB trains only the variance). ``L_vlb = sum_t L_t = steps * E_t[L_t]``, so this
  is the paper's ``L_simple + 0.001 L_vlb`` (and DiT's ``mse + vb`` at 1000 steps). L_t for
  t > 0 is KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)); at t = 0 it is the **Gaussian NLL** of x_0
  under p(x_0|x_1) (continuous latents: no 8-bit discretised likelihood). The total loss is the
  sum over the modalities that carry a loss (``mask``), each averaged over its own dimensions.
* **Respacing**: :meth:`GaussianDiffusion.respace` keeps ``n`` evenly spaced steps and recomputes
  betas from ``alphas_cumprod`` at the kept steps; the model is called with the ORIGINAL step
  indices (``timestep_map``). All ``steps`` kept reproduces the original schedule.
* **Samplers**: ancestral :meth:`p_sample_loop` and :meth:`ddim_sample_loop` (``eta``), both over
  the dict of modalities jointly, noise drawn from a seeded ``torch.Generator`` (same seed ->
  identical output). ``known`` fixes given modalities (their clean values are re-noised to
  each step, and returned as given).

``model(x_t: dict, t: (B,) long, **model_kwargs) -> dict`` of outputs with 2x (learn_sigma)
or 1x the channels of each input, channels on dim 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

Tensors = dict[str, torch.Tensor]


class DiffusionError(ValueError):
    """A diffusion configuration or call it cannot handle."""


def beta_schedule(name: str, steps: int) -> torch.Tensor:
    """Betas (float64) of the ``linear`` (DDPM, scaled to ``steps``) or ``cosine`` (improved DDPM) schedule."""
    if steps < 1:
        raise DiffusionError(f"steps must be >= 1, got {steps}")
    if name == "linear":
        scale = 1000 / steps
        return torch.linspace(scale * 1e-4, scale * 0.02, steps, dtype=torch.float64)
    if name == "cosine":
        f = lambda s: math.cos((s / steps + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        return torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(steps)], dtype=torch.float64)
    raise DiffusionError(f"unknown schedule {name!r}; use 'linear' or 'cosine'")


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) in nats, elementwise."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1)


def gaussian_nll(x, mean, logvar) -> torch.Tensor:
    """-log N(x; mean, e^logvar) in nats, elementwise (continuous data)."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def _mean_flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


class GaussianDiffusion:
    """Improved-DDPM diffusion; see the module docstring. ``timesteps`` are kept steps (respacing)."""

    def __init__(self, steps: int = 1000, schedule: str = "linear", learn_sigma: bool = True,
                 timesteps: list[int] | None = None):
        self.base_steps, self.schedule, self.learn_sigma = int(steps), schedule, bool(learn_sigma)
        base = beta_schedule(schedule, self.base_steps)
        if timesteps is None:
            betas, kept = base, list(range(self.base_steps))
        else:
            kept = sorted(set(int(t) for t in timesteps))
            if not kept or kept[0] < 0 or kept[-1] >= self.base_steps:
                raise DiffusionError(f"kept timesteps must lie in [0, {self.base_steps}), got {timesteps}")
            ac = torch.cumprod(1 - base, 0)[kept]
            betas = 1 - ac / torch.cat([ac.new_ones(1), ac[:-1]])
        self.timestep_map = torch.tensor(kept, dtype=torch.long)
        self.num_timesteps = len(kept)
        self.betas = betas
        alphas = 1 - betas
        self.alphas_cumprod = ac = torch.cumprod(alphas, 0)
        self.alphas_cumprod_prev = ac_prev = torch.cat([ac.new_ones(1), ac[:-1]])
        self.posterior_variance = pv = betas * (1 - ac_prev) / (1 - ac)
        # beta~_0 = 0: use beta~_1 in the log so it stays finite (as the reference code)
        self.posterior_log_variance_clipped = torch.log(torch.cat([pv[1:2], pv[1:]])) if len(pv) > 1 else torch.log(
            betas.clone())
        self.posterior_mean_coef1 = betas * ac_prev.sqrt() / (1 - ac)
        self.posterior_mean_coef2 = (1 - ac_prev) * alphas.sqrt() / (1 - ac)

    def respace(self, steps: int) -> GaussianDiffusion:
        """The same process sampled with ``steps`` evenly spaced steps (first and last kept)."""
        if not 1 <= steps <= self.base_steps:
            raise DiffusionError(f"respaced steps must be in [1, {self.base_steps}], got {steps}")
        kept = [0] if steps == 1 else [round(i * (self.base_steps - 1) / (steps - 1)) for i in range(steps)]
        return GaussianDiffusion(self.base_steps, self.schedule, self.learn_sigma, kept)

    @staticmethod
    def _at(buf: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``buf[t]`` shaped (B, 1, ...) to broadcast against ``x``."""
        return buf.to(t.device)[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))

    # ---- forward process ------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise."""
        ac = self.alphas_cumprod
        return self._at(ac.sqrt(), t, x0) * x0 + self._at((1 - ac).sqrt(), t, x0) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._at(self.posterior_mean_coef1, t, xt) * x0 + self._at(self.posterior_mean_coef2, t, xt) * xt
        return mean, self._at(self.posterior_variance, t, xt), self._at(self.posterior_log_variance_clipped, t, xt)

    # ---- reverse process ------------------------------------------------------------------
    def p_mean_variance(self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, clip: float | None = None):
        """Mean, log variance, predicted x0 and eps of p(x_{t-1} | x_t) from one modality's model output."""
        if self.learn_sigma:
            if out.shape[1] != 2 * xt.shape[1]:
                raise DiffusionError(f"learn_sigma needs 2x the channels ({2 * xt.shape[1]}), got {out.shape[1]}")
            eps, v = out.chunk(2, dim=1)
            lo, hi = self._at(self.posterior_log_variance_clipped, t, xt), self._at(torch.log(self.betas), t, xt)
            frac = (v + 1) / 2
            logvar = frac * hi + (1 - frac) * lo
        else:
            eps, logvar = out, self._at(self.posterior_log_variance_clipped, t, xt).expand_as(xt)
        ac = self.alphas_cumprod
        x0 = self._at((1 / ac).sqrt(), t, xt) * xt - self._at((1 / ac - 1).sqrt(), t, xt) * eps
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        mean, _, _ = self.q_posterior(x0, xt, t)
        return mean, logvar, x0, eps

    def vb_term(self, out: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """L_t in bits per dimension, (B,): KL(q || p) for t > 0, Gaussian NLL of x0 at t = 0."""
        true_mean, _, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar, _, _ = self.p_mean_variance(out, xt, t)
        kl = _mean_flat(normal_kl(true_mean, true_logvar, mean, logvar)) / math.log(2)
        nll = _mean_flat(gaussian_nll(x0, mean, logvar)) / math.log(2)
        return torch.where(t == 0, nll, kl)

    def training_losses(self, model: Callable[..., Tensors], x0: Mapping[str, torch.Tensor], t: torch.Tensor,
                        model_kwargs: Mapping | None = None, noise: Mapping[str, torch.Tensor] | None = None,
                        mask: Mapping[str, float | torch.Tensor] | None = None,
                        generator: torch.Generator | None = None) -> Tensors:
        """Hybrid loss per sample, (B,) tensors: ``loss`` (the total) and ``mse/<m>``, ``vb/<m>``.

        ``mask[m]`` (a float or a (B,) tensor) weights modality ``m``; modalities absent from
        ``mask`` (when given) are in the input but carry no loss. ``t`` holds steps of THIS
        process (use the un-respaced process for training).
        """
        noise = dict(noise or {})
        for k, x in x0.items():
            if k not in noise:
                noise[k] = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        xt = {k: self.q_sample(x, t, noise[k]) for k, x in x0.items()}
        out = model(xt, self.timestep_map.to(t.device)[t], **(model_kwargs or {}))
        weights = {k: 1.0 for k in x0} if mask is None else dict(mask)
        if set(weights) - set(x0):
            raise DiffusionError(f"loss mask names {sorted(set(weights) - set(x0))}, not in the inputs {sorted(x0)}")
        terms: Tensors = {}
        loss = torch.zeros(t.shape[0], device=t.device)
        for k, w in weights.items():
            o = out[k]
            eps = o.chunk(2, dim=1)[0] if self.learn_sigma else o
            terms[f"mse/{k}"] = _mean_flat((noise[k] - eps) ** 2)
            total = terms[f"mse/{k}"]
            if self.learn_sigma:  # stop-gradient on the mean: the VLB trains only the variance
                frozen = torch.cat([eps.detach(), o.chunk(2, dim=1)[1]], dim=1)
                terms[f"vb/{k}"] = self.vb_term(frozen, x0[k], xt[k], t) * (self.num_timesteps / 1000.0)
                total = total + terms[f"vb/{k}"]
            loss = loss + w * total
        terms["loss"] = loss
        return terms

    # ---- samplers -------------------------------------------------------------------------
    def _start(self, shapes, known, generator, device, dtype):
        x = {k: torch.randn(s, generator=generator, device=device, dtype=dtype) for k, s in shapes.items()}
        return x, dict(known or {})

    def _fix(self, x: Tensors, known: Tensors, t: torch.Tensor, generator) -> Tensors:
        for k, x0 in known.items():
            x[k] = self.q_sample(x0, t, torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype))
        return x

    @torch.no_grad()
    def p_sample_loop(self, model: Callable[..., Tensors], shapes: Mapping[str, tuple[int, ...]],
                      model_kwargs: Mapping | None = None, generator: torch.Generator | None = None,
                      clip: float | None = None, known: Mapping[str, torch.Tensor] | None = None,
                      device=None, dtype=torch.float32) -> Tensors:
        """Ancestral sampling of all modalities jointly; returns the x_0 dict."""
        x, known = self._start(shapes, known, generator, device, dtype)
        b = next(iter(shapes.values()))[0]
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((b,), i, dtype=torch.long, device=device)
            x = self._fix(x, known, t, generator)
            out = model(x, self.timestep_map.to(t.device)[t], **(model_kwargs or {}))
            for k in shapes:
                mean, logvar, _, _ = self.p_mean_variance(out[k], x[k], t, clip)
                z = torch.randn(x[k].shape, generator=generator, device=device, dtype=dtype)
                x[k] = mean + (i > 0) * torch.exp(0.5 * logvar) * z
        return {**x, **known}

    @torch.no_grad()
    def ddim_sample_loop(self, model: Callable[..., Tensors], shapes: Mapping[str, tuple[int, ...]],
                         model_kwargs: Mapping | None = None, generator: torch.Generator | None = None,
                         eta: float = 0.0, clip: float | None = None, known: Mapping[str, torch.Tensor] | None = None,
                         device=None, dtype=torch.float32) -> Tensors:
        """DDIM sampling (eta = 0: deterministic given the start noise; eta = 1: DDPM-like)."""
        x, known = self._start(shapes, known, generator, device, dtype)
        b = next(iter(shapes.values()))[0]
        for i in reversed(range(self.num_timesteps)):
            t = torch.full((b,), i, dtype=torch.long, device=device)
            x = self._fix(x, known, t, generator)
            out = model(x, self.timestep_map.to(t.device)[t], **(model_kwargs or {}))
            for k in shapes:
                _, _, x0, _ = self.p_mean_variance(out[k], x[k], t, clip)
                eps = (self._at((1 / self.alphas_cumprod).sqrt(), t, x[k]) * x[k] - x0) / self._at(
                    (1 / self.alphas_cumprod - 1).sqrt(), t, x[k])
                ac, ac_prev = self._at(self.alphas_cumprod, t, x[k]), self._at(self.alphas_cumprod_prev, t, x[k])
                sigma = eta * ((1 - ac_prev) / (1 - ac) * (1 - ac / ac_prev)).sqrt()
                mean = x0 * ac_prev.sqrt() + (1 - ac_prev - sigma ** 2).clamp(min=0).sqrt() * eps
                z = torch.randn(x[k].shape, generator=generator, device=device, dtype=dtype)
                x[k] = mean + (i > 0) * sigma * z
        return {**x, **known}
