"""Training loop of the world model (AV-CDiT): three stages, seeded, resumable, EMA, DDP over torchrun.

A run trains a **stage plan** (``stages``, e.g. (1, 2, 3)) with ``steps_per_stage[s - 1]``
optimizer steps per stage, one global step counter across the plan. Stages as seed §4.2
(:meth:`AVCDiT.set_stage` / :func:`stage_spec`): 1 vision only, 2 audio (+ reward) only with
everything else frozen, 3 joint. At a stage boundary the model takes the **EMA weights** of the
stage just finished (the weights that stage's evaluation reports), the EMA restarts from them,
and a new AdamW over the new stage's trainable parameters starts its own warm-up + cosine
schedule. Each finished stage also writes ``out/stages/stageN.pt`` (its EMA weights).

Every step: the step's items (:mod:`~avworld.train.worldmodel_data`), the hybrid diffusion loss
of the stage's loss modalities (bf16 autocast on CUDA), backward, gradients averaged over ranks
and clipped, AdamW, EMA. ``out/checkpoints/ckpt_XXXXXXX.pt`` holds weights, EMA, optimizer,
stage, step, every rank's RNG and the latents' tokenizer identity: ``--resume`` continues in the
right stage at the right step with the batches and noise of a run never stopped (tested:
identical weights, also across a stage boundary). SIGINT/SIGTERM and ``time_limit_s`` stop at
the end of a step with a checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch

from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, stage_spec
from avworld.train import distributed as dist_utils
from avworld.train.checkpoint import checkpoint_dir, checkpoint_name, latest_checkpoint, prune_checkpoints
from avworld.train.logs import RunLogger
from avworld.train.stop import StopRequest
from avworld.train.tokenizer_data import ScheduleSampler
from avworld.train.worldmodel_checkpoint import (
    check_identity,
    check_layout,
    config_to_dict,
    load_worldmodel_checkpoint,
    save_worldmodel_checkpoint,
)
from avworld.train.worldmodel_config import WorldModelConfigError, WorldModelTrainConfig
from avworld.train.worldmodel_data import (
    Items,
    batches,
    check_stages,
    collate,
    examples,
    latents_info,
    step_noise,
    val_keys,
)


def stage_plan(stages, cfg: WorldModelTrainConfig) -> list[tuple[int, int, int]]:
    """[(stage, first step, end step)] of the run: the stages in order, global step counter."""
    plan, start = [], 0
    for s in stages:
        n = int(cfg.steps_per_stage[s - 1])
        plan.append((s, start, start + n))
        start += n
    return plan


def stage_at(plan, step: int) -> tuple[int, int, int]:
    """The (stage, start, end) that trains global step ``step``."""
    for entry in plan:
        if step < entry[2]:
            return entry
    return plan[-1]


def lr_at(i: int, n: int, cfg: WorldModelTrainConfig) -> float:
    """Step ``i`` of a stage of ``n`` steps: linear warm-up, then cosine to ``lr * min_lr_ratio``."""
    if i < cfg.warmup_steps:
        return cfg.lr * (i + 1) / cfg.warmup_steps
    frac = min(1.0, (i - cfg.warmup_steps) / max(1, n - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _ema_update(ema, model, decay: float) -> None:
    """EMA of the trained parameters; frozen ones are copied (x * d + x * (1 - d) is not always x in floats)."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point() and name not in frozen:
                ema[name].mul_(decay).add_(value.detach(), alpha=1 - decay)
            else:
                ema[name].copy_(value)


def _shapes(model_cfg, names) -> dict[str, tuple[int, ...]]:
    full = {"rgb": (model_cfg.rgb_channels, model_cfg.rgb_size, model_cfg.rgb_size),
            "audio": (model_cfg.audio_dim, model_cfg.audio_frames), "reward": (1,)}
    return {n: full[n] for n in names}


def _forward(model, device):
    """The model called under bf16 autocast on CUDA, outputs in float32 for the loss."""
    def fwd(x_t, t, **kw):
        ctx = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" and model.bf16
               else contextlib.nullcontext())
        with ctx:
            out = model(x_t, t, **kw)
        return {k: v.float() for k, v in out.items()}
    return fwd


def _loss(model, diffusion, spec, batch, t, noise, cfg, device, k):
    x0, kw = examples(batch, spec, k, device)
    mask = {m: (cfg.reward_weight if m == "reward" else 1.0) for m in spec.loss}
    return diffusion.training_losses(_forward(model, device), x0, t, kw, noise=noise, mask=mask)


