"""Pretraining the passive separator f^P with Eq. 1 on the static dataset (``avworld separation train passive``).

Adam (lr 5e-4, gradient norm 0.8: the seed's values) on batches of ``batch_size`` examples
whose indices depend only on ``(seed, step)``; BatchNorm in training mode. Every
``checkpoint_every`` steps: a checkpoint (``out/checkpoints/ckpt_XXXXXXX.pt``: weights,
optimizer, step) and a validation pass (eval mode) over the first ``val_examples`` examples
of ``val_split`` (loss, SI-SDR of the monaural estimate with the true phase, SI-SDR of the
mixture, SI-SDRi). Nothing else is random, so ``--resume`` continues with the same batches
and ends with the same weights as a run never stopped (tested). SIGINT / SIGTERM /
``time_limit_s`` stop at the end of a step with a checkpoint. The trained f^P is loaded
frozen by :func:`load_passive` for the active phase.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from avworld.train.checkpoint import (
    CheckpointError,
    CorruptCheckpointError,
    checkpoint_dir,
    checkpoint_name,
    latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from avworld.train.logs import RunLogger
from avworld.train.run_options import check_new_run
from avworld.train.separation_config import PassiveTrainConfig, SeparationConfigError
from avworld.train.separation_data import SpectraCache, spectra
from avworld.train.stop import StopRequest

FORMAT = "avworld-separation-passive"


def _model(cfg: PassiveTrainConfig, num_types: int):
    from avworld.models.separation import PassiveConfig, PassiveSeparator

    return PassiveSeparator(PassiveConfig(channels=cfg.channels, num_types=num_types))


def batch_indices(seed: int, step: int, n: int, batch: int) -> np.ndarray:
    return np.random.default_rng([seed, step]).integers(0, n, batch)


@torch.no_grad()
def evaluate_passive(model, data, n: int | None = None, batch: int = 32, device="cpu") -> dict[str, np.ndarray]:
    """Per-example Eq. 1 loss terms and separation metrics of the first ``n`` examples of ``data`` (eval mode)."""
    from avworld.eval.separation_metrics import step_metrics
    from avworld.models.separation import passive_loss

    was = model.training
    model.eval()
    n = len(data) if n is None else min(n, len(data))
    cols: dict[str, list] = {}
    for a in range(0, n, batch):
        s = spectra(data.get(np.arange(a, min(a + batch, n))), device)
        out = model(s["mixture"], s["target_type"])
        m = step_metrics(out.mono, s["target_mono"], s["mono_phase"], s["mono_wave"], s["mixture_wave"])
        m["loss"] = np.array([passive_loss(type(out)(*(t[i:i + 1] for t in out)), s["target_binaural"][i:i + 1],
                                           s["target_mono"][i:i + 1])[0].item() for i in range(len(out.mono))])
        for k, v in m.items():
            cols.setdefault(k, []).append(np.asarray(v))
    model.train(was)
    return {k: np.concatenate(v) for k, v in cols.items()}


def _save(out: Path, model, opt, step: int, cfg: PassiveTrainConfig, info: dict) -> Path:
    state = {"format": FORMAT, "model_config": asdict(model.config), "train_config": asdict(cfg),
             "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step, "data": info}
    d = checkpoint_dir(out)
    path = save_checkpoint(d / checkpoint_name(step), state)
    prune_checkpoints(d, cfg.keep_checkpoints)
    return path


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if path.is_dir():
        path = latest_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such f^P checkpoint; train one with `avworld separation train passive`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds on corrupt files
        raise CorruptCheckpointError(path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a passive-separator checkpoint (format {FORMAT!r}); pass the run "
                              "directory of `avworld separation train passive`")
    return ckpt


def load_passive(path: str | Path, device="cpu"):
    """The trained f^P of a checkpoint or run directory, in eval mode with gradients off (frozen)."""
    from avworld.models.separation import PassiveConfig, PassiveSeparator

    ckpt = read_checkpoint(path, device)
    model = PassiveSeparator(PassiveConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def train_passive(cfg: PassiveTrainConfig, train_data, val_data, out_dir: str | Path, resume: bool = False,
                  time_limit_s: float | None = None, progress: bool = True, tensorboard: bool = True,
                  device: str | None = None, data_info: dict | None = None) -> dict:
    """Train f^P into ``out_dir``; returns {step, checkpoint, stopped, seconds, val}."""
    from avworld.models.separation import passive_loss
    from avworld.train.distributed import pick_device

    dev = pick_device(device)
    out = Path(out_dir)
    torch.manual_seed(cfg.seed)
    model = _model(cfg, train_data.num_types).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = 0
    if resume:
        ckpt = read_checkpoint(out, dev)
        def same(c):  # the step budget may change on resume (no schedule depends on it)
            return json.loads(json.dumps({k: v for k, v in dict(c).items() if k != "steps"}))

        if same(ckpt["train_config"]) != same(asdict(cfg)):
            raise SeparationConfigError(f"{out} was trained with another config ({ckpt['train_config']}); resume "
                                        "with the same --preset and --set options (only train.steps may change) "
                                        "or use a new --out")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
    else:
        check_new_run(out, False, SeparationConfigError)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        (out / "config.json").write_text(json.dumps({"phase": "passive", "train": asdict(cfg),
                                                     "model": asdict(model.config), "data": data_info or {}},
                                                    indent=2) + "\n")
    logger = RunLogger(out, cfg.steps, tensorboard, progress, start_step=step,
                       resume_update=step if resume else None, title="f^P")
    started, stopped, path, val = time.monotonic(), None, None, {}
    cache = SpectraCache(train_data) if cfg.cache_spectra else None
    model.train()
    try:
        with StopRequest() as stop:
            while step < cfg.steps:
                t0 = time.perf_counter()
                idx = batch_indices(cfg.seed, step, len(train_data), cfg.batch_size)
                s = cache.get(idx, dev) if cache is not None else spectra(train_data.get(idx), dev)
                loss, logs = passive_loss(model(s["mixture"], s["target_type"]), s["target_binaural"],
                                          s["target_mono"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                opt.step()
                step += 1
                if time_limit_s is not None and time.monotonic() - started > time_limit_s:
                    stopped = "time_limit"
                elif stop.requested:
                    stopped = stop.signal_name
                if step % cfg.log_every == 0 or step == cfg.steps or stopped:
                    logger.log(step, {"update": step, "loss/total": loss.item(), "loss/grad_norm": grad.item(),
                                      **{k: v.item() for k, v in logs.items()},
                                      "perf/steps_per_s": 1.0 / max(time.perf_counter() - t0, 1e-9)})
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopped:
                    path = _save(out, model, opt, step, cfg, data_info or {})
                    if val_data is not None and cfg.val_examples > 0:
                        m = evaluate_passive(model, val_data, cfg.val_examples, device=dev)
                        val = {f"val/{k}": float(np.nanmean(v)) for k, v in m.items()}
                        logger.log(step, {"update": step, **val})
                if stopped:
                    break
    finally:
        logger.close()
    return {"step": step, "checkpoint": str(path) if path else None, "stopped": stopped,
            "seconds": time.monotonic() - started, "val": val}
