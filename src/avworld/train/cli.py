"""``avworld train ...`` commands (no torch import at module level: ``avworld --help`` stays fast).

    avworld train nav  --agent agsa|avnav --preset soundspaces|fast|tiny [--ablation NAME] [--out DIR]
                       [--total-steps N] [--num-envs N] [--episodes FILE] [--resume] [--device cpu|cuda]
    avworld train eval --checkpoint CKPT --episodes FILE [--num N] [--no-vision] [--deterministic] [--threads N]
                       [--out DIR]   (with --out: resumes after Ctrl-C when rerun)
                       (also as ``avworld eval nav --checkpoint ...``)
    avworld train export --checkpoint CKPT --out FILE [--float32]   policy-only copy to ship (float16 weights)
    avworld train toy  [--agent avnav|agsa] [--total-steps N] [--out DIR]   trainer sanity check (seconds)

Multi-GPU / multi-node: launch ``avworld train nav`` with ``torchrun`` (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

from avworld.eval.choices import check_choice
from avworld.train.config import PRESETS, TrainConfigError

AGENTS = ("agsa", "avnav")
ABLATION_NAMES = ("audio-only", "static-fusion", "no-sam", "modality-dropout")


def add_commands(sub) -> None:
    """Add ``train`` (with ``nav``, ``eval`` and ``toy``) to the ``avworld`` sub-command parsers."""
    train = sub.add_parser("train", help="train and evaluate learning agents (PPO / DD-PPO)")
    tsub = train.add_subparsers(dest="train_command", required=True)

    nav = tsub.add_parser("nav", help="train an AudioGoal navigation agent with recurrent PPO (DD-PPO under torchrun)",
                          description="Presets: " + "; ".join(f"{k}: {v['doc']}" for k, v in PRESETS.items()))
    nav.add_argument("--agent", required=True, help="agsa (SAM + AGDF) or avnav (SoundSpaces)")
    nav.add_argument("--preset", default="soundspaces",
                     help=f"{', '.join(sorted(PRESETS))} (default: soundspaces; see the description above)")
    nav.add_argument("--ablation", action="append", default=[],
                     help="repeatable: audio-only, static-fusion, no-sam (agsa), modality-dropout")
    nav.add_argument("--out", default=None, help="run directory (default runs/train/AGENT-PRESET[-ABLATIONS])")
    nav.add_argument("--total-steps", type=int, default=None, help="env steps over all processes")
    nav.add_argument("--num-envs", type=int, default=None, help="envs per process")
    nav.add_argument("--num-steps", type=int, default=None, help="rollout length per update")
    nav.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    nav.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                     help="stop after the first update past MINUTES of wall time, with a checkpoint (for jobs with "
                          "a wall-time limit; continue with --resume). Ctrl-C or SIGTERM stops the same way")
    nav.add_argument("--episodes", default=None, help="training episode file (default: sampled in train houses)")
    nav.add_argument("--size", type=int, default=None, help="image size in pixels (default: the preset's)")
    nav.add_argument("--visual", default=None, help="images the agent sees: depth (preset default), rgb or rgb,depth")
    nav.add_argument("--sync", action="store_true", help="step the envs in this process (no AsyncVectorEnv)")
    nav.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                     help="repeatable override of a ppo., env. or model. option, VALUE as JSON (bare words are "
                          "strings), e.g. --set ppo.entropy_coef=0.05 --set model.stop_prior=0.05")
    nav.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    nav.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    nav.add_argument("--no-tensorboard", action="store_true", help="CSV logs only")
    nav.add_argument("--no-progress", action="store_true", help="no progress bar")
    nav.set_defaults(func=_cmd_train_nav)

    _eval_arguments(tsub.add_parser("eval", help=EVAL_HELP))
    # the same command as `avworld eval nav` beside the baselines' `avworld eval --agent ...`
    if "eval" in sub.choices:
        base = sub.choices["eval"]
        esub = base.add_subparsers(dest="eval_target", title="trained agents", metavar="[nav]")
        nav_eval = esub.add_parser("nav", help=EVAL_HELP + " (= avworld train eval)")
        _eval_arguments(nav_eval, nested=True)
        # --episodes may come before `nav` too, so argparse cannot require it here (it is checked in
        # _cmd_train_eval); the usage line still shows it as required
        usage = nav_eval.format_usage().removeprefix("usage: ").strip()
        nav_eval.usage = usage.replace("[--episodes FILE]", "--episodes FILE")
        # the baselines' own options and their defaults, read from their parser (refused under `nav`)
        nav_eval.set_defaults(baseline_defaults={k: base.get_default(k) for k in BASELINE_ONLY})

    ex = tsub.add_parser("export", help="write a small policy-only copy of a checkpoint (for shipping / the demo)")
    ex.add_argument("--checkpoint", required=True, help="ckpt_*.pt file or a run directory (its latest checkpoint)")
    ex.add_argument("--out", required=True, help="output .pt file")
    ex.add_argument("--float32", action="store_true", help="keep float32 weights (default: float16, half the size)")
    ex.set_defaults(func=_cmd_train_export)

    toy = tsub.add_parser("toy", help="train on a tiny audio-goal grid world (checks the trainer in seconds)")
    toy.add_argument("--agent", default="avnav", help="avnav (default) or agsa")
    toy.add_argument("--total-steps", type=int, default=20000, help="env steps to train (default 20000)")
    toy.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    toy.add_argument("--out", default=None, help="run directory for logs and checkpoints (default: none)")
    toy.set_defaults(func=_cmd_train_toy)


EVAL_HELP = "evaluate a trained navigation checkpoint on AudioGoal episodes"


#: options of `avworld eval` (the baselines) that `avworld eval nav` does not take
BASELINE_ONLY = ("agent", "observations", "preset", "size")


def _eval_arguments(ev, nested: bool = False) -> None:
    """The options of the checkpoint evaluation. ``nested``: under `avworld eval`, whose parser has
    --episodes, --num, --seed and --out too; their defaults are then left to it, so that the values
    given before or after `nav` both count (argparse would reset them to the sub-parser's defaults)."""

    def default(value):
        return argparse.SUPPRESS if nested else value

    ev.add_argument("--checkpoint", required=True, help="ckpt_*.pt file or a run directory (its latest checkpoint)")
    ev.add_argument("--episodes", required=not nested, default=default(None), metavar="FILE",
                    help="episode file from `avworld episodes make`, planned for the checkpoint's motion (required)")
    ev.add_argument("--num", type=int, default=default(None), help="evaluate only the first NUM episodes")
    ev.add_argument("--no-vision", action="store_true", help="zero the images (audio-only evaluation)")
    ev.add_argument("--deterministic", action="store_true", help="argmax actions instead of sampling")
    ev.add_argument("--seed", type=int, default=default(0), help="seed of the sampled actions and the env (default 0)")
    ev.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    ev.add_argument("--threads", type=int, default=None, metavar="N",
                    help="torch CPU threads for the policy (default: OMP_NUM_THREADS if set, else the cores not "
                         "busy by the 1-minute load average, at least 1; give 1 when several evaluations or "
                         "trainings share the machine)")
    ev.add_argument("--out", default=default(None),
                    help="directory for metrics.json and episodes.csv; rows are written as episodes finish, and "
                         "rerunning the same command resumes after the last finished episode")
    ev.set_defaults(func=_cmd_train_eval)


def check_train_names(args) -> None:
    """Agent, preset and ablation names of `avworld train nav`, checked before anything is built."""
    check_choice("--agent", args.agent, AGENTS, TrainConfigError)
    check_choice("--preset", args.preset, PRESETS, TrainConfigError)
    for name in args.ablation:
        check_choice("--ablation", name, ABLATION_NAMES, TrainConfigError)


def _cmd_train_nav(args) -> int:
    check_train_names(args)
    _need_torch("training")
    from avworld.train.nav import train_nav

    ppo = {k: v for k, v in (("total_steps", args.total_steps), ("num_envs", args.num_envs),
                             ("num_steps", args.num_steps), ("seed", args.seed),
                             ("time_limit_s", args.time_limit * 60 if args.time_limit else None)) if v is not None}
    env = {"size": args.size} if args.size else {}
    if args.episodes:
        env["episodes"] = args.episodes
    if args.sync:
        env["asynchronous"] = False
    model = {}
    if args.visual:
        keys = tuple(k.strip() for k in args.visual.split(",") if k.strip())
        if not set(keys) <= {"rgb", "depth"}:
            raise TrainConfigError(f"--visual {args.visual!r}: use depth, rgb or rgb,depth")
        model["visual_keys"] = keys
        if "rgb" in keys:  # the presets' envs render depth only ("audiodepth")
            env["observations"] = "audiovisual"
    sections = {"ppo": ppo, "env": env, "model": model}
    for section, key, value in (parse_override(text) for text in args.overrides):
        sections[section][key] = value
    name = "-".join([args.agent, args.preset, *args.ablation])
    out = Path(args.out or f"runs/train/{name}")
    main_rank = os.environ.get("RANK", "0") == "0"  # torchrun: every process returns here; one reports
    again = "rerun the same command" + ("" if args.resume else " with --resume")
    try:
        result = train_nav(args.agent, args.preset, out, tuple(args.ablation), ppo, env, model, resume=args.resume,
                           device=args.device, progress=not args.no_progress, tensorboard=not args.no_tensorboard)
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the trainer took over the signals
        if main_rank:
            import sys

            from avworld.train.checkpoint import checkpoint_dir

            saved = sorted(checkpoint_dir(out).glob("ckpt_*.pt"))
            hint = (f"{again} to resume from {saved[-1]}" if saved else
                    "no checkpoint was written yet; rerun the same command" + (" without --resume" if args.resume
                                                                              else "") + " to start over")
            print(f"interrupted; {hint}", file=sys.stderr)
        return 130
    shown = {k: round(v, 4) for k, v in result.items() if k.startswith("episode/") or k == "update"}
    if result.get("stopped_by") == "signal":
        name = result.get("stop_signal") or "SIGTERM"
        if main_rank and name != "SIGINT":  # after Ctrl-C the trainer's one line has said it all
            print(f"interrupted by {name} after update {result.get('update')}, checkpoint in {out}; {again} to "
                  f"resume: {json.dumps(shown)}")
        return 128 + int(getattr(signal, name, signal.SIGTERM))  # the shell's code for death by that signal
    if main_rank:
        how = "paused at its time limit" if result.get("stopped_by") == "time_limit" else "finished"
        print(f"training {how} in {out}: {json.dumps(shown)}")
    return 0


def parse_override(text: str) -> tuple[str, str, object]:
    """``"ppo.entropy_coef=0.05"`` -> ``("ppo", "entropy_coef", 0.05)`` (VALUE is JSON; a bare word is a string)."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or section not in ("ppo", "env", "model") or not key:
        raise TrainConfigError(f"--set {text!r}: write SECTION.KEY=VALUE with SECTION ppo, env or model, "
                               "e.g. --set ppo.entropy_coef=0.05")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw.strip()
    if isinstance(value, list):
        value = tuple(value)
    return section, key, value


def _need_torch(what: str) -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise TrainConfigError(f"{what} needs torch ({exc}); install it with `pip install avworld[torch]` "
                               "(or your own CPU / CUDA build of torch)") from None


def _cmd_train_eval(args) -> int:
    if getattr(args, "eval_target", None) == "nav":  # `avworld eval nav ...`
        if not getattr(args, "episodes", None):
            raise TrainConfigError("avworld eval nav needs --episodes FILE (from `avworld episodes make`)")
        given = [f"--{k}" for k, d in args.baseline_defaults.items() if getattr(args, k, d) != d]
        if given:
            raise TrainConfigError(f"{', '.join(given)} belong to the baselines' `avworld eval --agent ...`, not to "
                                   "`avworld eval nav` (a checkpoint brings its own observations, preset and size)")
    if args.num is not None and args.num < 1:
        raise TrainConfigError(f"--num {args.num}: evaluate at least one episode (or leave --num out: all)")
    _need_torch("evaluating a checkpoint")
    try:
        return _run_train_eval(args)
    except KeyboardInterrupt:
        from avworld.eval.cli import report_interrupted

        return report_interrupted(args.out)


def _run_train_eval(args) -> int:
    from rich.progress import Progress

    from avworld.eval.nav_metrics import print_table, write_episodes_csv
    from avworld.tasks.episodes import load_episodes
    from avworld.train.nav import evaluate_nav

    available = len(load_episodes(args.episodes)[1])
    with Progress() as progress:
        task = progress.add_task("evaluating", total=min(args.num or available, available))
        result = evaluate_nav(args.checkpoint, args.episodes, args.num, args.no_vision, args.deterministic,
                              args.seed, args.device, progress=lambda *_: progress.advance(task), out=args.out,
                              threads=args.threads, say=progress.console.print)
    label = result["label"]
    print_table({label: result["aggregate"]},
                f"{args.checkpoint} on {result['num_episodes']} episodes of {args.episodes} (mean ± 95% CI)")
    if "omega" in result:
        print(f"AGDF gate ω: mean {result['omega']['mean']:.3f}, std {result['omega']['std']:.3f}")
    if args.out:
        out = Path(args.out)
        (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        write_episodes_csv(out / "episodes.csv", {label: result["per_episode"]})
        print(f"metrics written to {out / 'metrics.json'} and {out / 'episodes.csv'}")
    return 0


def _cmd_train_export(args) -> int:
    _need_torch("exporting a checkpoint")
    from avworld.train.checkpoint import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out, half=not args.float32)
    print(f"exported {args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _cmd_train_toy(args) -> int:
    check_choice("--agent", args.agent, AGENTS, TrainConfigError)
    _need_torch("the toy trainer")
    from avworld.train.toy import train_toy

    result = train_toy(args.agent, args.total_steps, seed=args.seed, out_dir=args.out, progress=True)
    print(json.dumps({k: round(v, 4) for k, v in result.items() if k.startswith("episode/")}))
    return 0
