"""Counterfactual evaluation of a world model (issue 18, item 6): "what if" the agent had acted otherwise?

For each evaluation context (the same items as the factual evaluation), a constant what-if action
sequence whose first action differs from the recorded one is chosen
(:func:`~avworld.data.counterfactual.choose_what_if`); the simulator renders what the agent would
have seen and heard (:func:`~avworld.data.counterfactual.render_what_if`: replay to t, then the
what-if actions), and the world model is asked the same question (the aggregated what-if actions
for fixed-step, the per-step ones for rollout). Rows of each table, all scored against the
simulator's what-if render at t + Δ:

* ``world model`` - the decoded prediction.
* ``copy-last`` - the context's last frame and clip.
* ``factual future`` - the recorded frame at t + Δ (what happened under the data's actions): a model
  that ignored the action and predicted the recorded future would score this.
* ``reward: ...`` - the training split's mean cumulative reward per Δ (and per action bucket of the
  what-if action), as in the factual tables.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avworld.data.counterfactual import WHAT_IFS, choose_what_if, render_what_if

ROWS = ("world model", "copy-last", "factual future", "reward: train mean per Δ",
        "reward: train mean per Δ and action")


def prediction_scores(p: dict, batch: dict, d: int, image_scores: Callable, sample_rate: int) -> dict:
    """Scores of one decoded prediction ``p`` (of :func:`~avworld.train.worldmodel_generate.generate`)
    against ``batch``'s frame and clip at t + ``d`` and its cumulative reward to t + ``d``."""
    from avworld.eval import worldmodel_eval as we

    s = {}
    if "frames" in p:
        s.update(image_scores(p["frames"], batch["frames"][:, d]))
    if "clips" in p:
        s.update(we.audio_scores(p["clips"], batch["clips"][:, d], sample_rate))
    if "reward" in p:
        s["reward_mse"] = (p["reward"].numpy() - batch["reward"][:, d - 1]) ** 2
    return s


def what_if_batch(lat, pix, items, context: int, horizon: int, worlds: dict) -> dict[str, np.ndarray]:
    """Like :func:`~avworld.train.worldmodel_generate.item_batch`, but ``frames``, ``clips``, ``action``,
    ``step_action`` and ``reward`` are the simulator's what-if render; ``factual_frames`` /
    ``factual_clips`` are the recorded t .. t + horizon; ``what_if`` names the sequence per item.
    ``worlds`` caches one :class:`~avworld.sim.world.SharedWorld` per scene across calls."""
    from avworld.geometry.spec import load_scene_spec
    from avworld.sim.world import SharedWorld

    cfg = pix.config.trajectory
    out: dict[str, list] = {}
    for i, t in items:
        scene = pix.info(i)["scene"]
        if scene not in worlds:
            worlds[scene] = SharedWorld(load_scene_spec(scene), cfg.sim_config())
        stored = pix.small(i)["action"][t:t + horizon]
        name = choose_what_if(stored)
        r = render_what_if(pix, i, t, [int(WHAT_IFS[name])] * horizon, world=worlds[scene])
        rec = {"frames": r["frames"], "clips": r["clips"], "action": r["action"], "step_action": r["step_action"],
               "reward": r["reward"], "what_if": name,
               "factual_frames": pix.frames(i, "rgb", slice(t, t + horizon + 1)),
               "factual_clips": pix.frames(i, "audio", slice(t, t + horizon + 1)).astype(np.float32)}
        for m in lat.fields:
            rec[f"context_{m}"] = lat.frames(i, m, slice(t - context + 1, t + 1)).astype(np.float32)
        for k, v in rec.items():
            out.setdefault(k, []).append(v)
    return {k: np.stack(v) if k != "what_if" else np.array(v) for k, v in out.items()}


def counterfactual_scores(model, tokenizers, lat, pix, items, deltas, modes, base: dict, *, steps: int = 10,
                          sampler: str = "ddim", seed: int = 0, batch_size: int = 32,
                          progress: Callable[[int, int], None] | None = None,
                          image_scores: Callable | None = None) -> tuple[dict, dict]:
    """``({(mode, Δ, row): {metric: [arrays]}}, {what_if name: count})`` for the what-if items; ``mode``
    is ``"what-if fixed"`` / ``"what-if rollout"``. ``base`` is
    :func:`~avworld.eval.worldmodel_eval.reward_baselines` of the training split; ``image_scores``
    (default :func:`~avworld.eval.worldmodel_eval.image_scores`) scores frames (e.g. with LPIPS added)."""
    from avworld.eval import worldmodel_eval as we
    from avworld.train.worldmodel_generate import generate

    img = image_scores or we.image_scores

    k, horizon = model.config.context_frames, max(deltas)
    sr = tokenizers.sample_rate
    scores: dict = {}
    counts: dict[str, int] = {}
    worlds: dict = {}

    def add(key, new):
        for m, v in new.items():
            scores.setdefault(key, {}).setdefault(m, []).append(np.asarray(v, np.float64))

    for a in range(0, len(items), batch_size):
        batch = what_if_batch(lat, pix, items[a:a + batch_size], k, horizon, worlds)
        for name in batch["what_if"]:
            counts[str(name)] = counts.get(str(name), 0) + 1
        for d in deltas:
            true_f, true_c = batch["frames"][:, d], batch["clips"][:, d]
            copy = {**img(batch["frames"][:, 0], true_f),
                    **we.audio_scores(batch["clips"][:, 0], true_c, sr)}
            fact = {**img(batch["factual_frames"][:, d], true_f),
                    **we.audio_scores(batch["factual_clips"][:, d], true_c, sr)}
            mean, per = we.reward_baseline_predictions(base, d, batch["action"][:, d - 1])
            true_r = batch["reward"][:, d - 1]
            for mode in modes:
                key = f"what-if {mode}"
                add((key, d, "copy-last"), copy)
                add((key, d, "factual future"), fact)
                add((key, d, "reward: train mean per Δ"), {"reward_mse": (mean - true_r) ** 2})
                add((key, d, "reward: train mean per Δ and action"), {"reward_mse": (per - true_r) ** 2})
        for mode in modes:
            preds = generate(model, batch, mode, deltas, sampler=sampler, steps=steps, seed=seed + a,
                             tokenizers=tokenizers)
            for d, p in preds.items():
                add((f"what-if {mode}", d, "world model"), prediction_scores(p, batch, d, img, sr))
        if progress is not None:
            progress(min(a + batch_size, len(items)), len(items))
    return scores, counts