@torch.no_grad()
def validate(model, diffusion, items: Items | None, stage: int, cfg: WorldModelTrainConfig, device,
             chunk: int = 8) -> dict[str, float]:
    """Mean loss terms of stage ``stage`` on ``cfg.val_items`` val contexts (all their goals), fixed noise."""
    if items is None or cfg.val_items == 0:
        return {}
    mcfg = model.config
    spec = stage_spec(stage, reward=mcfg.reward_token, visual=mcfg.visual)
    keys = val_keys(len(items), cfg.val_items)
    was = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for a in range(0, len(keys), chunk):
        batch = collate([items[key] for key in keys[a:a + chunk]])
        n, g = batch["goal_offset"].shape
        t, noise = step_noise(cfg.seed + 1, a, n, g, _shapes(mcfg, spec.target), diffusion.num_timesteps, 0, 1,
                              device)
        terms = _loss(model, diffusion, spec, batch, t, noise, cfg, device, mcfg.context_frames)
        for name, v in terms.items():
            sums[name] = sums.get(name, 0.0) + float(v.sum())
        count += n * g
    model.train(was)
    return {f"val/{k}": v / count for k, v in sums.items()}


def train_worldmodel(model_cfg, cfg: WorldModelTrainConfig, data_root, latents: str, out_dir, stages=(1, 2, 3),
                     resume: bool = False, init: str | Path | None = None, progress: bool = True,
                     tensorboard: bool = True, time_limit_s: float | None = None, device: str | None = None,
                     bf16: bool | None = None, return_model: bool = False, log=print) -> dict:
    """Train the stages ``stages`` of an AV-CDiT on latents ``latents`` of ``data_root``; returns a summary
    (also ``out/summary.json``). ``model_cfg`` must fit the latents (:func:`~.worldmodel_data.fit_latents`).
    ``init``: start the first stage from another run's EMA weights (e.g. stage 2 after a stage-1 run).
    ``return_model``: add this process's trained module as ``summary["model"]`` (not written to the JSON)."""
    stages = tuple(stages)
    if not model_cfg.visual and stages != (3,):
        raise WorldModelConfigError(f"an audio-only model (model.visual=false) trains with --stages 3 only, got "
                                    f"stages {list(stages)}")
    info = dist_utils.setup(device)
    out, lat = Path(out_dir), latents_info(data_root, latents)
    ckdir = checkpoint_dir(out)
    check_stages(lat, stages)
    plan = stage_plan(stages, cfg)
    total = plan[-1][2]
    k = model_cfg.context_frames
    train_items = Items(data_root, latents, cfg.split, k, cfg.window, cfg.num_goals, cfg.seed)
    try:
        val_items = Items(data_root, latents, cfg.val_split, k, cfg.window, cfg.num_goals, cfg.seed)
    except ValueError as exc:  # no val split, val latents not encoded, or too short trajectories
        val_items = None
        if info.is_main and cfg.val_items:
            log(f"no validation loss: {exc}")
    model = AVCDiT(model_cfg, seed=cfg.seed).to(info.device)
    model.bf16 = cfg.bf16 if bf16 is None else bool(bf16)
    diffusion = GaussianDiffusion(cfg.diffusion_steps, cfg.schedule, learn_sigma=model_cfg.learn_sigma)
    torch.manual_seed(cfg.seed * 1000 + info.rank)
    start, current, ckpt = 0, plan[0][0], None
    if resume:
        ckpt, path = load_worldmodel_checkpoint(latest_checkpoint(ckdir), map_location=info.device)
        check_layout(ckpt, model_cfg, stages, str(path))
        check_identity(ckpt["latents"], lat, str(path))
        model.load_state_dict(ckpt["model"])
        ema = {n: v.to(info.device) for n, v in ckpt["ema"].items()}
        start, current = int(ckpt["step"]), int(ckpt["stage"])
        rng = ckpt.get("rng") or []
        if info.rank < len(rng):
            torch.set_rng_state(rng[info.rank])
        if info.is_main:
            log(f"resuming {path} at step {start:,} (stage {current})")
    else:
        if init is not None:
            src, path = load_worldmodel_checkpoint(init, map_location=info.device)
            check_layout(src, model_cfg, None, str(path))
            check_identity(src["latents"], lat, str(path))
            model.load_state_dict(src["ema"] if src.get("ema") is not None else src["model"])
        dist_utils.broadcast_parameters(model, info)
        ema = _state(model)

    def extra(stage: int) -> tuple[str, ...]:  # stage 2 with unfrozen attention: the seed's divergence experiment
        return ("shared",) if stage == 2 and cfg.stage2_unfreeze_attention else ()

    trainable = [p for n, p in model.named_parameters() if n in set(model.set_stage(current, extra(current)))]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"model": config_to_dict(model_cfg), "train": asdict(cfg),
                                                     "stages": list(stages), "latents": lat,
                                                     "init": str(init) if init else None}, indent=2))
    sampler = ScheduleSampler(len(train_items), cfg.batch_size, cfg.seed, start, total, info.rank, info.world_size)
    logger = RunLogger(out if info.is_main else None, total, tensorboard=tensorboard and info.is_main,
                       progress=progress and info.is_main, start_step=start,
                       resume_update=start if resume else None, title="world model")
    metrics: dict[str, float] = {}

    def save(step_done: int, path: Path | None = None, final_weights: bool = False) -> Path | None:
        rng = dist_utils.gather_objects(torch.get_rng_state(), info)
        if not info.is_main:
            return None
        state = {"model_config": config_to_dict(model_cfg), "train_config": asdict(cfg), "stages": list(stages),
                 "stage": current, "step": step_done, "latents": lat, "metrics": metrics}
        if final_weights:  # the end of a stage: its EMA weights only
            state.update(model=ema, ema=None)
            return save_worldmodel_checkpoint(path, state)
        state.update(model=model.state_dict(), ema=ema, optimizer=opt.state_dict(), rng=rng)
        p = save_worldmodel_checkpoint(ckdir / checkpoint_name(step_done), state)
        prune_checkpoints(ckdir, cfg.keep_checkpoints)
        return p

    def validate_ema(stage: int) -> dict[str, float]:
        shadow = copy.deepcopy(model)
        shadow.load_state_dict(ema)
        return validate(shadow, diffusion, val_items, stage, cfg, info.device)

    model.train()
    t0, step, stopped = time.monotonic(), start, None
    window: dict[str, float] = {}
    n_window, stage_files = 0, {}
    with StopRequest(announce=info.is_main) as stop:
        for batch in batches(train_items, sampler, cfg.workers):
            s, s_start, s_end = stage_at(plan, step)
            if s != current:  # a stage boundary: the previous stage's EMA weights, a new optimizer
                model.load_state_dict(ema)
                current = s
                trainable = [p for n, p in model.named_parameters() if n in set(model.set_stage(s, extra(s)))]
                opt = torch.optim.AdamW(trainable, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
                ema = _state(model)
                if info.is_main:
                    log(f"stage {s} from step {step:,}: {sum(p.numel() for p in trainable):,} trainable parameters")
            spec = stage_spec(s, reward=model_cfg.reward_token, visual=model_cfg.visual)
            for group in opt.param_groups:
                group["lr"] = lr_at(step - s_start, s_end - s_start, cfg)
            t, noise = step_noise(cfg.seed, step, cfg.batch_size, cfg.num_goals, _shapes(model_cfg, spec.target),
                                  diffusion.num_timesteps, info.rank, info.world_size, info.device)
            terms = _loss(model, diffusion, spec, batch, t, noise, cfg, info.device, k)
            loss = terms["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            dist_utils.average_gradients(trainable, info)
            logs = {name: float(v.detach().mean()) for name, v in terms.items()}
            if cfg.grad_clip > 0:
                logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip))
            opt.step()
            _ema_update(ema, model, cfg.ema_decay if step - s_start >= cfg.warmup_steps else 0.0)
            step += 1
            for name, v in logs.items():
                window[name] = window.get(name, 0.0) + v
            n_window += 1
            if step % cfg.log_every == 0 or step == s_end:
                row = {f"train/{n}": v / n_window for n, v in window.items()}
                rate = (step - start) / (time.monotonic() - t0)
                row.update({"stage": s, "lr": lr_at(step - 1 - s_start, s_end - s_start, cfg),
                            "perf/steps_per_s": rate, "perf/examples_per_s": rate * cfg.batch_size * cfg.num_goals})
                logger.log(step, {"update": step, **row})
                window, n_window = {}, 0
            if step == s_end:  # the stage is done: validate its EMA weights and keep them
                if info.is_main:
                    metrics = validate_ema(s)
                    logger.log(step, {"update": step, "stage": s, **metrics})
                p = save(step, out / "stages" / f"stage{s}.pt", final_weights=True)
                stage_files[s] = str(p) if p else None
            over = time_limit_s is not None and time.monotonic() - t0 > time_limit_s
            flag = dist_utils.all_sum(torch.tensor([float(stop.requested or over)]), info)
            if flag.item() > 0 and step < total:
                stopped = stop.signal_name or "time limit"
                break
            if step % cfg.checkpoint_every == 0 and step < total:
                if info.is_main and step != s_end:
                    metrics = validate_ema(s)
                    logger.log(step, {"update": step, "stage": s, **metrics})
                save(step)
    path = save(step)
    summary = {"stages": list(stages), "stage": current, "step": step, "total_steps": total, "stopped": stopped,
               "out": str(out), "checkpoint": str(path) if path else None, "stage_files": stage_files,
               "metrics": metrics, "seconds": round(time.monotonic() - t0, 1)}
    logger.close()
    if info.is_main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    dist_utils.teardown()
    if return_model:
        summary["model"] = model
    return summary
