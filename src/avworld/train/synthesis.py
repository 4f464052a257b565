"""Training of the π-AVAS refiner (Algorithm 1) with checkpoints, exact resume and logs.

Each step's batch (examples, crop offsets, flow times t, noise eps) is drawn from generators
seeded by (seed, step), so a resumed run takes exactly the steps an uninterrupted one would (the
checkpoint carries the weights, the Adam state and the step). ``start="neural"`` trains the pure
neural baseline: the same network and flow with x_sim replaced by zeros.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from avworld.data.synthesis import load_split, manifest_config
from avworld.models.synthesis import tf
from avworld.models.synthesis.calibrate import start_ear_matrices
from avworld.models.synthesis.flow import flow_loss
from avworld.models.synthesis.refiner import GatedConvRefiner, RefinerConfig
from avworld.train.synthesis_config import SynthesisTrainConfig

FORMAT, VERSION = "avworld-synthesis-refiner", 1


class SynthesisCheckpointError(ValueError):
    """A refiner checkpoint that is missing, foreign, or belongs to another config or data set."""


def tensors(split: dict, device="cpu") -> dict:
    """torch tensors of a split: x_tx (N, T), x_sim / x_rx (N, 2, T), pose (N, 7) = listener + source."""
    pose = np.concatenate([split["poses"], split["source"]], axis=1)
    return {"x_tx": torch.as_tensor(split["x_tx"], device=device),
            "x_sim": torch.as_tensor(split["x_sim"], device=device),
            "x_rx": torch.as_tensor(split["x_rx"], device=device),
            "pose": torch.as_tensor(pose, dtype=torch.float32, device=device)}


def _encoded(data: dict, model_cfg: RefinerConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """x_sim and x_rx of a split in the refiner's representation (whole clips)."""
    if model_cfg.domain == "mag":
        return tf.encode(data["x_sim"], model_cfg.mag_power), tf.encode(data["x_rx"], model_cfg.mag_power)
    return data["x_sim"], data["x_rx"]


#: parameters of the refiner's linear psi -> velocity path (RefinerConfig.direct / direct_ears)
LINEAR_PATH = ("direct.", "direct_t.", "ears", "ears_t")


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Adam groups: the seed's weight decay on the network, none on the per-bin linear path.

    Each linear-path parameter touches one bin of one ear (1/514 of the output in the mag domain), so
    its gradient under the mean flow loss is ~1e-5, the size of Adam's L2 term 1e-4 * w: with decay the
    path stays near zero (measured: the 6,000-step ``cpu`` run learned matrices of |w| <= 0.25 where
    the least-squares fit on the same clips has -0.77 ... 0.33) and the gated stack fits the
    training placement instead.
    """
    linear = [p for n, p in model.named_parameters() if n.startswith(LINEAR_PATH)]
    rest = [p for n, p in model.named_parameters() if not n.startswith(LINEAR_PATH)]
    groups = [{"params": rest, "weight_decay": weight_decay}]
    if linear:
        groups.append({"params": linear, "weight_decay": 0.0})
    return groups


def draw_batch(data: dict, cfg: SynthesisTrainConfig, step: int, domain: str = "wave", power: float = 0.3) -> dict:
    """The batch of ``step``: a pure function of (cfg.seed, step) and the data.

    ``domain="mag"``: x_tx, x_sim and x_rx as STFT magnitudes ** ``power`` (models/synthesis/tf.py).
    """
    n, T = data["x_tx"].shape
    rng = np.random.default_rng([cfg.seed, step, 17])
    idx = torch.as_tensor(rng.integers(0, n, cfg.batch_size))
    crop = cfg.crop if 0 < cfg.crop < T else T
    offs = rng.integers(0, T - crop + 1, cfg.batch_size)
    win = torch.as_tensor(offs[:, None] + np.arange(crop)[None])
    dev = data["x_tx"].device
    idx, win = idx.to(dev), win.to(dev)
    x_tx = torch.gather(data["x_tx"][idx], 1, win)
    g = win[:, None, :].expand(-1, 2, -1)
    x_sim = torch.gather(data["x_sim"][idx], 2, g)
    x_rx = torch.gather(data["x_rx"][idx], 2, g)
    if domain == "mag":
        x_tx, x_sim, x_rx = tf.encode(x_tx, power), tf.encode(x_sim, power), tf.encode(x_rx, power)
    if cfg.start == "neural":
        x_sim = torch.zeros_like(x_sim)
    gen = torch.Generator().manual_seed(int(np.random.default_rng([cfg.seed, step, 29]).integers(2 ** 62)))
    t = torch.rand(cfg.batch_size, generator=gen).to(dev)
    eps = torch.randn(x_rx.shape, generator=gen).to(dev)
    return {"x_tx": x_tx, "x_sim": x_sim, "x_rx": x_rx, "pose": data["pose"][idx], "t": t, "eps": eps}


def _ckpt_dir(out: Path) -> Path:
    return out / "checkpoints"


def latest_checkpoint(out: str | Path) -> Path | None:
    found = sorted(_ckpt_dir(Path(out)).glob("ckpt_*.pt"))
    return found[-1] if found else None


def save(path: Path, state: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path) or (path / "refiner.pt" if (path / "refiner.pt").exists() else None)
        if found is None:
            raise SynthesisCheckpointError(f"{path}: no refiner.pt or checkpoints/ckpt_*.pt; train with "
                                           "`avworld synthesis train`")
        path = found
    if not path.is_file():
        raise SynthesisCheckpointError(f"{path}: no such file; pass a refiner.pt or a run folder")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        raise SynthesisCheckpointError(f"{path}: unreadable (truncated or not written by torch.save)") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT or ck.get("version") != VERSION:
        raise SynthesisCheckpointError(f"{path}: not a π-AVAS refiner checkpoint ({FORMAT} v{VERSION})")
    return ck


def load_refiner(path: str | Path, device="cpu") -> tuple[GatedConvRefiner, dict]:
    """The trained network (eval mode) and its checkpoint's header (configs, step, start)."""
    ck = load(path)
    model = GatedConvRefiner(RefinerConfig(**ck["model_config"]))
    model.load_state_dict(ck["model"])
    return model.to(device).eval(), {k: v for k, v in ck.items() if k not in ("model", "optimizer")}


