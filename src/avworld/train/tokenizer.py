"""Training loop of the tokenizers: seeded, resumable, EMA, DDP over torchrun (gloo or NCCL).

One loop serves both kinds: the model owns its loss (``model(batch, step) -> (loss, logs)``);
an image autoencoder with a GAN term also has ``model.discriminator`` and
``model.discriminator_loss(batch, step)``, trained by a second optimizer. Every step:

1. the batch of this step and rank (:class:`~avworld.train.tokenizer_data.ScheduleSampler`),
2. loss, backward, gradients averaged over ranks, clipped; AdamW with warm-up + cosine lr,
3. the discriminator's step when its term is on,
4. EMA of the autoencoder's weights (the weights the metrics and exports use).

A checkpoint (``out/checkpoints/ckpt_XXXXXXX.pt``) holds weights, EMA, optimizers, step and every
rank's RNG state, so ``--resume`` continues with the same batches and noise as a run that was never
stopped (tested: identical weights). SIGINT/SIGTERM stop at the end of the step with a checkpoint;
``time_limit_s`` does the same after that many seconds. At the end the latent scale is measured on
training frames with the EMA weights (1 / std of the latents; the image autoencoder's posterior
means), as Stable Diffusion's 0.18215.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from avworld.train import distributed as dist_utils
from avworld.train.checkpoint import checkpoint_dir, checkpoint_name, latest_checkpoint, prune_checkpoints
from avworld.train.logs import RunLogger
from avworld.train.stop import StopRequest
from avworld.train.tokenizer_checkpoint import (
    CheckpointError,
    build_tokenizer,
    config_to_dict,
    load_tokenizer_checkpoint,
    save_tokenizer_checkpoint,
)
from avworld.train.tokenizer_config import TokenizerTrainConfig
from avworld.train.tokenizer_data import FrameDataset, ScheduleSampler, TokenizerDataError, batches, check_fits


def lr_at(step: int, cfg: TokenizerTrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    frac = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name in ema:
                if value.is_floating_point():
                    ema[name].mul_(decay).add_(value.detach(), alpha=1 - decay)
                else:
                    ema[name].copy_(value)


def _ae_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("discriminator.")}


def _ae_parameters(model) -> list[torch.nn.Parameter]:
    if hasattr(model, "autoencoder_parameters"):
        return list(model.autoencoder_parameters())
    return list(model.parameters())


def _check_resume(ckpt: dict, kind: str, model_cfg, path) -> None:
    if ckpt.get("model_config") != config_to_dict(model_cfg):
        theirs, mine = ckpt.get("model_config", {}), config_to_dict(model_cfg)
        diffs = [f"{k}: checkpoint {theirs.get(k)!r}, here {mine.get(k)!r}" for k in sorted(set(theirs) | set(mine))
                 if theirs.get(k) != mine.get(k)]
        raise CheckpointError(f"{path} was trained with another {kind} model config ({'; '.join(diffs)[:400]}); "
                              "resume with the same --preset and --set model.* options, or use a new --out")


@torch.no_grad()
def validate(model, data: FrameDataset, n: int, batch: int = 64) -> dict[str, float]:
    """Mean loss terms on the first ``n`` frames of ``data`` (final loss weights), RNG untouched."""
    if n <= 0 or len(data) == 0:
        return {}
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for a in range(0, min(n, len(data)), batch):
            idx = list(range(a, min(a + batch, n, len(data))))
            _, logs = model({data.kind: torch.from_numpy(data.get(idx))}, step=None)
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            count += len(idx)
    model.train(was_training)
    return {f"val/{k}": v / count for k, v in sums.items()}


@torch.no_grad()
def measure_scale(model, data: FrameDataset, n: int, batch: int = 128) -> float:
    """1 / std of the latents (image: posterior means) of ``n`` evenly spread training frames."""
    idx = np.linspace(0, len(data) - 1, min(n, len(data))).astype(np.int64)
    return float(model.measure_latent_scale(torch.from_numpy(data.get(idx)).split(batch)))


def measure_input_gain(data: FrameDataset, n: int) -> float:
    """1 / std of ``n`` evenly spread training clips (both ears), rounded to 4 significant digits."""
    idx = np.linspace(0, len(data) - 1, min(n, len(data))).astype(np.int64)
    std = float(np.std(data.get(idx), dtype=np.float64))
    if not std > 0:
        raise TokenizerDataError("the training clips are all silent; the codec cannot learn from them")
    return float(f"{1.0 / std:.4g}")


def train_tokenizer(kind: str, model_cfg, cfg: TokenizerTrainConfig, data_root, out_dir, resume: bool = False,
                    progress: bool = True, tensorboard: bool = True, time_limit_s: float | None = None,
                    device: str | None = None, data_info: dict | None = None, log=print) -> dict:
    """Train a tokenizer; returns a summary dict (also written to ``out/summary.json``)."""
    info = dist_utils.setup(device)
    out = Path(out_dir)
    ckdir = checkpoint_dir(out)
    train_data = FrameDataset(data_root, cfg.split, kind, in_memory=cfg.in_memory, max_frames=cfg.max_frames or None)
    check_fits(train_data, model_cfg)
    if kind == "audio" and model_cfg.input_gain == 0:  # 0 = measure (deterministic: a resume measures the same)
        model_cfg = replace(model_cfg, input_gain=measure_input_gain(train_data, cfg.scale_frames))
    try:
        val_data = FrameDataset(data_root, cfg.val_split, kind, in_memory=True, max_frames=cfg.val_frames or 1)
    except ValueError:
        val_data = None
    model = build_tokenizer(kind, model_cfg, seed=cfg.seed).to(info.device)
    ae_params = _ae_parameters(model)
    opt = torch.optim.AdamW(ae_params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    disc = getattr(model, "discriminator", None)
    disc_opt = (torch.optim.AdamW(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.9)) if disc is not None else None)
    start = 0
    ema = _ae_state(model)
    torch.manual_seed(cfg.seed * 1000 + info.rank)
    if resume:
        path = latest_checkpoint(ckdir)
        ckpt, path = load_tokenizer_checkpoint(path, kind=kind, map_location=info.device)
        _check_resume(ckpt, kind, model_cfg, path)
        model.load_state_dict(ckpt["model"])
        ema = {k: v.to(info.device) for k, v in ckpt["ema"].items()}
        opt.load_state_dict(ckpt["optimizer"])
        if disc_opt is not None and ckpt.get("disc_optimizer"):
            disc_opt.load_state_dict(ckpt["disc_optimizer"])
        start = int(ckpt["step"])
        rng = ckpt.get("rng") or []
        if info.rank < len(rng):
            torch.set_rng_state(rng[info.rank])
        if info.is_main:
            log(f"resuming {path} at step {start:,}")
    else:
        dist_utils.broadcast_parameters(model, info)
        ema = _ae_state(model)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"kind": kind, "model": config_to_dict(model_cfg),
                                                     "train": asdict(cfg), "data": data_info or {}}, indent=2))
    sampler = ScheduleSampler(len(train_data), cfg.batch_size, cfg.seed, start, cfg.steps, info.rank, info.world_size)
    logger = RunLogger(out if info.is_main else None, cfg.steps, tensorboard=tensorboard and info.is_main,
                       progress=progress and info.is_main, start_step=start,
                       resume_update=start if resume else None, title=f"{kind} tokenizer")
    model.train()
    t0, step, stopped = time.monotonic(), start, None
    window: dict[str, float] = {}
    n_window = 0

    def save(step_done: int, extra: dict | None = None) -> Path | None:
        rng = dist_utils.gather_objects(torch.get_rng_state(), info)
        if not info.is_main:
            return None
        state = {"kind": kind, "model_config": config_to_dict(model_cfg), "train_config": asdict(cfg),
                 "data": data_info or {}, "model": model.state_dict(), "ema": ema, "optimizer": opt.state_dict(),
                 "disc_optimizer": disc_opt.state_dict() if disc_opt is not None else None, "step": step_done,
                 "rng": rng, "latent_scale": 1.0, **(extra or {})}
        path = save_tokenizer_checkpoint(ckdir / checkpoint_name(step_done), state)
        prune_checkpoints(ckdir, cfg.keep_checkpoints)
        return path

    with StopRequest(announce=info.is_main) as stop:
        for batch in batches(train_data, sampler, cfg.workers):
            batch = {k: v.to(info.device) for k, v in batch.items()}
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            loss, logs = model(batch, step=step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            dist_utils.average_gradients(ae_params, info)
            if cfg.grad_clip > 0:
                logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(ae_params, cfg.grad_clip))
            opt.step()
            if disc is not None:
                d = model.discriminator_loss(batch, step)
                if d is not None:
                    d_loss, d_logs = d
                    disc_opt.zero_grad(set_to_none=True)
                    d_loss.backward()
                    dist_utils.average_gradients(list(disc.parameters()), info)
                    disc_opt.step()
                    logs.update(d_logs)
            _ema_update(ema, model, cfg.ema_decay if step >= cfg.warmup_steps else 0.0)
            step += 1
            for k, v in logs.items():
                window[k] = window.get(k, 0.0) + float(v)
            n_window += 1
            if step % cfg.log_every == 0 or step == cfg.steps:
                row = {f"train/{k}": v / n_window for k, v in window.items()}
                row.update({"lr": lr_at(step - 1, cfg), "perf/steps_per_s": (step - start) / (time.monotonic() - t0)})
                logger.log(step, {"update": step, **row})
                window, n_window = {}, 0
            over = time_limit_s is not None and time.monotonic() - t0 > time_limit_s
            flag = dist_utils.all_sum(torch.tensor([float(stop.requested or over)]), info)
            if flag.item() > 0 and step < cfg.steps:
                stopped = stop.signal_name or "time limit"
                break
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                if val_data is not None and info.is_main:
                    logger.log(step, {"update": step, **_with_ema(model, ema, lambda m: validate(m, val_data,
                                                                                               cfg.val_frames))})
                save(step)
    summary = {"kind": kind, "step": step, "stopped": stopped, "out": str(out),
               "seconds": round(time.monotonic() - t0, 1)}
    if stopped is None:  # finished: latent scale + final validation with the EMA weights
        scale = _with_ema(model, ema, lambda m: measure_scale(m, train_data, cfg.scale_frames))
        model.set_latent_scale(scale)  # the buffer travels with both weight sets
        ema["latent_scale"] = torch.full_like(ema["latent_scale"], scale)
        metrics = _with_ema(model, ema, lambda m: validate(m, val_data, cfg.val_frames)) if val_data else {}
        if info.is_main and metrics:
            logger.log(step, {"update": step, **metrics})
        path = save(step, {"latent_scale": scale, "metrics": metrics})
        summary.update(latent_scale=scale, metrics=metrics, checkpoint=str(path) if path else None)
    else:
        path = save(step)
        summary.update(checkpoint=str(path) if path else None)
    logger.close()
    if info.is_main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    dist_utils.teardown()
    return summary


def _with_ema(model, ema: dict[str, torch.Tensor], fn):
    """Run ``fn`` on a copy of ``model`` carrying the EMA weights (the training weights stay)."""
    shadow = copy.deepcopy(model)
    shadow.load_state_dict(ema, strict=False)
    return fn(shadow)
