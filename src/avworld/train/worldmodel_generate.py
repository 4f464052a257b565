"""World-model generation on a dataset: tokenizers (identity-checked), decoding, evaluation items.

* :class:`Tokenizers` decodes predicted latents to uint8 frames and binaural clips;
  :func:`load_tokenizers` builds it from tokenizer checkpoints (default: the shipped ones) and
  :func:`check_tokenizers` raises :class:`TokenizerIdentityError` unless their SHA-256 are the
  ones recorded in the world model's checkpoint (the tokenizers its latents were made with).
* :func:`eval_items` picks contexts (trajectory, frame t) with t-k+1 >= 0 and t + horizon inside
  the trajectory, spread evenly over the split; :func:`item_batch` reads their context latents,
  the true latents, frames and clips of t .. t + horizon, the per-step actions (relative pose of
  frame t+j in frame t+j-1, as :class:`~avworld.data.loaders.CDiTDataset` composes them), the
  aggregated actions t -> t+j and the cumulative rewards from t.
* :func:`generate` runs fixed-step or rollout prediction (:mod:`avworld.models.worldmodel.generate`)
  on such a batch and decodes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from avworld.data.latent_reader import AVWLatents
from avworld.data.poses import relative_pose
from avworld.data.reader import AVWDataset
from avworld.models.worldmodel.generate import MAX_DELTA, GenerationError, fixed_step, rollout
from avworld.train.worldmodel_checkpoint import TokenizerIdentityError, check_identity

MODES = ("fixed", "rollout")


@dataclass
class Tokenizers:
    """Decoders of the latents and the identity they are checked by (``{kind: {"sha256": ...}}``)."""

    identity: dict
    decode_image: Callable[[torch.Tensor], np.ndarray] | None  # (N, C, h, w) latents -> uint8 (N, H, W, 3)
    decode_audio: Callable[[torch.Tensor], np.ndarray] | None  # (N, D, F) latents -> float32 (N, 2, S)
    sample_rate: int = 16_000


def load_tokenizers(image: str = "image", audio: str = "audio", device: str = "cpu") -> Tokenizers:
    """Decoders of tokenizer checkpoints (run dirs, .pt files, or "image"/"audio": the shipped ones)."""
    from avworld.train.tokenizer_apply import identity_of
    from avworld.train.tokenizer_checkpoint import load_tokenizer

    img = load_tokenizer(image, kind="image", map_location=device)
    aud = load_tokenizer(audio, kind="audio", map_location=device)

    @torch.no_grad()
    def dec_img(z: torch.Tensor) -> np.ndarray:
        return img.to_uint8(img.decode_latents(z.to(device).float())).cpu().numpy()

    @torch.no_grad()
    def dec_aud(z: torch.Tensor) -> np.ndarray:
        return aud.decode_latents(z.to(device).float()).cpu().numpy().astype(np.float32)

    return Tokenizers({"image": identity_of(img), "audio": identity_of(aud)}, dec_img, dec_aud,
                      int(aud.config.sample_rate))


def check_tokenizers(model, tokenizers: Tokenizers) -> None:
    """:class:`TokenizerIdentityError` unless each tokenizer's SHA-256 is the one the checkpoint's latents
    were encoded with (``model.checkpoint_info["latents"]["identity"]``)."""
    info = getattr(model, "checkpoint_info", None) or {}
    recorded = (info.get("latents") or {}).get("identity") or {}
    for kind, mine in tokenizers.identity.items():
        theirs = recorded.get(kind)
        if theirs is None:
            continue  # the latents have no such modality (e.g. image-only latents)
        if mine.get("sha256") != theirs.get("sha256"):
            raise TokenizerIdentityError(
                f"the {kind} tokenizer given (sha256 {str(mine.get('sha256'))[:12]}..., {mine.get('file')}) is not the "
                f"one the world model's latents were made with (sha256 {str(theirs.get('sha256'))[:12]}..., "
                f"{theirs.get('file')}); pass that checkpoint (--{kind} PATH) so predictions decode correctly")


def check_latents(model, root, name: str) -> None:
    """:class:`TokenizerIdentityError` unless latents ``name`` of ``root`` were made by the checkpoint's tokenizers."""
    from avworld.train.worldmodel_data import latents_info

    info = getattr(model, "checkpoint_info", None) or {}
    check_identity(info.get("latents") or {}, latents_info(root, name), f"world model {info.get('path')}")


