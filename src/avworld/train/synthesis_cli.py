"""``avworld synthesis data|train|eval``: π-AVAS physics-integrated binaural synthesis.

    avworld synthesis data  --out DIR [--envs N] [--poses N] [--clip-s S] [--seed S] [--set sim.FIELD=V]
    avworld synthesis train --data DIR --out RUN [--preset cpu|cpu-wave|gpu] [--start refine|neural] [--set KEY=VALUE]
                            [--resume] [--time-limit MINUTES] [--threads N] [--device cpu|cuda]
    avworld synthesis eval  --data DIR --refiner RUN [--neural RUN] --out DIR [--solver euler] [--nfe 4]

No torch import at module level (``avworld --help`` stays fast). See docs/synthesis.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avworld.train.run_options import add_run_options, set_threads


def add_commands(sub) -> None:
    sp = sub.add_parser("synthesis", help="π-AVAS: simulate binaural audio and refine it with flow matching")
    ss = sp.add_subparsers(dest="synthesis_command", required=True)

    d = ss.add_parser("data", help="generate x_tx / x_sim / x_rx from procedural houses (seeded, resumable)",
                      description="Per environment (a procedural house) and source placement ('video'): source "
                                  "audio x_tx from the sound bank, listener poses, x_rx (the full engine on the "
                                  "true furnished scene with KEMAR HRTF and microphone noise: a stand-in for "
                                  "recordings) and x_sim (the cheap physics: the room shells, one guessed "
                                  "material, a spherical head, first-order image sources). Re-running with the "
                                  "same options continues where it stopped.")
    d.add_argument("--out", required=True, help="data folder")
    d.add_argument("--envs", type=int, default=8, help="environments (houses), default 8")
    d.add_argument("--rooms", type=int, default=6, help="rooms per house, default 6")
    d.add_argument("--placements", type=int, default=3,
                   help="source placements per house (the first trains, the rest are held out), default 3")
    d.add_argument("--poses", type=int, default=48, help="listener poses per placement, default 48")
    d.add_argument("--clip-s", type=float, default=0.5, help="clip length in seconds, default 0.5")
    d.add_argument("--seed", type=int, default=0, help="seed of placements, poses, sounds and noise")
    d.add_argument("--house-seed", type=int, default=0, help="seed of the first house (house i: seed + i)")
    d.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", dest="overrides",
                   help="repeatable override of a SynthesisDataConfig field, sim.* for x_sim's physics, e.g. "
                        "--set sim.ism_order=2 --set sim.material= --set mic_snr_db=30")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_cmd_data)

    tr = ss.add_parser("train", help="train the flow-matching refiner (Algorithm 1; resumable)",
                       description="Trains u_t(psi, x_tx, p) on the training placements. --start neural trains the "
                                   "pure neural baseline (the same network and flow started from zeros instead of "
                                   "x_sim). Presets: cpu (the refiner on linear STFT magnitudes, 64 channels, whole "
                                   "clips, per-bin 2x2 ear matrices started at the least-squares fit of x_sim to "
                                   "x_rx; ~0.1-0.5 s/step on one core), cpu-wave (the waveform refiner, 16 channels, "
                                   "0.25 s crops), gpu (the waveform refiner, 64 channels, whole clips). See "
                                   "docs/synthesis.md.")
    tr.add_argument("--data", required=True, help="data folder of `avworld synthesis data`")
    tr.add_argument("--val-data", default=None, metavar="DIR",
                    help="validation folder: other placements of the same houses (`avworld synthesis data --seed 1 "
                         "--placements 2`); its held-out clips' MAG is logged at step 0 and every periodic "
                         "checkpoint and the best weights are kept in OUT/best.pt")
    tr.add_argument("--val-examples", type=int, default=96, metavar="N",
                    help="validation clips scored per checkpoint (default 96)")
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument("--preset", default="cpu", help="cpu (default), cpu-wave or gpu")
    tr.add_argument("--start", choices=("refine", "neural"), default="refine",
                    help="refine: flow from x_sim (π-AVAS); neural: from zeros (the baseline)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="repeatable override of a model.* or train.* field, e.g. --set train.steps=500")
    add_run_options(tr)
    tr.set_defaults(func=_cmd_train)

    from avworld.eval.synthesis_eval import add_eval_command

    add_eval_command(ss)


def _data_config(args):
    import dataclasses

    from avworld.data.synthesis import SynthesisDataConfig
    from avworld.data.synthesis_scenes import SimPhysics, SynthesisDataError
    from avworld.train.tokenizer_config import parse_value

    cfg = SynthesisDataConfig(num_envs=args.envs, num_rooms=args.rooms, placements=args.placements,
                              poses_per_placement=args.poses, clip_s=args.clip_s, seed=args.seed,
                              house_seed=args.house_seed)
    sim = cfg.sim
    for item in args.overrides:
        key, sep, value = item.partition("=")
        target = sim if key.startswith("sim.") else cfg
        name = key.removeprefix("sim.")
        if not sep or name not in {f.name for f in dataclasses.fields(target)} or name == "sim":
            raise SynthesisDataError(f"--set {item!r}: no such field; see SynthesisDataConfig / SimPhysics in "
                                     "docs/synthesis.md")
        try:
            new = parse_value(value, getattr(target, name))
        except ValueError as exc:
            raise SynthesisDataError(f"--set {item!r}: {exc}") from None
        if target is sim:
            sim = dataclasses.replace(sim, **{name: new})
        else:
            cfg = dataclasses.replace(cfg, **{name: new})
    return dataclasses.replace(cfg, sim=SimPhysics(**dataclasses.asdict(sim)))


def _cmd_data(args: argparse.Namespace) -> int:
    from avworld.data.synthesis import generate

    cfg = _data_config(args)
    paths = generate(cfg, args.out, progress=not args.no_progress)
    print(f"{len(paths)} files ({cfg.num_envs} houses x {cfg.placements} placements x {cfg.poses_per_placement} "
          f"poses) in {args.out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from avworld.train.synthesis import train_refiner
    from avworld.train.synthesis_config import SynthesisConfigError, resolve

    model_cfg, cfg = resolve(args.preset, args.overrides)
    cfg = dataclasses.replace(cfg, start=args.start)
    set_threads(args.threads, SynthesisConfigError)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    summary = train_refiner(args.data, args.out, model_cfg, cfg, resume=args.resume,
                            time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit,
                            device=device, progress=not args.no_progress, tensorboard=not args.no_tensorboard,
                            val_data=args.val_data, val_examples=args.val_examples)
    print(json.dumps(summary))
    Path(args.out, "summary.json").write_text(json.dumps(summary, indent=1))
    return 130 if summary["stopped"] not in (None, "time limit") else 0