def _prune(out: Path, keep: int = 2) -> None:
    found = sorted(_ckpt_dir(out).glob("ckpt_*.pt"))
    for p in found[:-keep]:
        p.unlink(missing_ok=True)


@torch.no_grad()
def _val_loss(model, val: dict, cfg: SynthesisTrainConfig) -> float:
    if not len(val["x_tx"]):
        return float("nan")
    n = len(val["x_tx"])
    x_tx, x_sim, x_rx = val["x_tx"], val["x_sim"], val["x_rx"]
    if model.config.domain == "mag":
        pw = model.config.mag_power
        x_tx, x_sim, x_rx = tf.encode(x_tx, pw), tf.encode(x_sim, pw), tf.encode(x_rx, pw)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    t = torch.rand(n, generator=gen)
    eps = torch.randn(x_rx.shape, generator=gen)
    x_sim = torch.zeros_like(x_sim) if cfg.start == "neural" else x_sim
    model.eval()
    loss = flow_loss(model, x_tx, x_sim, x_rx, val["pose"], t.to(x_sim.device), eps.to(x_sim.device), cfg.sigma)
    model.train()
    return float(loss)


def train_refiner(data_dir: str | Path, out_dir: str | Path, model_cfg: RefinerConfig, cfg: SynthesisTrainConfig,
                  resume: bool = False, time_limit_s: float | None = None, device: str = "cpu",
                  progress: bool = True, tensorboard: bool = True, stop_at_step: int | None = None,
                  val_data: str | Path | None = None, val_examples: int = 96) -> dict:
    """Train (or continue) a refiner in ``out_dir``; returns a summary. Writes ``refiner.pt`` when done.

    ``stop_at_step`` ends the call early with a checkpoint (as a time limit or Ctrl-C would). ``val_data``:
    a validation folder (other placements of the same houses); the MAG of up to ``val_examples`` of its
    held-out clips is logged at step 0 and every periodic checkpoint, and the best weights go to ``best.pt``
    (:mod:`avworld.train.synthesis_select`).
    """
    from avworld.train.logs import RunLogger
    from avworld.train.stop import StopRequest

    out = Path(out_dir)
    if model_cfg.domain == "mag" and 0 < cfg.crop < tf.N_FFT:
        from avworld.train.synthesis_config import SynthesisConfigError

        raise SynthesisConfigError(f"train.crop={cfg.crop}: the magnitude refiner needs crops of at least "
                                   f"{tf.N_FFT} samples (or 0 for whole clips)")
    data_cfg = manifest_config(data_dir)
    train = tensors(load_split(data_dir, "train"), device)
    test = load_split(data_dir, "test")
    vsel = np.linspace(0, len(test["x_tx"]) - 1, min(cfg.val_examples, len(test["x_tx"]))).astype(int)
    val = tensors({k: (v[vsel] if isinstance(v, np.ndarray) else v) for k, v in test.items()}, device)
    torch.manual_seed(cfg.seed)
    model = GatedConvRefiner(model_cfg).to(device)
    if cfg.init_ears and cfg.start == "refine":
        if not model_cfg.direct_ears:
            from avworld.train.synthesis_config import SynthesisConfigError

            raise SynthesisConfigError("train.init_ears=true needs model.direct=true and model.direct_ears=true")
        start_ear_matrices(model, *_encoded(train, model_cfg))
    opt = torch.optim.Adam(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas))
    header = {"model_config": asdict(model_cfg), "train_config": asdict(cfg), "data_config": data_cfg,
              "train_examples": int(len(train["x_tx"]))}
    step = 0
    existing = latest_checkpoint(out)
    if existing is not None and not resume:
        raise SynthesisCheckpointError(f"{out} already has checkpoints; pass --resume to continue or use a new --out")
    if resume and existing is not None:
        ck = load(existing)
        for k in ("model_config", "train_config", "data_config", "train_examples"):
            if ck[k] != header[k]:
                raise SynthesisCheckpointError(f"{existing}: its {k} differs from this run's; resume with the same "
                                               "preset, --set values and data, or use a new --out")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step = int(ck["step"])
    selector = None
    if val_data is not None:
        from avworld.train.synthesis_select import ValidationSelector

        selector = ValidationSelector(val_data, int(data_cfg["sample_rate_hz"]), int(train["x_tx"].shape[1]),
                                      out, header, cfg.start, val_examples, device=device, resume=resume)
    logger = RunLogger(out, cfg.steps, tensorboard=tensorboard, progress=progress, start_step=step,
                       resume_update=step if resume else None, title=f"π-AVAS {cfg.start}")
    t0 = time.perf_counter()
    seen, losses = 0, []

    def checkpoint():
        save(_ckpt_dir(out) / f"ckpt_{step:08d}.pt",
             {**header, "model": model.state_dict(), "optimizer": opt.state_dict(), "step": step})
        _prune(out)

    stopped = None
    if selector is not None and step == 0:
        logger.log(0, {"update": 0, "val/mag": selector.update(model, 0)})
    model.train()
    try:
        with StopRequest() as stop:
            while step < cfg.steps:
                b = draw_batch(train, cfg, step, model_cfg.domain, model_cfg.mag_power)
                loss = flow_loss(model, b["x_tx"], b["x_sim"], b["x_rx"], b["pose"], b["t"], b["eps"], cfg.sigma)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                step += 1
                seen += 1
                losses.append(loss.item())
                if step % cfg.log_every == 0 or step == cfg.steps:
                    el = time.perf_counter() - t0
                    logger.log(step, {"update": step, "loss/flow": float(np.mean(losses)),
                                      "perf/s_per_step": el / seen})
                    losses = []
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    logger.log(step, {"update": step, "loss/val_flow": _val_loss(model, val, cfg)})
                    if selector is not None:
                        logger.log(step, {"update": step, "val/mag": selector.update(model, step)})
                    checkpoint()
                if stop.requested:
                    stopped = stop.signal_name
                elif time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                    stopped = "time limit"
                elif stop_at_step is not None and step >= stop_at_step:
                    stopped = "stop_at_step"
                if stopped:
                    checkpoint()
                    break
    finally:
        logger.close()
    done = step >= cfg.steps
    if done:
        save(out / "refiner.pt", {**header, "model": model.state_dict(), "step": step})
    summary = {"step": step, "done": done, "stopped": stopped, "seconds": time.perf_counter() - t0,
               "s_per_step": (time.perf_counter() - t0) / max(seen, 1)}
    if selector is not None and selector.best_step >= 0:
        summary.update({"best_step": selector.best_step, "best_val_mag": selector.best})
    return summary


def step_of(path: str | Path) -> int:
    m = re.search(r"ckpt_(\d+)\.pt$", str(path))
    return int(m.group(1)) if m else -1