def eval_items(lat: AVWLatents, context: int, horizon: int, max_items: int = 0) -> list[tuple[int, int]]:
    """(trajectory, t) pairs with frames t-context+1 .. t+horizon inside the trajectory, evenly spread
    over the split (all of them when ``max_items`` is 0)."""
    pairs = [(i, t) for i, ref in enumerate(lat.trajectories) for t in range(context - 1, ref.length - horizon)]
    if not pairs:
        raise GenerationError(f"no trajectory of the split has {context + horizon} frames (k={context} context + "
                              f"{horizon} ahead); evaluate smaller offsets (--deltas) or on longer trajectories")
    if max_items and len(pairs) > max_items:
        pick = np.unique(np.linspace(0, len(pairs) - 1, max_items).round().astype(np.int64))
        pairs = [pairs[j] for j in pick]
    return pairs


def item_batch(lat: AVWLatents, pix: AVWDataset | None, items, context: int, horizon: int) -> dict[str, np.ndarray]:
    """Arrays of ``items`` (see the module docstring); ``pix`` (the pixel dataset) adds ``frames`` and
    ``clips`` (B, horizon + 1, ...) of t .. t + horizon. Latent arrays: ``context_<m>`` (B, k, ...),
    ``true_<m>`` (B, horizon, ...) of t+1 .. t+horizon."""
    out: dict[str, list] = {}
    for i, t in items:
        small = lat.small(i)
        pose, cum = small["pose"], np.concatenate([[0.0], np.cumsum(small["reward"], dtype=np.float64)])
        ahead = np.arange(t + 1, t + horizon + 1)
        rec = {"step_action": relative_pose(pose[ahead - 1], pose[ahead]),
               "action": relative_pose(pose[t], pose[ahead]), "reward": cum[ahead] - cum[t], "traj": i, "t": t}
        for m in lat.fields:
            rec[f"context_{m}"] = lat.frames(i, m, slice(t - context + 1, t + 1))
            rec[f"true_{m}"] = lat.frames(i, m, slice(t + 1, t + horizon + 1))
        if pix is not None:
            rec["frames"] = pix.frames(i, "rgb", slice(t, t + horizon + 1))
            rec["clips"] = pix.frames(i, "audio", slice(t, t + horizon + 1)).astype(np.float32)
        for k, v in rec.items():
            out.setdefault(k, []).append(v)
    return {k: np.stack(v).astype(np.float32) if k not in ("traj", "t", "frames") else np.stack(v)
            for k, v in out.items()}


def generate(model, batch: dict, mode: str, deltas, *, sampler: str = "ddim", steps: int = 10, seed: int = 0,
             tokenizers: Tokenizers | None = None) -> dict[int, dict]:
    """Predictions for each Δ in ``deltas``: ``{Δ: {"rgb", "audio" (latents), "reward" (cumulative from t),
    "frames" (uint8), "clips" (float32)}}`` (decoded when ``tokenizers`` are given), modalities of the
    model's stage. ``mode`` "fixed" samples each Δ directly (seed + Δ); "rollout" rolls out max(deltas)
    steps once and reads step Δ."""
    if mode not in MODES:
        raise GenerationError(f"unknown mode {mode!r}; choose one of {MODES}")
    deltas = sorted({int(d) for d in deltas})
    if not deltas or deltas[0] < 1 or deltas[-1] > MAX_DELTA:
        raise GenerationError(f"deltas must lie in 1 .. {MAX_DELTA}, got {deltas}")
    ctx = {m: torch.from_numpy(batch[f"context_{m}"]) for m in ("rgb", "audio") if f"context_{m}" in batch}
    res: dict[int, dict] = {}
    if mode == "fixed":
        for d in deltas:
            out = fixed_step(model, ctx, d, torch.from_numpy(batch["action"][:, d - 1]), sampler=sampler,
                             steps=steps, seed=seed + d)
            res[d] = {k: v.cpu() for k, v in out.items()}
    else:
        out = rollout(model, ctx, torch.from_numpy(batch["step_action"][:, :deltas[-1]]), sampler=sampler,
                      steps=steps, seed=seed)
        for d in deltas:
            res[d] = {k: out[k][:, d - 1].cpu() for k in out if k not in ("reward", "reward_cum")}
            if "reward_cum" in out:
                res[d]["reward"] = out["reward_cum"][:, d - 1].cpu()
    if tokenizers is not None:
        for r in res.values():
            decode_into(r, tokenizers)
    return res


def decode_into(pred: dict, tokenizers: Tokenizers) -> dict:
    """Add ``frames`` / ``clips`` decoded from ``pred["rgb"]`` / ``pred["audio"]`` (those present)."""
    if "rgb" in pred and tokenizers.decode_image is not None:
        pred["frames"] = tokenizers.decode_image(torch.as_tensor(pred["rgb"]))
    if "audio" in pred and tokenizers.decode_audio is not None:
        pred["clips"] = tokenizers.decode_audio(torch.as_tensor(pred["audio"]))
    return pred
