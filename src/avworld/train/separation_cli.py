"""``avworld separation train|eval``: the learning side of active separation (added to ``avworld separation``
by :mod:`avworld.tasks.separation_cli` through :func:`add_separation_commands`).

    avworld separation train passive --data DIR [--preset cpu|gpu] [--out DIR] [--set train.F=V] [run options]
    avworld separation train active  --passive RUN [--preset cpu|gpu] [--agent transformer|recurrent|none]
                                     [--out DIR] [--set ppo.F=V --set memory.F=V ...] [run options]
    avworld separation eval passive  --checkpoint RUN --data DIR [--split test] [--num N] [--out DIR]

No torch import at module level. See docs/separation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_separation_commands(ssub) -> None:
    from avworld.train.tokenizer_cli import add_run_options

    tr = ssub.add_parser("train", help="pretrain the passive separator or train the memory and motion policy")
    tsub = tr.add_subparsers(dest="separation_train_command", required=True)

    pa = tsub.add_parser("passive", help="pretrain f^P (Eq. 1) on the static dataset (resumable)",
                         description="Presets: cpu (halved U-Nets, two cores), gpu (the seed's widths). "
                                     "See docs/separation.md.")
    pa.add_argument("--data", required=True, help="static dataset (`avworld separation data make --out DIR`)")
    pa.add_argument("--preset", default="cpu", help="cpu (default) or gpu")
    pa.add_argument("--out", default=None, help="run directory (default runs/separation-passive-PRESET)")
    pa.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="repeatable override of a train.* field, e.g. --set train.steps=2000 "
                         "--set train.channels=(16,32,64,128,128)")
    add_run_options(pa)
    pa.set_defaults(func=_cmd_train_passive)

    ac = tsub.add_parser("active", help="train the memory and the motion policy alternately with PPO (f^P frozen)",
                         description="Presets: cpu (2 envs, small networks), gpu (the seed's sizes, 16 envs; "
                                     "DD-PPO under torchrun). See docs/separation.md.")
    ac.add_argument("--passive", required=True, help="run directory or checkpoint of `train passive` (frozen)")
    ac.add_argument("--preset", default="cpu", help="cpu (default) or gpu")
    ac.add_argument("--memory", default=None, choices=["transformer", "recurrent", "none"],
                    help="transformer (f^T, default), recurrent (Move2Hear's refiner) or none (no memory)")
    ac.add_argument("--out", default=None, help="run directory (default runs/separation-active-PRESET)")
    ac.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="repeatable override: ppo.*, active.*, memory.*, policy.*, env.* fields, e.g. "
                         "--set ppo.total_steps=4000 --set memory.refine_past=0 --set policy.zero_visual=true")
    add_run_options(ac)
    ac.set_defaults(func=_cmd_train_active)

    ev = ssub.add_parser("eval", help="evaluate separators")
    esub = ev.add_subparsers(dest="separation_eval_command", required=True)
    ep = esub.add_parser("passive", help="SI-SDR / STFT distance of f^P on a split of the static dataset, with CIs")
    ep.add_argument("--checkpoint", required=True, help="run directory or checkpoint of `train passive`")
    ep.add_argument("--data", required=True, help="static dataset directory")
    ep.add_argument("--split", default="test", choices=["train", "val", "test"], help="split (default test)")
    ep.add_argument("--num", type=int, default=None, help="first N examples (default all)")
    ep.add_argument("--out", default=None, help="write metrics.json here")
    ep.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ep.set_defaults(func=_cmd_eval_passive)


def _threads(n) -> None:
    if n is not None:
        import torch

        if n < 1:
            from avworld.train.separation_config import SeparationConfigError

            raise SeparationConfigError(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)


def _cmd_train_passive(args: argparse.Namespace) -> int:
    from avworld.train.separation_config import resolve_passive
    from avworld.train.separation_data import StaticSeparationData
    from avworld.train.separation_passive import train_passive

    cfg = resolve_passive(args.preset, args.overrides)
    _threads(args.threads)
    out = Path(args.out or f"runs/separation-passive-{args.preset}")
    train = StaticSeparationData(args.data, cfg.split)
    val = StaticSeparationData(args.data, cfg.val_split) if cfg.val_examples > 0 else None
    info = {"root": str(Path(args.data).resolve()), "fingerprint": train.data.manifest.get("fingerprint"),
            "train_examples": len(train), "val_examples": len(val) if val is not None else 0}
    summary = train_passive(cfg, train, val, out, resume=args.resume, progress=not args.no_progress,
                            tensorboard=not args.no_tensorboard, device=args.device, data_info=info,
                            time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    if summary["stopped"]:
        print(f"stopped ({summary['stopped']}) at step {summary['step']:,}, checkpoint {summary['checkpoint']}; "
              "rerun the same command with --resume to continue")
    print(json.dumps(summary, indent=1))
    return 130 if summary["stopped"] in ("SIGINT", "SIGTERM") else 0


def _cmd_eval_passive(args: argparse.Namespace) -> int:
    from avworld.eval.separation_metrics import aggregate
    from avworld.train.separation_data import StaticSeparationData
    from avworld.train.separation_passive import evaluate_passive, load_passive

    _threads(args.threads)
    model = load_passive(args.checkpoint)
    data = StaticSeparationData(args.data, args.split)
    per = evaluate_passive(model, data, args.num)
    result = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split,
              "num_examples": int(len(per["si_sdr"])), "aggregate": aggregate(per)}
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
    for k, v in result["aggregate"].items():
        print(f"{k:16s} {v['mean']:8.3f}  95% CI [{v['ci_low']:.3f}, {v['ci_high']:.3f}]  n={v['n']}")
    return 0


def _cmd_train_active(args: argparse.Namespace) -> int:
    from avworld.train.separation_active import train_active

    _threads(args.threads)
    overrides = list(args.overrides) + ([f"memory.kind={args.memory}"] if args.memory else [])
    out = Path(args.out or f"runs/separation-active-{args.preset}")
    summary = train_active(args.preset, overrides, args.passive, out, resume=args.resume,
                           progress=not args.no_progress, tensorboard=not args.no_tensorboard, device=args.device,
                           time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    print(json.dumps({k: v for k, v in summary.items() if isinstance(v, (int, float, str, type(None)))}, indent=1))
    return 130 if summary.get("stopped_by") == "signal" else 0
