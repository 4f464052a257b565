"""Generation with an AV-CDiT: fixed-step prediction and autoregressive rollout (torch only).

* :func:`fixed_step` predicts the latents of frame t + Δ (and the cumulative reward from t to
  t + Δ) directly from the k context frames t-k+1 .. t and the aggregated action of Δ steps.
* :func:`rollout` predicts one frame at a time (Δ = 1 with that step's action); each prediction
  is appended to the context and the oldest context frame dropped, for ``n`` steps.

Both are batched, take the sampler (``"ddpm"`` ancestral or ``"ddim"``), the number of respaced
denoising steps and a seed (all noise comes from one ``torch.Generator`` seeded with it, so the
same call gives the same output). The modalities are those of the model's stage
(:func:`~avworld.models.worldmodel.stage_spec`: a stage-1 model predicts images only from image
context). Decoding to pixels and waveforms lives with the tokenizers
(:mod:`avworld.train.worldmodel_generate`).
"""

from __future__ import annotations

import torch

from avworld.models.worldmodel.config import ContextLengthError, OffsetRangeError, WorldModelError, stage_spec

SAMPLERS = ("ddpm", "ddim")
#: The largest fixed-step offset and the longest rollout of the evaluation protocol (seed §5.3).
MAX_DELTA = 16


class GenerationError(WorldModelError):
    """Bad generation arguments: unknown sampler, missing context modality, bad action shapes."""


