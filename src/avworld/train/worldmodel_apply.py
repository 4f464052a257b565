"""``avworld worldmodel generate`` and ``avworld worldmodel eval``: apply a trained world model to a dataset.

* generate: fixed-step or rollout predictions for a few test contexts, decoded with the
  tokenizers the latents were made with; a side-by-side mp4 with sound per item (ground truth |
  prediction, played twice: first with the true sound, then with the predicted sound; the
  panel whose sound plays is framed) and an HTML page.
* eval: the metric tables of :mod:`avworld.eval.worldmodel_eval` per mode and Δ, with the
  copy-last, tokenizer round-trip and training-split reward baselines; ``metrics.json``, one CSV
  per table and ``index.html``.

``eval --counterfactual`` adds the "what if" tables of
:mod:`avworld.train.worldmodel_counterfactual`: the model and the simulator asked the same action
that the data did not take.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _common(p, out_default: str) -> None:
    p.add_argument("--checkpoint", required=True, help="world-model run directory or .pt (`avworld worldmodel train`)")
    p.add_argument("--data", required=True, help="AVW dataset directory with the latents")
    p.add_argument("--latents", required=True, metavar="NAME", help="latents made by the checkpoint's tokenizers")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="default test")
    p.add_argument("--image", default="image", help="image autoencoder the latents were made with (default: shipped)")
    p.add_argument("--audio", default="audio", help="audio codec the latents were made with (default: shipped)")
    p.add_argument("--steps", type=int, default=10, help="respaced denoising steps (default 10)")
    p.add_argument("--sampler", default="ddim", choices=("ddim", "ddpm"), help="default ddim (eta 0)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="contexts per sampling batch (default 32)")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default torch's)")
    p.add_argument("--out", default=out_default, help=f"output folder (default {out_default})")


def add_apply_commands(wsub) -> None:
    ge = wsub.add_parser("generate", help="side-by-side videos with sound (truth | prediction) + an HTML page")
    _common(ge, "runs/worldmodel-generate")
    ge.add_argument("--mode", default="rollout", choices=("rollout", "fixed"),
                    help="rollout (one frame at a time, fed back) or fixed (each Δ from the context); default rollout")
    ge.add_argument("--horizon", type=int, default=16, help="frames ahead, 1..16 (default 16)")
    ge.add_argument("--items", type=int, default=4, help="contexts shown (default 4, spread over the split)")
    ge.set_defaults(func=_cmd_generate)

    ev = wsub.add_parser("eval", help="PSNR/SSIM/LSD/spectral SSIM/ILD/ITD/reward MSE per Δ and mode vs baselines",
                         description="Per Δ and mode: the world model against copy-last, the tokenizer round "
                         "trip and the training split's reward means. --counterfactual adds 'what if' tables: "
                         "the simulator renders a constant action sequence the data did not take (replaying "
                         "the trajectory to t first) and the model is asked the same.")
    _common(ev, "runs/worldmodel-eval")
    ev.add_argument("--deltas", default="1,2,4,8,16", help="offsets in frames (default 1,2,4,8,16)")
    ev.add_argument("--modes", default="fixed,rollout", help="fixed, rollout or both (default)")
    ev.add_argument("--max-items", type=int, default=0, help="evaluate N contexts spread over the split (0 = all)")
    ev.add_argument("--counterfactual", action="store_true",
                    help="also score 'what if' actions against the simulator's render (re-simulates each item)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    ev.add_argument("--lpips-weights", default=None, metavar="PATH[,PATH]",
                    help="LPIPS-alex from local files: torchvision's AlexNet state dict and LPIPS v0.1 alex.pth, "
                         "as BACKBONE,LINEAR or one merged file (nothing is downloaded; not computed without)")
    for name in ("dreamsim", "fid", "fad"):
        ev.add_argument(f"--{name}-weights", default=None, metavar="PATH",
                        help=f"{name.upper()}: not implemented yet (a given file is refused with a clear error; "
                             "nothing is downloaded)")
    ev.set_defaults(func=_cmd_eval)


def _setup(args):
    from avworld.train.run_options import set_threads
    from avworld.train.worldmodel_checkpoint import load_worldmodel
    from avworld.train.worldmodel_config import WorldModelConfigError
    from avworld.train.worldmodel_generate import check_latents, check_tokenizers, load_tokenizers

    set_threads(args.threads, WorldModelConfigError)
    if args.batch_size < 1 or args.steps < 1:
        raise WorldModelConfigError(f"--batch-size and --steps must be >= 1, got {args.batch_size}, {args.steps}")
    model = load_worldmodel(args.checkpoint)
    check_latents(model, args.data, args.latents)
    tok = load_tokenizers(args.image, args.audio)
    check_tokenizers(model, tok)
    return model, tok


def _ints(text: str, what: str) -> list[int]:
    from avworld.train.worldmodel_config import WorldModelConfigError

    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise WorldModelConfigError(f"{what} must be comma-separated integers, got {text!r}") from None


def evaluate(model, tokenizers, root, name: str, split: str = "test", deltas=(1, 2, 4, 8, 16),
             modes=("fixed", "rollout"), steps: int = 10, sampler: str = "ddim", max_items: int = 0, seed: int = 0,
             batch_size: int = 32, perceptual: dict | None = None, counterfactual: bool = False,
             progress=None) -> dict:
    """The results dict of :mod:`avworld.eval.worldmodel_eval` (tables, frechet, notes); with
    ``counterfactual`` also the ``what-if <mode>`` tables (:mod:`avworld.train.worldmodel_counterfactual`).
    ``progress(done, total)`` is called after each batch."""
    from avworld.data.latent_reader import AVWLatents
    from avworld.data.reader import AVWDataset
    from avworld.eval import worldmodel_eval as we
    from avworld.train.worldmodel_counterfactual import prediction_scores
    from avworld.train.worldmodel_generate import MODES, GenerationError, decode_into, eval_items, generate, item_batch

    notes_p = we.check_perceptual_weights(perceptual or {})
    lpips_net = None
    if (perceptual or {}).get("lpips"):
        from avworld.eval.lpips import load_lpips

        lpips_net = load_lpips(perceptual["lpips"])

    def img(pred, true) -> dict:
        s = we.image_scores(pred, true)
        if lpips_net is not None:
            from avworld.eval.lpips import lpips_distance

            s["lpips"] = lpips_distance(lpips_net, pred, true)
        return s
    deltas = sorted({int(d) for d in deltas})
    if set(modes) - set(MODES) or not modes:
        raise GenerationError(f"modes must be among {MODES}, got {list(modes)}")
    k, horizon = model.config.context_frames, max(deltas)
    lat, pix = AVWLatents(root, name, split=split), AVWDataset(root, split=split)
    items = eval_items(lat, k, horizon, max_items)
    train = AVWDataset(root, split="train")
    base = we.reward_baselines(((s["reward"], s["pose"]) for s in map(train.small, range(len(train.trajectories)))),
                               deltas)
    scores: dict = {}  # (mode, d, row) -> metric -> list
    feats: dict = {}  # (mode, d, who, modality) -> list of latents

    def add(key, new):
        for m, v in new.items():
            scores.setdefault(key, {}).setdefault(m, []).append(np.asarray(v, np.float64))

    for a in range(0, len(items), batch_size):
        batch = item_batch(lat, pix, items[a:a + batch_size], k, horizon)
        sr = tokenizers.sample_rate
        for d in deltas:
            true_f, true_c = batch["frames"][:, d], batch["clips"][:, d]
            rt = decode_into({m: batch[f"true_{m}"][:, d - 1] for m in ("rgb", "audio") if f"true_{m}" in batch},
                             tokenizers)
            copy = {**img(batch["frames"][:, 0], true_f),
                    **we.audio_scores(batch["clips"][:, 0], true_c, sr)}
            trip = {**(img(rt["frames"], true_f) if "frames" in rt else {}),
                    **(we.audio_scores(rt["clips"], true_c, sr) if "clips" in rt else {})}
            mean, per = we.reward_baseline_predictions(base, d, batch["action"][:, d - 1])
            true_r = batch["reward"][:, d - 1]
            for mode in modes:
                add((mode, d, "copy-last"), copy)
                add((mode, d, "tokenizer round-trip"), trip)
                add((mode, d, "reward: train mean per Δ"), {"reward_mse": (mean - true_r) ** 2})
                add((mode, d, "reward: train mean per Δ and action"), {"reward_mse": (per - true_r) ** 2})
        for mode in modes:
            preds = generate(model, batch, mode, deltas, sampler=sampler, steps=steps, seed=seed + a,
                             tokenizers=tokenizers)
            for d, p in preds.items():
                add((mode, d, "world model"), prediction_scores(p, batch, d, img, tokenizers.sample_rate))
                for m in ("rgb", "audio"):
                    if m in p:
                        feats.setdefault((mode, d, "world model", m), []).append(p[m].numpy())
                        feats.setdefault((mode, d, "copy-last", m), []).append(batch[f"context_{m}"][:, -1])
                        feats.setdefault((mode, d, "true", m), []).append(batch[f"true_{m}"][:, d - 1])
        if progress is not None:
            progress(min(a + batch_size, len(items)), len(items) * (2 if counterfactual else 1))
    what_ifs = {}
    if counterfactual:
        from avworld.train.worldmodel_counterfactual import ROWS, counterfactual_scores

        more, what_ifs = counterfactual_scores(
            model, tokenizers, lat, pix, items, deltas, modes, base, steps=steps, sampler=sampler, seed=seed,
            batch_size=batch_size,
            progress=None if progress is None else lambda done, n: progress(n + done, 2 * n), image_scores=img)
        scores.update(more)
    order = ["world model", "copy-last", "tokenizer round-trip", "reward: train mean per Δ",
             "reward: train mean per Δ and action"]
    tables = {mode: {d: {r: we.row({m: np.concatenate(v) for m, v in scores[(mode, d, r)].items()}, seed=seed)
                         for r in order if (mode, d, r) in scores} for d in deltas} for mode in modes}
    if counterfactual:
        tables.update({f"what-if {mode}": {d: {r: we.row({m: np.concatenate(v) for m, v in
                                                          scores[(f"what-if {mode}", d, r)].items()}, seed=seed)
                                               for r in ROWS if (f"what-if {mode}", d, r) in scores}
                                           for d in deltas} for mode in modes})
    frechet = {mode: {d: {} for d in deltas} for mode in modes}
    for (mode, d, who, m), v in feats.items():
        if who != "true":
            true = we.fd_features(m, np.concatenate(feats[(mode, d, "true", m)]))
            frechet[mode][d][f"{m} {who}"] = we.frechet_distance(we.fd_features(m, np.concatenate(v)), true)
    notes = [f"checkpoint {model.checkpoint_info.get('path')} (stage {model.stage}, step "
             f"{model.checkpoint_info.get('step')}); data {root}, latents {name!r}, split {split}, {len(items)} "
             f"contexts (k={k}, frames t+1..t+{horizon} inside the trajectory); sampler {sampler}, {steps} steps, "
             f"seed {seed}",
             "reward_mse: squared error of the cumulative reward from t to t+Δ (rollout: the sum of the per-step "
             "predictions); reward baselines are means over the training split",
             f"frechet: {we.FD_LABEL}",
             ("what-if tables: each context's constant what-if sequence (first action differs from the data's; "
              f"counts {what_ifs}) rendered by the simulator after replaying the trajectory to t; every row is "
              "scored against that render; 'factual future' is the recorded frame at t+Δ"
              if counterfactual else "Counterfactual (what-if) tables not computed (pass --counterfactual).")]
    return {"tables": tables, "frechet": frechet, "perceptual": notes_p, "notes": notes,
            "config": {"deltas": deltas, "modes": list(modes), "steps": steps, "sampler": sampler, "seed": seed,
                       "items": len(items), "split": split, "latents": name, "counterfactual": bool(counterfactual),
            "what_ifs": what_ifs}}


def _cmd_eval(args: argparse.Namespace) -> int:
    from avworld.eval import worldmodel_eval as we

    perceptual = {n: getattr(args, f"{n}_weights") for n in ("lpips", "dreamsim", "fid", "fad")}
    we.check_perceptual_weights(perceptual)  # before any long work
    model, tok = _setup(args)
    from rich.progress import Progress

    with Progress(disable=args.no_progress) as bar:
        task = bar.add_task("world-model eval", total=None)
        res = evaluate(model, tok, args.data, args.latents, args.split, _ints(args.deltas, "--deltas"),
                       [m.strip() for m in args.modes.split(",") if m.strip()], args.steps, args.sampler,
                       args.max_items, args.seed, args.batch_size, perceptual, args.counterfactual,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    paths = we.write_results(args.out, res)
    for mode, per in res["tables"].items():
        for d, table in per.items():
            print(f"{mode}, Δ = {d}:\n{we.format_table(table)}")
            fd = {k: round(v, 3) for k, v in res["frechet"].get(mode, {}).get(d, {}).items()}
            if fd:
                print(f"  {we.FD_LABEL}: {fd}")
    print(f"report: {paths['html']}")
    return 0


def side_by_side(true, pred, scale: int = 4, gap: int = 4) -> np.ndarray:
    """(T, H, W, 3) uint8 pairs -> (T, sH, 2 sW + gap, 3): truth left, prediction right."""
    t, h, w, _ = true.shape
    up = lambda x: np.repeat(np.repeat(x, scale, axis=1), scale, axis=2)  # noqa: E731
    mid = np.full((t, h * scale, gap, 3), 255, np.uint8)
    return np.concatenate([up(true), mid, up(pred)], axis=2)


def _frame(x: np.ndarray, left: bool, gap: int = 4) -> np.ndarray:
    """Mark the panel whose sound plays with a yellow border."""
    x = x.copy()
    half = (x.shape[2] - gap) // 2
    a, b = (0, half) if left else (half + gap, x.shape[2])
    for sl in ((slice(None), slice(0, 3), slice(a, b)), (slice(None), slice(-3, None), slice(a, b)),
               (slice(None), slice(None), slice(a, a + 3)), (slice(None), slice(None), slice(b - 3, b))):
        x[sl] = (255, 210, 0)
    return x


def _cmd_generate(args: argparse.Namespace) -> int:
    from avworld.data.latent_reader import AVWLatents
    from avworld.data.reader import AVWDataset
    from avworld.models.worldmodel.generate import MAX_DELTA
    from avworld.train.worldmodel_config import WorldModelConfigError
    from avworld.train.worldmodel_generate import eval_items, generate, item_batch
    from avworld.viz.html import HtmlReport
    from avworld.viz.video import write_video_with_audio

    if not 1 <= args.horizon <= MAX_DELTA or args.items < 1:
        raise WorldModelConfigError(f"--horizon must be in 1..{MAX_DELTA} and --items >= 1, got {args.horizon}, "
                                    f"{args.items}")
    model, tok = _setup(args)
    k = model.config.context_frames
    lat, pix = AVWLatents(args.data, args.latents, split=args.split), AVWDataset(args.data, split=args.split)
    items = eval_items(lat, k, args.horizon, args.items)
    batch = item_batch(lat, pix, items, k, args.horizon)
    deltas = list(range(1, args.horizon + 1))
    preds = generate(model, batch, args.mode, deltas, sampler=args.sampler, steps=args.steps, seed=args.seed,
                     tokenizers=tok)
    out = Path(args.out)
    page = HtmlReport(f"World-model {args.mode} predictions")
    page.paragraph(f"checkpoint {model.checkpoint_info.get('path')}; {args.split} split of {args.data}; "
                   f"{args.sampler}, {args.steps} steps, seed {args.seed}. Left: ground truth, right: prediction, "
                   f"frames t+1..t+{args.horizon}. Played twice: first with the true sound, then with the "
                   "predicted sound (the framed panel is the one you hear).")
    fps = 1.0 / pix.step_s
    written = []
    for j, (i, t) in enumerate(items):
        true = batch["frames"][j, 1:]
        pred = np.stack([preds[d]["frames"][j] for d in deltas]) if "frames" in preds[1] else np.zeros_like(true)
        both = side_by_side(true, pred)
        true_audio = np.concatenate(list(batch["clips"][j, 1:]), axis=1)
        frames, audio = [_frame(both, True)], [true_audio]
        if "clips" in preds[1]:
            frames.append(_frame(both, False))
            audio.append(np.concatenate([preds[d]["clips"][j] for d in deltas], axis=1))
        name = f"item{j:02d}_traj{i}_t{t}.mp4"
        path = write_video_with_audio(out / name, np.concatenate(frames), np.concatenate(audio, axis=1),
                                      tok.sample_rate, fps=fps)
        written.append(path)
        cap = f"trajectory {i}, t = {t}"
        if "reward" in preds[args.horizon]:
            cap += (f"; reward t..t+{args.horizon}: true {batch['reward'][j, -1]:.3f}, predicted "
                    f"{float(preds[args.horizon]['reward'][j]):.3f}")
        page.video(name, cap, width=both.shape[2])
    html = page.write(out / "index.html")
    print(json.dumps({"videos": [str(p) for p in written], "page": str(html)}))
    return 0
