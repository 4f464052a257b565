"""World-model training samples: latents of context + goals, flattened to examples, seeded noise.

An item of :class:`~avworld.data.latent_loaders.LatentCDiTDataset` is one context (k frames)
with G goals. A step takes ``batch_size`` items in the seeded order of
:class:`~avworld.train.tokenizer_data.ScheduleSampler` (a function of ``(seed, step)``; the goal
draw is the dataset's ``(seed, epoch, idx)`` with ``epoch = step // items_per_epoch``) and
**flattens the G goals to batch_size * G examples with the context repeated** (every goal of
every context trains at every step, as NWM's several goals per context).

The diffusion step ``t`` and the noise of every example are drawn from a generator seeded with
``(seed, step)`` for the whole global batch, and each rank takes the rows of its items; so a
resumed run, and a torchrun job with any number of ranks, see exactly the noise of one
uninterrupted process with the same global batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from avworld.data.latent_loaders import LatentCDiTDataset
from avworld.data.latents import LatentsMissingError, load_latent_manifest
from avworld.models.worldmodel import ContextLengthError
from avworld.train.worldmodel_config import LATENT_FIELDS, WorldModelConfigError

KEYS = ("context_rgb_latent", "context_audio_latent", "goal_rgb_latent", "goal_audio_latent", "goal_action",
        "goal_offset", "goal_reward")


def latents_info(root, name: str) -> dict:
    """Name, root, dataset, field shapes and tokenizer identity of latents ``name`` of ``root``."""
    from pathlib import Path

    m = load_latent_manifest(root, name)
    if m is None:
        raise LatentsMissingError(f"{root} has no latents {name!r}; encode them with `avworld tokenizer encode "
                                  f"--data {root} --image IMAGE_CKPT --audio AUDIO_CKPT --name {name}`")
    return {"name": name, "root": str(Path(root).resolve()), "dataset": m.get("dataset"),
            "fields": {f: list(v["shape"]) for f, v in m.get("fields", {}).items()}, "identity": m.get("identity")}


def fit_latents(model_cfg, info: dict, explicit: set[str] = frozenset()):
    """``model_cfg`` with its latent shape fields taken from the latents (those set explicitly must match)."""
    from dataclasses import replace

    fields = info["fields"]
    found = {}
    if "rgb" in fields:
        found.update(rgb_channels=fields["rgb"][0], rgb_size=fields["rgb"][1])
        if fields["rgb"][1] != fields["rgb"][2]:
            raise WorldModelConfigError(f"latents {info['name']!r} have non-square image latents {fields['rgb']}; "
                                        "the AV-CDiT needs h = w")
    if "audio" in fields:
        found.update(audio_dim=fields["audio"][0], audio_frames=fields["audio"][1])
    clash = [f"model.{k}={getattr(model_cfg, k)} (latents: {v})" for k, v in found.items()
             if k in explicit and getattr(model_cfg, k) != v]
    if clash:
        raise WorldModelConfigError(f"--set {', '.join(clash)} does not fit latents {info['name']!r}; drop the "
                                    f"option (the shape is taken from the latents) or encode other latents")
    try:
        return replace(model_cfg, **{k: v for k, v in found.items() if k in LATENT_FIELDS})
    except ValueError as exc:
        raise WorldModelConfigError(f"the model does not fit latents {info['name']!r}: {exc}") from None


def check_stages(info: dict, stages) -> None:
    need = {"rgb"} | ({"audio"} if any(s > 1 for s in stages) else set())
    missing = sorted(need - set(info["fields"]))
    if missing:
        raise WorldModelConfigError(f"latents {info['name']!r} hold {sorted(info['fields'])}; stages {list(stages)} "
                                    f"need {missing} too; encode both modalities or train stage 1 only")


class Items(Dataset):
    """``ds[(epoch, idx)]``: the item of a :class:`LatentCDiTDataset` with the goals of ``epoch``."""

    def __init__(self, root, name: str, split: str, context: int, window: int, num_goals: int, seed: int,
                 cache: bool = True) -> None:
        self.data = LatentCDiTDataset(root, name, split=split, context=context, window=window, num_goals=num_goals,
                                      seed=seed, cache_trajectories=0)
        if cache:  # latents are small (~3 kB per frame): keep every trajectory once read
            self.data.cache_trajectories = len(self.data.data.trajectories)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        epoch, idx = key
        if self.data.epoch != epoch:
            self.data.set_epoch(epoch)
        item = self.data[int(idx)]
        return {k: item[k] for k in KEYS if k in item}


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


class StepKeys:
    """The ``(epoch, idx)`` keys of this rank's items per step ``start .. total - 1`` (a lazy batch sampler)."""

    def __init__(self, sampler) -> None:
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        s = self.sampler
        for step in range(s.start, s.total):
            yield [(step // s.per_epoch, i) for i in s.indices(step)]


def batches(items: Items, sampler, workers: int = 0):
    """Batches (collated items) of the sampler's steps ``start .. total - 1``, in order."""
    if workers == 0:
        for keys in StepKeys(sampler):
            yield collate([items[key] for key in keys])
        return
    yield from DataLoader(items, batch_sampler=StepKeys(sampler), num_workers=workers, collate_fn=collate)


def examples(batch: dict[str, torch.Tensor], spec, k: int, device) -> tuple[dict, dict]:
    """(x0 of the stage's target modalities, model kwargs) with the G goals flattened to b*G examples."""
    for name in spec.context:
        x = batch[f"context_{name}_latent"]
        if x.shape[1] != k:
            raise ContextLengthError(f"the data gives {x.shape[1]} context frames, the model needs k={k} "
                                     "(context_frames); build the dataset with context=k")
    g = batch["goal_offset"].shape[1]
    x0 = {}
    for name in spec.target:
        x0[name] = (batch["goal_reward"].reshape(-1, 1) if name == "reward"
                    else batch[f"goal_{name}_latent"].flatten(0, 1)).to(device)
    ctx = {n: batch[f"context_{n}_latent"].repeat_interleave(g, dim=0).to(device) for n in spec.context}
    kw = {"context": ctx, "offset": batch["goal_offset"].flatten().long().to(device),
          "action": batch["goal_action"].flatten(0, 1).float().to(device)}
    return x0, kw


def step_noise(seed: int, step: int, global_items: int, goals: int, shapes: dict, timesteps: int, rank: int,
               world: int, device) -> tuple[torch.Tensor, dict]:
    """(t, noise) of this rank's examples at ``step``: drawn for the whole global batch, rows of its items."""
    gen = torch.Generator().manual_seed((int(seed) * 2**32 + int(step)) % 2**63)
    t = torch.randint(0, timesteps, (global_items, goals), generator=gen)
    noise = {n: torch.randn((global_items, goals, *s), generator=gen) for n, s in shapes.items()}
    pick = lambda x: x[rank::world].flatten(0, 1).to(device)  # noqa: E731
    return pick(t), {n: pick(x) for n, x in noise.items()}


def val_keys(n_items: int, wanted: int) -> list[tuple[int, int]]:
    """``wanted`` val items spread evenly over the split, goals of epoch 0."""
    idx = np.unique(np.linspace(0, n_items - 1, min(wanted, n_items)).astype(np.int64))
    return [(0, int(i)) for i in idx]