def modalities(model, stage: int | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(predicted modalities, context modalities) of ``model`` at ``stage`` (default: the model's)."""
    s = stage if stage is not None else int(getattr(model, "stage", 3) or 3)
    spec = stage_spec(s, reward=bool(model.config.reward_token), visual=model.config.visual)
    return spec.target, spec.context


def check_context(model, context: dict, need) -> int:
    """Batch size of ``context``; :class:`ContextLengthError` unless each needed modality has k frames."""
    k = model.config.context_frames
    b = None
    for name in need:
        if name not in context:
            raise GenerationError(f"the context lacks {name} latents; this model needs {list(need)} context latents")
        x = context[name]
        if x.dim() < 2 or x.shape[1] != k:
            got = x.shape[1] if x.dim() >= 2 else "?"
            raise ContextLengthError(f"context {name} has {got} frames (shape {tuple(x.shape)}); the model needs "
                                     f"k={k} frames t-{k - 1} .. t: start at a frame t >= {k - 1} of the trajectory")
        if b is not None and x.shape[0] != b:
            raise GenerationError(f"context modalities have different batch sizes ({b} and {x.shape[0]})")
        b = x.shape[0]
    return int(b)


def _shapes(model, names, b: int) -> dict:
    cfg = model.config
    full = {"rgb": (b, cfg.rgb_channels, cfg.rgb_size, cfg.rgb_size), "audio": (b, cfg.audio_dim, cfg.audio_frames),
            "reward": (b, 1)}
    return {n: full[n] for n in names}


def _generator(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def sample(model, context: dict, offset: torch.Tensor, action: torch.Tensor, *, sampler: str = "ddim",
           steps: int = 10, seed: int = 0, generator: torch.Generator | None = None, diffusion=None,
           eta: float = 0.0, stage: int | None = None) -> dict[str, torch.Tensor]:
    """One denoised prediction per row: ``{"rgb": (B, C, h, w), "audio": (B, D, F), "reward": (B,)}``
    (the modalities of the stage). ``offset`` (B,) integer frames, ``action`` (B, 3)."""
    if sampler not in SAMPLERS:
        raise GenerationError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    target, ctx_names = modalities(model, stage)
    b = check_context(model, context, ctx_names)
    if offset.shape != (b,) or action.shape != (b, 3):
        raise GenerationError(f"offset must be ({b},) and action ({b}, 3), got {tuple(offset.shape)} and "
                              f"{tuple(action.shape)}")
    diffusion = diffusion if diffusion is not None else model.diffusion
    respaced = diffusion.respace(int(steps))
    device = next(model.parameters()).device
    gen = generator if generator is not None else _generator(seed, device)
    kw = {"context": {n: context[n].to(device).float() for n in ctx_names}, "offset": offset.to(device).long(),
          "action": action.to(device).float()}
    shapes = _shapes(model, target, b)
    with torch.no_grad():
        if sampler == "ddim":
            out = respaced.ddim_sample_loop(model, shapes, kw, generator=gen, eta=eta, device=device)
        else:
            out = respaced.p_sample_loop(model, shapes, kw, generator=gen, device=device)
    if "reward" in out:
        out["reward"] = out["reward"][:, 0]
    return out


def _check_delta(model, delta: torch.Tensor) -> None:
    hi = min(MAX_DELTA, int(model.config.max_offset))
    if delta.numel() and (int(delta.min()) < 1 or int(delta.max()) > hi):
        bad = int(delta.max()) if int(delta.max()) > hi else int(delta.min())
        raise OffsetRangeError(f"fixed-step offset {bad} is outside 1 .. {hi} (the model was trained with "
                               f"max_offset={model.config.max_offset}); predict further ahead with a rollout")


def fixed_step(model, context: dict, delta, action: torch.Tensor, **kw) -> dict[str, torch.Tensor]:
    """The frame at t + ``delta`` (int or (B,) frames in 1 .. min(16, max_offset)) from the context of
    frames t-k+1 .. t and ``action`` (B, 3), the aggregated action from t to t + Δ in t's frame.
    ``reward`` is the predicted cumulative reward from t to t + Δ. Keywords as :func:`sample`."""
    b = action.shape[0]
    d = torch.as_tensor(delta, dtype=torch.long)
    d = d.expand(b).clone() if d.dim() == 0 else d
    _check_delta(model, d)
    return sample(model, context, d, action, **kw)


def rollout(model, context: dict, actions: torch.Tensor, *, sampler: str = "ddim", steps: int = 10, seed: int = 0,
            diffusion=None, eta: float = 0.0, stage: int | None = None) -> dict[str, torch.Tensor]:
    """``n`` autoregressive one-frame steps from the context of frames t-k+1 .. t with per-step
    ``actions`` (B, n, 3) (the relative pose of frame t+j in frame t+j-1's frame, j = 1 .. n).

    Returns per step ``rgb`` (B, n, C, h, w), ``audio`` (B, n, D, F), ``reward`` (B, n) (the
    per-step prediction) and ``reward_cum`` (B, n) (its running sum: the reward from t to t + j),
    for the modalities of the stage. One generator seeded with ``seed`` drives all steps.
    """
    if actions.dim() != 3 or actions.shape[-1] != 3 or actions.shape[1] < 1:
        raise GenerationError(f"actions must be (B, n >= 1, 3), got {tuple(actions.shape)}")
    if int(model.config.max_offset) < 1:
        raise OffsetRangeError("the model was trained with max_offset=0; it cannot step one frame ahead")
    target, ctx_names = modalities(model, stage)
    b = check_context(model, context, ctx_names)
    if actions.shape[0] != b:
        raise GenerationError(f"actions have batch {actions.shape[0]}, the context {b}")
    device = next(model.parameters()).device
    gen = _generator(seed, device)
    ctx = {n: context[n].to(device).float() for n in ctx_names}
    one = torch.ones(b, dtype=torch.long, device=device)
    preds: dict[str, list[torch.Tensor]] = {n: [] for n in target}
    for j in range(actions.shape[1]):
        out = sample(model, ctx, one, actions[:, j].to(device), sampler=sampler, steps=steps, generator=gen,
                     diffusion=diffusion, eta=eta, stage=stage)
        for n in target:
            preds[n].append(out[n])
        ctx = {n: torch.cat([ctx[n][:, 1:], out[n][:, None]], dim=1) for n in ctx_names}  # feed back, drop oldest
    res = {n: torch.stack(v, dim=1) for n, v in preds.items()}
    if "reward" in res:
        res["reward_cum"] = res["reward"].cumsum(dim=1)
    return res
