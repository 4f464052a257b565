"""``avworld worldmodel train``: train the audio-visual world model (AV-CDiT) on encoded latents.

    avworld worldmodel train --data DIR --latents NAME [--preset cpu-tiny|S|B] [--stage S | --stages 1,2,3]
                             [--out DIR] [--resume] [--init CKPT] [--set KEY=VALUE] [--time-limit MINUTES]
                             [--threads N] [--device cpu|cuda] [--no-bf16] [--no-progress] [--no-tensorboard]
    avworld worldmodel generate --checkpoint RUN --data DIR --latents NAME [--mode rollout|fixed] ...
    avworld worldmodel eval     --checkpoint RUN --data DIR --latents NAME [--deltas 1,2,4,8,16] ...

No torch import at module level (``avworld --help`` stays fast). Multi-GPU: launch under
``torchrun`` (docs/worldmodel.md "Training").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avworld.train.run_options import add_run_options, check_new_run, set_threads


def add_commands(sub) -> None:
    wm = sub.add_parser("worldmodel",
                        help="train, sample and evaluate the audio-visual world model (AV-CDiT) on tokenizer latents")
    wsub = wm.add_subparsers(dest="worldmodel_command", required=True)
    tr = wsub.add_parser(
        "train", help="train the stages of the AV-CDiT (resumable; DDP under torchrun)",
        description="Stages (seed 001 §4.2): 1 vision only; 2 audio only (audio expert, adaptor, head and the "
                    "reward token train, the rest is frozen); 3 joint. --stages 1,2,3 runs them in sequence, each "
                    "stage starting from the previous stage's EMA weights. Presets: cpu-tiny (two cores, ~1 h for "
                    "the three stages), S and B (NWM sizes, GPUs). Ablations: --set model.experts=false (w/o "
                    "modality experts), --stages 3 (w/o stagewise training). See docs/worldmodel.md.")
    tr.add_argument("--data", required=True, help="AVW dataset directory with encoded latents")
    tr.add_argument("--latents", required=True, metavar="NAME",
                    help="the latents' name (`avworld tokenizer encode --name NAME`)")
    tr.add_argument("--preset", default="cpu-tiny", help="cpu-tiny (default), S or B")
    group = tr.add_mutually_exclusive_group()
    group.add_argument("--stage", type=int, choices=(1, 2, 3), default=None, help="train one stage")
    group.add_argument("--stages", default=None, help="stages in sequence, e.g. 1,2,3 (the default)")
    tr.add_argument("--out", default=None, help="run directory (default runs/worldmodel-PRESET)")
    tr.add_argument("--init", default=None, metavar="CKPT",
                    help="start from another run's EMA weights (e.g. --stage 2 --init RUN1/stages/stage1.pt)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="repeatable override of a model.* or train.* field, e.g. --set train.steps_per_stage="
                         "(500,500,500) --set train.batch_size=8 --set model.experts=false")
    add_run_options(tr, bf16=True)
    tr.set_defaults(func=_cmd_train)

    ex = wsub.add_parser("export", help="a small shippable copy of a run (EMA weights, float16)",
                         description="Writes the EMA weights (float16 unless --float32), configs, stage, step and "
                                     "the latents' tokenizer identity: it generates and evaluates like the run but "
                                     "cannot be resumed.")
    ex.add_argument("--checkpoint", required=True, help="run directory or .pt (`avworld worldmodel train`)")
    ex.add_argument("--out", required=True, help="the .pt file to write")
    ex.add_argument("--float32", action="store_true", help="keep float32 weights (twice the size)")
    ex.set_defaults(func=_cmd_export)

    from avworld.train.worldmodel_apply import add_apply_commands

    add_apply_commands(wsub)


def _cmd_train(args: argparse.Namespace) -> int:
    from avworld.train.worldmodel import train_worldmodel
    from avworld.train.worldmodel_config import WorldModelConfigError, parse_stages, resolve
    from avworld.train.worldmodel_data import check_stages, fit_latents, latents_info

    model_cfg, cfg, explicit = resolve(args.preset, args.overrides)
    stages = parse_stages(args.stage if args.stage is not None else (args.stages or "1,2,3"))
    info = latents_info(args.data, args.latents)
    check_stages(info, stages)
    model_cfg = fit_latents(model_cfg, info, explicit)
    set_threads(args.threads, WorldModelConfigError)
    out = Path(args.out or f"runs/worldmodel-{args.preset}")
    check_new_run(out, args.resume, WorldModelConfigError)
    if args.resume and args.init:
        raise WorldModelConfigError("--init starts a new run; a resumed run continues from its own checkpoint")
    if stages[0] > 1 and not args.resume and not args.init:
        print(f"note: stage {stages[0]} starts from freshly initialised weights; to continue a stagewise run pass "
              f"--init RUN/stages/stage{stages[0] - 1}.pt (joint from scratch, --stages 3, is the 'w/o stagewise "
              "training' ablation)")
    summary = train_worldmodel(model_cfg, cfg, args.data, args.latents, out, stages=stages, resume=args.resume,
                               init=args.init, progress=not args.no_progress, tensorboard=not args.no_tensorboard,
                               time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit,
                               device=args.device, bf16=False if args.no_bf16 else None)
    if summary.get("stopped"):
        if summary["stopped"] != "SIGINT":  # after Ctrl-C the trainer's one line said it all
            print(f"stopped ({summary['stopped']}) at step {summary['step']:,} of {summary['total_steps']:,} (stage "
                  f"{summary['stage']}), checkpoint {summary['checkpoint']}; rerun the same command with --resume to "
                  "continue")
        return 130 if summary["stopped"] in ("SIGINT", "SIGTERM") else 0
    m = summary.get("metrics") or {}
    print(json.dumps({"stages": summary["stages"], "step": summary["step"], "val_loss": m.get("val/loss"),
                      "checkpoint": summary["checkpoint"], "seconds": summary["seconds"]}))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from avworld.train.worldmodel_checkpoint import export_worldmodel

    path = export_worldmodel(args.checkpoint, args.out, half=not args.float32)
    print(json.dumps({"exported": str(path), "bytes": path.stat().st_size}))
    return 0
