"""Commands of the navigation tasks: ``avworld episodes make`` and ``avworld eval``."""

from __future__ import annotations

import argparse


class TaskCliError(ValueError):
    """Bad command-line input for a task command."""


def _rooms(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI room counts, e.g. 2,4; got {text!r}") from None
    return lo, hi


def add_commands(sub) -> None:
    """Add ``episodes`` and ``eval`` to the ``avworld`` sub-command parsers."""
    episodes = sub.add_parser("episodes", help="AudioGoal episode datasets")
    esub = episodes.add_subparsers(dest="episodes_command", required=True)
    make = esub.add_parser("make", help="sample AudioGoal episodes over a scene split and write them as JSON lines")
    make.add_argument("--split", default="train", choices=["train", "val", "test"], help="scene split (default train)")
    make.add_argument("--scenes", type=int, default=10, help="number of procedural houses in the split (default 10)")
    make.add_argument("--per-scene", type=int, default=10, help="episodes per house (default 10)")
    make.add_argument("--rooms", type=_rooms, default=(2, 4), help="LO,HI rooms per house (default 2,4)")
    make.add_argument("--preset", default="soundspaces2", help="motion preset the optimal actions are planned for")
    make.add_argument("--min-geodesic", type=float, default=2.0, help="minimum start-goal geodesic distance (m)")
    make.add_argument("--max-geodesic", type=float, default=30.0, help="maximum start-goal geodesic distance (m)")
    make.add_argument("--straight-keep", type=float, default=0.05,
                      help="probability of keeping a nearly straight start-goal path (geodesic/euclidean < 1.1); "
                           "habitat's PointNav rule, default 0.05; 1 keeps all (easier training episodes)")
    make.add_argument("--sound", default="telephone_ringing", help="sound type of the goal (default telephone_ringing)")
    make.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same file)")
    make.add_argument("--out", required=True, help="output .jsonl file")
    make.set_defaults(func=_cmd_episodes_make)

    ev = sub.add_parser("eval", help="run a baseline agent over AudioGoal episodes; print and save the metrics",
                        description="Baselines: avworld eval --agent NAME --episodes FILE. A trained checkpoint: "
                                    "avworld eval nav --checkpoint CKPT --episodes FILE (needs torch: the `torch` "
                                    "extra).")
    # --agent and --episodes are required, checked in _cmd_eval: argparse would also demand them of
    # `avworld eval nav ...`, which the train CLI adds as a sub-command of this parser
    ev.add_argument("--agent", action="append", default=None,
                    help="random, forward, oracle or heuristic (repeatable; required)")
    ev.add_argument("--episodes", default=None, help="episode file from `avworld episodes make` (required)")
    ev.add_argument("--num", type=int, default=None, help="evaluate only the first NUM episodes")
    ev.add_argument("--observations", default="audiovisual",
                    help="audiovisual (default), audiodepth, audio or vision")
    ev.add_argument("--preset", default=None,
                    help="motion preset: soundspaces2, grid or avw (default: the one the episodes were planned for)")
    ev.add_argument("--size", type=int, default=128, help="image size in pixels (default 128)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the agents and the env")
    ev.add_argument("--out", default=None, help="directory for metrics.json and episodes.csv; rows are written as "
                    "episodes finish, and rerunning the same command resumes after the last finished one")
    ev.set_defaults(func=_cmd_eval)


def _cmd_episodes_make(args) -> int:
    from dataclasses import replace

    from rich.progress import Progress

    from avworld.sim.config import PRESETS
    from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes

    if args.preset not in PRESETS:
        raise TaskCliError(f"unknown preset {args.preset!r}; choose one of {sorted(PRESETS)}")
    if args.per_scene < 1:
        raise TaskCliError(f"--per-scene must be >= 1, got {args.per_scene}")
    p = PRESETS[args.preset]
    cfg = replace(EpisodeConfig(), forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"],
                  min_geodesic_m=args.min_geodesic, max_geodesic_m=args.max_geodesic,
                  straight_keep_prob=args.straight_keep, sound=args.sound)
    scenes = split_scenes(args.split, args.scenes, args.rooms)
    with Progress() as progress:
        task = progress.add_task(f"episodes ({args.split})", total=len(scenes))
        eps = make_episodes(scenes, args.per_scene, cfg, seed=args.seed, progress=lambda _: progress.advance(task))
    path = save_episodes(args.out, eps, cfg, split=args.split,
                         extra={"seed": args.seed, "scenes": scenes, "preset": args.preset})
    print(f"{len(eps)} episodes in {len(scenes)} {args.split} houses written to {path}")
    return 0


def _cmd_eval(args) -> int:
    from avworld.eval.cli import cmd_eval  # validation, resume and Ctrl-C live with the evaluation

    return cmd_eval(args)
