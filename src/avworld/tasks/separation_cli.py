"""``avworld separation``: episode files and the static pretraining dataset of active separation.

``avworld separation episodes make`` writes an episode file of one split;
``avworld separation data make`` builds (or resumes) the static dataset of random poses.
The learning side adds its own sub-commands (train, eval) to the same group: a module
``avworld.train.separation_cli`` with ``add_separation_commands(subparsers)``, if present,
is called with this group's sub-parsers.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from pathlib import Path

#: modules that add sub-commands to `avworld separation` (if installed)
EXTENSIONS = ("avworld.train.separation_cli",)


class SeparationCliError(ValueError):
    """Bad command-line input for an ``avworld separation`` command."""


def _pair(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI integers, e.g. 5,8; got {text!r}") from None
    return lo, hi


def _triple(text: str) -> tuple[int, int, int]:
    try:
        a, b, c = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST integers, e.g. 8,2,2; got {text!r}") from None
    return a, b, c


def add_commands(sub) -> None:
    """Add ``separation`` (episodes make, data make, and extensions) to the ``avworld`` sub-commands."""
    sep = sub.add_parser("separation", help="active audio-visual separation: episode files, static dataset")
    ssub = sep.add_subparsers(dest="separation_command", required=True)

    eps = ssub.add_parser("episodes", help="active-separation episode files")
    esub = eps.add_subparsers(dest="separation_episodes_command", required=True)
    make = esub.add_parser("make", help="sample episodes over the houses of a split and write them as JSON lines")
    make.add_argument("--split", default="test", choices=["train", "val", "test"], help="scene split (default test)")
    make.add_argument("--scenes", type=int, default=10, help="number of procedural houses of the split (default 10)")
    make.add_argument("--per-scene", type=int, default=20, help="episodes per house (default 20)")
    make.add_argument("--rooms", type=_pair, default=None,
                      help="LO,HI rooms per house (default 5,8 for 2 sources, 8,12 for more: room for 8 m apart)")
    make.add_argument("--sources", type=int, default=2, help="sources per episode, 2-4 (default 2)")
    make.add_argument("--min-separation", type=float, default=8.0,
                      help="minimum horizontal distance between sources in metres (default 8)")
    make.add_argument("--sounds", default="unheard", choices=["unheard", "heard"],
                      help="unheard: clips of the split's own 18:3:4 share; heard: training clips (default unheard)")
    make.add_argument("--seed", type=int, default=0, help="sampling seed (same seed, same file)")
    make.add_argument("--out", required=True, help="output .jsonl file")
    make.set_defaults(func=_cmd_episodes_make)

    data = ssub.add_parser("data", help="static dataset of random poses (pretrains the passive separator)")
    dsub = data.add_subparsers(dest="separation_data_command", required=True)
    dm = dsub.add_parser("make", help="build (or resume) the static dataset: HDF5 shards + manifest.json",
                         description="Rerunning the same command resumes after the last whole shard.")
    dm.add_argument("--out", required=True, help="dataset directory")
    dm.add_argument("--scenes", type=_triple, default=(8, 2, 2), help="TRAIN,VAL,TEST houses (default 8,2,2)")
    dm.add_argument("--per-scene", type=_triple, default=(500, 150, 150),
                    help="TRAIN,VAL,TEST examples per house (default 500,150,150)")
    dm.add_argument("--rooms", type=_pair, default=(5, 8), help="LO,HI rooms per house (default 5,8)")
    dm.add_argument("--sources", type=_pair, default=(2, 2), help="LO,HI sources per example (default 2,2)")
    dm.add_argument("--sounds", default="unheard", choices=["unheard", "heard"], help="clip protocol (default unheard)")
    dm.add_argument("--noise-snr", type=float, default=None, help="microphone noise SNR in dB (default none)")
    dm.add_argument("--shard-size", type=int, default=250, help="examples per HDF5 file (default 250)")
    dm.add_argument("--seed", type=int, default=0, help="seed (same seed, same bytes)")
    dm.set_defaults(func=_cmd_data_make)

    for name in EXTENSIONS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name).add_separation_commands(ssub)


def _cmd_episodes_make(args) -> int:
    from rich.progress import Progress

    from avworld.tasks.episodes import split_scenes
    from avworld.tasks.separation_episodes import (
        SeparationEpisodeConfig,
        iter_separation_episodes,
        save_separation_episodes,
    )

    if args.scenes < 1 or args.per_scene < 1:
        raise SeparationCliError(f"--scenes and --per-scene must be >= 1, got {args.scenes}, {args.per_scene}")
    if not 2 <= args.sources <= 4:
        raise SeparationCliError(f"--sources must lie in 2..4, got {args.sources}")
    cfg = SeparationEpisodeConfig(num_sources=args.sources, min_separation_m=args.min_separation, sounds=args.sounds)
    rooms = args.rooms or ((5, 8) if args.sources <= 2 else (8, 12))
    scenes = split_scenes(args.split, args.scenes, rooms)
    eps = []
    with Progress() as progress:
        task = progress.add_task(f"episodes ({args.split})", total=len(scenes))
        for _, _, new in iter_separation_episodes(scenes, args.per_scene, cfg, args.split, seed=args.seed):
            eps.extend(new)
            progress.advance(task)
    path = save_separation_episodes(args.out, eps, cfg, split=args.split,
                                    extra={"seed": args.seed, "scenes": scenes, "rooms": list(rooms)})
    print(f"{len(eps)} episodes in {len(scenes)} {args.split} houses written to {path}")
    return 0


def _cmd_data_make(args) -> int:
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from avworld.data.separation import SeparationDataConfig, build_separation_dataset

    cfg = SeparationDataConfig(scenes=args.scenes, per_scene=args.per_scene, rooms=args.rooms,
                               num_sources=args.sources, sounds=args.sounds, noise_snr_db=args.noise_snr,
                               shard_size=args.shard_size, seed=args.seed)
    t0 = time.time()
    cols = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn())
    try:
        with Progress(*cols) as progress:
            task = progress.add_task("examples", total=None)

            def report(_event: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            m = build_separation_dataset(args.out, cfg, report)
    except KeyboardInterrupt:
        print(f"avworld: interrupted; the whole shards in {args.out} are kept, rerun the same command to resume",
              file=sys.stderr)
        return 130
    counts = m["num_examples"]
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*.h5"))
    print(json.dumps({"out": str(args.out), "examples": counts, "bytes": size,
                      "seconds": round(time.time() - t0, 1)}))
    return 0
