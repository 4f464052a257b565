"""``avworld tokenizer ...``: train, encode datasets with, evaluate and export the tokenizers.

    avworld tokenizer train image|audio --data DIR --preset cpu|gpu [--out DIR] [--resume] [--set KEY=VALUE]
                                        [--time-limit MINUTES] [--threads N] [--device cpu|cuda]
    avworld tokenizer encode --data DIR --image CKPT --audio CKPT [--name NAME] [--split S]
    avworld tokenizer eval   --data DIR --image CKPT --audio CKPT [--split test] [--out DIR]
    avworld tokenizer export --checkpoint RUN --out FILE [--float32]

No torch import at module level (``avworld --help`` stays fast). Multi-GPU: launch
``avworld tokenizer train`` under ``torchrun`` (docs/tokenizers.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avworld.train.run_options import add_run_options, check_new_run, set_threads

__all__ = ["add_commands", "add_run_options"]  # add_run_options: re-exported for older imports

KINDS = ("image", "audio")


def add_commands(sub) -> None:
    tok = sub.add_parser("tokenizer", help="train, apply and evaluate the image autoencoder and the audio codec")
    tsub = tok.add_subparsers(dest="tokenizer_command", required=True)

    tr = tsub.add_parser("train", help="train a tokenizer on an AVW dataset (resumable; DDP under torchrun)",
                         description="Presets: cpu (two cores, under an hour, 64x64 frames / 0.15 s clips); gpu "
                                     "(full size, hours on one GPU). See docs/tokenizers.md.")
    tr.add_argument("kind", choices=KINDS, help="image (KL autoencoder) or audio (binaural SEANet codec)")
    tr.add_argument("--data", required=True, help="AVW dataset directory (`avworld data make --out DIR`)")
    tr.add_argument("--preset", default="cpu", help="cpu (default) or gpu")
    tr.add_argument("--out", default=None, help="run directory (default runs/tokenizer-KIND-PRESET)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="repeatable override of a model.* or train.* field, e.g. --set train.steps=2000 "
                         "--set model.base_width=16 --set model.loss.kl=1e-5")
    add_run_options(tr)
    tr.set_defaults(func=_cmd_train)

    ex = tsub.add_parser("export", help="write a small copy of a tokenizer (EMA weights, float16) to ship or share")
    ex.add_argument("--checkpoint", required=True, help="a run directory or a .pt file of `avworld tokenizer train`")
    ex.add_argument("--out", required=True, help="the file to write (.pt)")
    ex.add_argument("--float32", action="store_true", help="keep float32 weights (default: float16)")
    ex.set_defaults(func=_cmd_export)

    _encode_eval = _module_exists("avworld.train.tokenizer_apply")
    if _encode_eval:
        from avworld.train.tokenizer_apply import add_apply_commands

        add_apply_commands(tsub)


def _module_exists(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _data_info(root: str) -> dict:
    from avworld.data.manifest import load_manifest

    m = load_manifest(Path(root))
    cfg = m.get("config", {})
    return {"root": str(Path(root).resolve()), "name": m.get("name"), "config_hash": m.get("config_hash"),
            "config": cfg, "frames": {s: sum(r.get("stats", {}).get("frames", 0) for r in m.get("shards", [])
                                             if r.get("split") == s) for s in ("train", "val", "test")}}


def _cmd_train(args: argparse.Namespace) -> int:
    from avworld.train.tokenizer import train_tokenizer
    from avworld.train.tokenizer_config import TokenizerConfigError, resolve

    model_cfg, cfg = resolve(args.kind, args.preset, args.overrides)
    set_threads(args.threads, TokenizerConfigError)
    out = Path(args.out or f"runs/tokenizer-{args.kind}-{args.preset}")
    check_new_run(out, args.resume, TokenizerConfigError)
    summary = train_tokenizer(args.kind, model_cfg, cfg, args.data, out, resume=args.resume,
                              progress=not args.no_progress, tensorboard=not args.no_tensorboard,
                              time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit,
                              device=args.device, data_info=_data_info(args.data))
    if summary.get("stopped"):
        if summary["stopped"] != "SIGINT":  # after Ctrl-C the trainer's one line said it all
            print(f"stopped ({summary['stopped']}) at step {summary['step']:,}, checkpoint {summary['checkpoint']}; "
                  "rerun the same command with --resume to continue")
        return 130 if summary["stopped"] in ("SIGINT", "SIGTERM") else 0
    print(json.dumps({k: summary[k] for k in ("kind", "step", "latent_scale", "checkpoint", "seconds")}))
    if summary.get("metrics"):
        print(json.dumps(summary["metrics"], indent=1))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from avworld.train.tokenizer_checkpoint import export_tokenizer

    path = export_tokenizer(args.checkpoint, args.out, half=not args.float32)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0
