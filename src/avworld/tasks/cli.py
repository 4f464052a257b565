"""Commands of the navigation tasks: ``avworld episodes make`` and ``avworld eval``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    make.add_argument("--preset", default="soundspaces2",
                      help="motion preset the optimal actions are planned for: soundspaces2 (default), avw or grid")
    make.add_argument("--min-geodesic", type=float, default=2.0, help="minimum start-goal geodesic distance (m)")
    make.add_argument("--max-geodesic", type=float, default=30.0, help="maximum start-goal geodesic distance (m)")
    make.add_argument("--straight-keep", type=float, default=0.05,
                      help="probability of keeping a nearly straight start-goal path (geodesic/euclidean < 1.1); "
                           "habitat's PointNav rule, default 0.05; 1 keeps all (easier training episodes)")
    make.add_argument("--sound", default="telephone_ringing",
                      help="sound type of the goal (default telephone_ringing; `avworld sounds list` shows all)")
    make.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same file)")
    make.add_argument("--out", required=True,
                      help="output .jsonl file, written at the end; finished houses go to OUT.partial meanwhile, "
                           "and rerunning the same command after Ctrl-C resumes from it")
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


def _check_make_args(args):
    """Validate ``episodes make``'s names and counts before any house is built; returns the EpisodeConfig."""
    from dataclasses import replace

    from avworld.eval.choices import check_choice, did_you_mean
    from avworld.sim.config import PRESETS
    from avworld.sounds import SoundBank
    from avworld.tasks.episodes import EpisodeConfig

    check_choice("--preset", args.preset, PRESETS, TaskCliError)
    bank = SoundBank()
    if args.sound not in bank:
        raise TaskCliError(f"--sound {args.sound!r} is unknown{did_you_mean(args.sound, bank.names())} "
                           f"(`avworld sounds list` shows the {len(bank.names())} sound types)")
    for flag, v in (("--scenes", args.scenes), ("--per-scene", args.per_scene)):
        if v < 1:
            raise TaskCliError(f"{flag} must be >= 1, got {v}")
    p = PRESETS[args.preset]
    return replace(EpisodeConfig(), forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"],
                   min_geodesic_m=args.min_geodesic, max_geodesic_m=args.max_geodesic,
                   straight_keep_prob=args.straight_keep, sound=args.sound)


def _cmd_episodes_make(args) -> int:
    """Sample the episodes house by house into ``OUT.partial`` (so that Ctrl-C keeps the finished
    houses and a rerun of the same command resumes), then write ``OUT`` at once."""
    import sys
    from dataclasses import asdict

    from rich.progress import Progress

    from avworld.tasks import episodes as E

    cfg = _check_make_args(args)
    scenes = E.split_scenes(args.split, args.scenes, args.rooms)
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    ident = {"partial": "avworld episodes make", "config": asdict(cfg), "split": args.split, "seed": args.seed,
             "scenes": scenes, "per_scene": args.per_scene, "preset": args.preset}
    eps = _resume(partial, ident, args.per_scene)
    done = len(eps) // args.per_scene
    if done:
        print(f"resuming: {done} of {len(scenes)} houses already sampled in {partial}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "w") as f:  # the header and the finished houses, rewritten whole
        f.write(json.dumps(ident) + "\n")
        f.writelines(json.dumps(ep.to_dict()) + "\n" for ep in eps)
        f.flush()
        try:
            with Progress() as progress:
                task = progress.add_task(f"episodes ({args.split})", total=len(scenes), completed=done)
                for _, _, new in E.iter_scene_episodes(scenes, args.per_scene, cfg, seed=args.seed, start=done):
                    f.writelines(json.dumps(ep.to_dict()) + "\n" for ep in new)
                    f.flush()
                    eps.extend(new)
                    progress.advance(task)
        except KeyboardInterrupt:
            print(f"avworld: interrupted after {len(eps) // args.per_scene} of {len(scenes)} houses (kept in "
                  f"{partial}); rerun the same command to resume", file=sys.stderr)
            return 130
    path = E.save_episodes(out, eps, cfg, split=args.split,
                           extra={"seed": args.seed, "scenes": scenes, "preset": args.preset})
    partial.unlink()
    print(f"{len(eps)} episodes in {len(scenes)} {args.split} houses written to {path}")
    return 0


def _resume(partial: Path, ident: dict, per_scene: int) -> list:
    """The episodes of the whole houses an interrupted run of the same command left in ``partial``
    (none when there is no such file, or it is of another command)."""
    from avworld.tasks.episodes import AudioGoalEpisode, EpisodeFileError

    try:
        lines = partial.read_text().splitlines()
        if not lines or json.loads(lines[0]) != json.loads(json.dumps(ident)):
            return []
    except (OSError, ValueError):
        return []
    eps = []
    for line in lines[1:]:
        try:
            eps.append(AudioGoalEpisode.from_dict(json.loads(line)))
        except (ValueError, EpisodeFileError):  # a line cut short by the interrupt: the rest is redone
            break
    return eps[: len(eps) // per_scene * per_scene]


def _cmd_eval(args) -> int:
    from avworld.eval.cli import cmd_eval  # validation, resume and Ctrl-C live with the evaluation

    return cmd_eval(args)
