"""``avworld separation train|eval``: the learning side of active separation (added to ``avworld separation``
by :mod:`avworld.tasks.separation_cli` through :func:`add_separation_commands`).

    avworld separation train passive --data DIR [--preset cpu|gpu] [--out DIR] [--set train.F=V] [run options]
    avworld separation train active  --passive RUN [--preset cpu|gpu] [--agent transformer|recurrent|none]
                                     [--out DIR] [--set ppo.F=V --set memory.F=V ...] [run options]
    avworld separation eval passive  --checkpoint RUN --data DIR [--split test] [--num N] [--out DIR]
    avworld separation eval active   --passive RUN --episodes FILE
                                     [--agent learned|novelty|stand|rotate|random|proximity|doa]
                                     [--checkpoint RUN] [--num N] [--out DIR [--report-episodes N]]

The novelty baseline is `train active --set active.reward=novelty` (count-based exploration reward);
`eval active --agent novelty --checkpoint RUN` evaluates it (as `learned`, checking the run's reward).

No torch import at module level. See docs/separation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_separation_commands(ssub) -> None:
    from avworld.train.run_options import add_run_options

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
    pa.add_argument("--allow-incomplete", action="store_true",
                    help="read the shards written so far (e.g. start on a finished train split while the dataset "
                         "build still writes val/test; the split's examples are fixed when training starts)")
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
                         "--set ppo.total_steps=4000 --set memory.refine_past=0 --set policy.zero_visual=true; "
                         "--set active.reward=novelty trains the novelty baseline (reward 1/sqrt(visits) of the "
                         "agent's 0.5 m x 90 deg cell in the episode: active.novelty_cell_m, "
                         "active.novelty_heading_bins) with the same memory training")
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

    ea = esub.add_parser("active", help="separation quality along the paths of a motion policy over an episode file")
    ea.add_argument("--passive", required=True, help="run directory or checkpoint of `train passive` (f^P)")
    ea.add_argument("--agent", default="learned",
                    help="learned (needs --checkpoint), novelty (a checkpoint trained with "
                         "--set active.reward=novelty) or a baseline: stand, rotate, random, proximity, doa "
                         "(doa with the privileged true direction)")
    ea.add_argument("--checkpoint", default=None, help="run directory or checkpoint of `train active`: the learned "
                                                        "agent, or (with a baseline) the memory to refine with")
    ea.add_argument("--episodes", required=True, help="episode file (`avworld separation episodes make`)")
    ea.add_argument("--num", type=int, default=None, help="first N episodes (default all)")
    ea.add_argument("--seed", type=int, default=0, help="seed of the policy's and the env's draws")
    ea.add_argument("--size", type=int, default=None, help="image size (default: the checkpoint's, else 64)")
    ea.add_argument("--deterministic", action="store_true", help="the learned agent takes its most likely action")
    ea.add_argument("--out", default=None, help="write metrics.json (aggregate and per episode) and the report "
                                                 "index.html (paths, audio players, spectrograms) here")
    ea.add_argument("--report-episodes", type=int, default=4,
                    help="episodes shown in the --out report (default 4; 0: no report)")
    ea.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ea.set_defaults(func=_cmd_eval_active)


def _threads(n) -> None:
    from avworld.train.run_options import set_threads
    from avworld.train.separation_config import SeparationConfigError

    set_threads(n, SeparationConfigError)


def _cmd_train_passive(args: argparse.Namespace) -> int:
    from avworld.train.separation_config import resolve_passive
    from avworld.train.separation_data import StaticSeparationData
    from avworld.train.separation_passive import train_passive

    cfg = resolve_passive(args.preset, args.overrides)
    _threads(args.threads)
    out = Path(args.out or f"runs/separation-passive-{args.preset}")
    train = StaticSeparationData(args.data, cfg.split, args.allow_incomplete)
    val = StaticSeparationData(args.data, cfg.val_split, args.allow_incomplete) if cfg.val_examples > 0 else None
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


def _cmd_eval_active(args: argparse.Namespace) -> int:
    import gymnasium as gym

    import avworld.tasks  # noqa: F401  (registers the env ids)
    from avworld.eval.separation_eval import LearnedSeparationPolicy, evaluate
    from avworld.models.separation import MemoryConfig, build_memory
    from avworld.tasks.separation_baselines import BASELINES
    from avworld.train.checkpoint import latest_checkpoint, load_checkpoint
    from avworld.train.separation_config import SeparationConfigError
    from avworld.train.separation_passive import load_passive

    if args.report_episodes < 0:
        raise SeparationConfigError(f"--report-episodes must be >= 0, got {args.report_episodes}")
    _threads(args.threads)
    passive = load_passive(args.passive)
    ckpt_path = None
    if args.checkpoint:
        ckpt_path = latest_checkpoint(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint)
    env_kw = {}
    reward = None
    if args.agent in ("learned", "novelty"):
        if ckpt_path is None:
            raise SeparationConfigError(f"--agent {args.agent} needs --checkpoint (a run of `train active`)")
        agent = LearnedSeparationPolicy.from_checkpoint(ckpt_path, passive, args.deterministic, args.seed)
        reward = agent.reward
        if args.agent == "novelty" and reward != "novelty":
            raise SeparationConfigError(f"--agent novelty: {ckpt_path} was trained with active.reward={reward}; "
                                        "pass a run of `train active --set active.reward=novelty`, or --agent "
                                        "learned")
        memory = agent.memory
        saved_env = load_checkpoint(ckpt_path).get("run_info", {}).get("env", {})
        env_kw = {"width": saved_env.get("width", 64), "height": saved_env.get("height", 64),
                  "rgb": "rgb" in agent.policy.obs_keys}
    elif args.agent in BASELINES:
        cls = BASELINES[args.agent]
        agent = cls(seed=args.seed) if args.agent in ("random", "proximity") else cls()
        env_kw = {"rgb": False, "allow_stay": args.agent in ("stand", "doa")}
        memory = build_memory(MemoryConfig(kind="none"))
        if ckpt_path is not None:
            sep = load_checkpoint(ckpt_path)["separation"]
            memory = build_memory(MemoryConfig(**sep["memory_config"]))
            memory.load_state_dict(sep["memory"])
    else:
        raise SeparationConfigError(f"--agent {args.agent!r}: choose learned, novelty or one of "
                                    f"{sorted(BASELINES)}")
    if args.size:
        env_kw.update(width=args.size, height=args.size)
    env = gym.make("avworld/ActiveSeparation-v0", episodes=args.episodes, **env_kw)
    try:
        n = len(env.unwrapped.episodes)
        n = n if args.num is None else min(n, args.num)
        keep = min(args.report_episodes, n) if args.out else 0
        result = evaluate(env, agent, passive, memory, n, seed=args.seed, keep=keep,
                          progress=lambda k, r: print(f"episode {k + 1}/{n}: SI-SDR {r['si_sdr']:.2f} dB "
                                                      f"(mixture {r['si_sdr_mixture']:.2f}) {json.dumps(r)}",
                                                      flush=True))
        examples = result.pop("examples", [])
        result.update(agent=getattr(agent, "name", args.agent), reward=reward, episodes=str(args.episodes),
                      passive=str(args.passive), checkpoint=str(ckpt_path) if ckpt_path else None,
                      memory=memory.config.kind, num_episodes=n)
        report = None
        if args.out:
            from avworld.eval.separation_report import write_separation_report

            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
            if keep:
                worlds = env.unwrapped.worlds
                report = write_separation_report(out, result, examples,
                                                 world_of=lambda s: (worlds.get(s).scene, worlds.get(s).nav))
    finally:
        env.close()
    print(f"agent {result['agent']} (motion reward: {reward or 'none, a fixed baseline'}), memory {result['memory']}, "
          f"{n} episodes")
    for k, v in result["aggregate"].items():
        print(f"{k:16s} {v['mean']:8.3f}  95% CI [{v['ci_low']:.3f}, {v['ci_high']:.3f}]  n={v['n']}")
    if report is not None:
        print(f"report: {report}")
    return 0
