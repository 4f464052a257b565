"""Checkpoints of navigation agents: atomic writes, typed errors on corrupt or mismatched files.

A checkpoint is a ``torch.save`` dict loadable with ``weights_only=True`` (tensors and plain
Python values only)::

    format "avworld-nav-ppo", version 1
    agent "agsa" | "avnav", model_config {...}, obs_shapes {key: shape}, action_dim, continuous
    model (state dict), and for resuming: optimizer, ppo_config, update, global_step,
    trainer (per-rank RNG, rollout carry-over and env states)

:func:`build_from_checkpoint` rebuilds the policy for evaluation or the demo.
:func:`export_checkpoint` writes a policy-only copy (no optimizer or trainer state, weights
optionally in float16) small enough to ship; it evaluates and demos like the original but
cannot be resumed.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import asdict
from pathlib import Path

import torch

FORMAT, VERSION = "avworld-nav-ppo", 1


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, of another format, or of another architecture."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file cannot be read: truncated (an interrupted copy or a full disk) or damaged."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path
        size = path.stat().st_size
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        if size == 0:
            what = "is empty (0 bytes)"
        elif zipped and not zipfile.is_zipfile(path):
            what = f"is truncated ({size:,} bytes; the end of the archive is missing)"
        elif zipped:
            what = f"is damaged ({size:,} bytes; torch cannot read its contents)"
        else:
            what = f"is not a checkpoint written by torch.save ({size:,} bytes; no zip archive)"
        others = sorted(p.name for p in path.parent.glob("ckpt_*.pt") if p != path)
        earlier = f" (this folder has {', '.join(others[-3:])})" if others else ""
        super().__init__(f"checkpoint {path} {what}. Use an earlier checkpoint{earlier}, copy the file again if it "
                         "was transferred, or retrain")


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """Write ``state`` (plus format and version) atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
        os.replace(tmp, path)
    except BaseException:  # including an abort (second Ctrl-C) mid-write: leave no partial file behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict at ``path``; :class:`CheckpointError` if it is missing, corrupt or foreign."""
    path = Path(path)
    if path.is_dir():
        path = latest_checkpoint(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file; pass a .pt file written by `avworld train nav`")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - torch raises many kinds on corrupt data, with advice that does not apply
        raise CorruptCheckpointError(path) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an avworld navigation checkpoint (format {FORMAT!r} expected)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')}, this avworld reads {VERSION}")
    return ckpt


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def latest_checkpoint(directory: str | Path) -> Path:
    """The newest ``ckpt_*.pt`` in ``directory`` (a run directory or its ``checkpoints/``)."""
    d = Path(directory)
    if (d / "checkpoints").is_dir():
        d = d / "checkpoints"
    found = sorted(d.glob("ckpt_*.pt")) if d.is_dir() else []
    if not found:
        raise CheckpointError(f"{directory}: no checkpoints (ckpt_*.pt) to resume from; train without --resume")
    return found[-1]


def resolve_checkpoint(path: str | Path, shipped: dict[str, Path], error: type[Exception], what: str,
                       hint: str) -> Path:
    """The checkpoint file ``path`` names: a shipped name (a key of ``shipped``), a ``.pt`` file or a
    run directory (its newest ``ckpt_*.pt``). ``error`` (naming ``what`` and ``hint``) otherwise."""
    if isinstance(path, str) and path in shipped:
        p = Path(shipped[path])
        if not p.is_file():
            raise error(f"no shipped {what} {path!r} in this installation ({p} is missing); {hint}")
        return p
    p = Path(path)
    if p.is_dir():
        p = latest_checkpoint(p)
    if not p.is_file():
        raise error(f"{p}: no such {what} checkpoint; {hint}")
    return p


def prune_checkpoints(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest ``ckpt_*.pt``."""
    found = sorted(Path(directory).glob("ckpt_*.pt"))
    for p in found[:-keep] if keep > 0 else []:
        p.unlink(missing_ok=True)


def checkpoint_name(update: int) -> str:
    return f"ckpt_{update:07d}.pt"


def update_of(path: str | Path) -> int:
    m = re.search(r"ckpt_(\d+)\.pt$", str(path))
    return int(m.group(1)) if m else -1


def policy_header(agent: str, policy) -> dict:
    """What identifies an architecture: agent, config, observation shapes, action space."""
    return {"agent": agent, "model_config": asdict(policy.config), "obs_shapes": {k: list(v) for k, v in
            policy.obs_shapes.items()}, "action_dim": policy.action_dim, "continuous": policy.continuous}


def check_architecture(ckpt: dict, header: dict, path: str | Path = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming every difference between ``ckpt`` and ``header``."""
    diffs = []
    for key in ("agent", "action_dim", "continuous"):
        if ckpt.get(key) != header[key]:
            diffs.append(f"{key}: checkpoint {ckpt.get(key)!r}, here {header[key]!r}")
    mine, theirs = header["model_config"], ckpt.get("model_config", {})
    for k in sorted(set(mine) | set(theirs)):
        a, b = theirs.get(k), mine.get(k)
        if (list(a) if isinstance(a, (list, tuple)) else a) != (list(b) if isinstance(b, (list, tuple)) else b):
            diffs.append(f"model_config.{k}: checkpoint {a!r}, here {b!r}")
    ob_mine, ob_theirs = header["obs_shapes"], ckpt.get("obs_shapes", {})
    for k in sorted(set(ob_mine) | set(ob_theirs)):
        if list(ob_theirs.get(k, [])) != list(ob_mine.get(k, [])):
            diffs.append(f"observation {k!r}: checkpoint {ob_theirs.get(k)}, here {ob_mine.get(k)}")
    if diffs:
        raise CheckpointError(f"{path} was trained with another architecture: " + "; ".join(diffs) +
                              ". Use the same agent, preset and image size as the checkpoint (see its config.json)")


def build_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", **config_overrides):
    """(policy in eval mode, checkpoint dict); ``config_overrides`` may change run-time switches such as
    ``zero_visual`` (evaluate without vision) but not sizes."""
    from avworld.models.nav import AGENTS, build_policy

    ckpt = load_checkpoint(path, map_location)
    agent = ckpt.get("agent")
    if agent not in AGENTS:
        raise CheckpointError(f"{path}: unknown agent {agent!r} in the checkpoint")
    cfg_cls = AGENTS[agent][0]
    try:
        cfg = cfg_cls(**{**ckpt["model_config"], **config_overrides})
        policy = build_policy(agent, {k: tuple(v) for k, v in ckpt["obs_shapes"].items()}, ckpt["action_dim"],
                              ckpt["continuous"], cfg)
        policy.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the weights do not fit the recorded architecture ({str(exc)[:300]})") from None
    return policy.to(map_location).eval(), ckpt


def export_checkpoint(src: str | Path, dst: str | Path, half: bool = True) -> Path:
    """Write the policy of checkpoint ``src`` (a file or run directory) to ``dst`` without the optimizer and
    trainer state, floating-point weights in float16 when ``half`` (loading casts them back to float32)."""
    ckpt = load_checkpoint(src)
    if "model" not in ckpt:
        raise CheckpointError(f"{src}: the checkpoint has no model weights to export")
    model = {k: (v.half() if half and v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    keep = ("agent", "model_config", "obs_shapes", "action_dim", "continuous", "global_step", "run_info")
    state = {k: ckpt[k] for k in keep if k in ckpt}
    state.update(model=model, exported={"from": str(src), "half": bool(half), "update": ckpt.get("update")})
    return save_checkpoint(dst, state)


def resume_trainer(trainer, out: str | Path, device, announce: bool) -> None:
    """Load the newest checkpoint of run ``out`` into a PPO ``trainer`` (navigation or separation);
    ``announce`` prints where it resumes and whether exactly."""
    path = latest_checkpoint(out)
    exact = trainer.load_state_dict(load_checkpoint(path, device), path)
    if announce:
        how = "exactly" if exact else "with re-seeded envs (episodes in progress restart)"
        print(f"resuming {path} at update {trainer.update}, step {trainer.global_step:,} {how}")
