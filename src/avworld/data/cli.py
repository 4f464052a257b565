"""The ``avworld data`` commands: ``make``, ``info`` and ``show`` (no torch needed).

::

    avworld data make --preset avw-tiny|avw-small|avw-4k --out DIR [--workers N | --ray ADDRESS] [--rebuild]
    avworld data info PATH [--verify] [--json]
    avworld data show PATH --traj N --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def add_commands(sub) -> None:
    """Add ``data`` (make / info / show) to the ``avworld`` sub-command parsers."""
    from avworld.data.config import PRESETS

    data = sub.add_parser("data", help="AVW audio-visual trajectory datasets: make, info, show")
    dsub = data.add_subparsers(dest="data_command", required=True)
    make = dsub.add_parser("make", help="generate (or resume) a sharded HDF5 trajectory dataset")
    make.add_argument("--preset", required=True, choices=sorted(PRESETS),
                      help="recipe: avw-tiny (seconds), avw-small (minutes), avw-4k (paper scale)")
    make.add_argument("--out", required=True, help="dataset directory (rerun with the same --out to resume)")
    make.add_argument("--workers", type=_positive, default=1, help="local worker processes (default 1)")
    make.add_argument("--ray", default=None, metavar="ADDRESS",
                      help="run shards as Ray tasks: local, auto, or ray://HOST:PORT (needs avworld[ray])")
    make.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    make.add_argument("--scenes", type=_positive, default=None, help="override the number of procedural scenes")
    make.add_argument("--per-scene", type=_positive, default=None, help="override trajectories per scene")
    make.add_argument("--size", type=_positive, default=None, help="override the image size in pixels")
    make.add_argument("--depth", action="store_true", help="also store depth (float16 metres)")
    make.add_argument("--audio-format", choices=["float16", "int16"], default=None, help="stored audio dtype")
    make.add_argument("--reward", choices=["distance", "navigation"], default=None, help="reward variant")
    make.add_argument("--no-verify", action="store_true", help="skip re-hashing finished shards when resuming")
    make.add_argument("--rebuild", action="store_true",
                      help="--out holds shard files but no manifest (orphans): delete them and build there "
                           "(refused without this flag)")
    make.set_defaults(func=_cmd_make)

    info = dsub.add_parser("info", help="statistics of a dataset: scenes, trajectories, frames, hours per split; "
                                        "checks that every shard exists with its recorded size (exit 2 if not)")
    info.add_argument("path", help="dataset directory (or its manifest.json)")
    info.add_argument("--verify", action="store_true",
                      help="also re-hash every shard (SHA-256) against the manifest; every bad shard is listed")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=_cmd_info)

    show = dsub.add_parser("show", help="one trajectory as an mp4 with sound, a top-down path and an HTML page")
    show.add_argument("path", help="dataset directory")
    show.add_argument("--traj", type=int, default=0, help="trajectory index over the whole dataset (default 0)")
    show.add_argument("--out", required=True, help="output directory")
    show.set_defaults(func=_cmd_show)


def config_from_args(args):
    """The :class:`~avworld.data.config.DatasetConfig` a ``make`` command line asks for."""
    from avworld.data.config import preset

    over, traj = {}, {}
    if args.seed is not None:
        over["seed"] = args.seed
    if args.scenes is not None:
        over["num_scenes"] = args.scenes
    if args.per_scene is not None:
        over["trajectories_per_scene"] = args.per_scene
    if args.size is not None:
        traj["image_size"] = args.size
    if args.depth:
        traj["depth"] = True
    if args.audio_format is not None:
        traj["audio_format"] = args.audio_format
    if args.reward is not None:
        traj["reward"] = args.reward
    if traj:
        over["trajectory"] = traj
    return preset(args.preset, **over)


def _frames_column():
    """A rich progress column: frames recorded so far and frames/s since the build started."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class FramesColumn(ProgressColumn):
        def render(self, task):
            frames = task.fields.get("frames", 0)
            rate = frames / max(1e-9, time.perf_counter() - task.fields.get("t0", time.perf_counter()))
            return Text(f"{frames} frames, {rate:.0f} frames/s")

    return FramesColumn()


def _cmd_make(args) -> int:
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from avworld.data.generate import build_dataset
    from avworld.data.inspection import dataset_info

    config = config_from_args(args)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:.0f}/{task.fields[trajs]} trajectories"), _frames_column(),
               TextColumn("ETA"), TimeRemainingColumn())
    try:
        with Progress(*columns) as progress:
            task = progress.add_task(f"{config.name} -> {args.out}", total=None, frames=0, trajs="?",
                                     t0=time.perf_counter())
            frames = 0

            def on_event(ev) -> None:
                nonlocal frames
                if ev.kind == "plan":
                    progress.update(task, total=max(1, ev.trajectories), trajs=ev.trajectories, t0=time.perf_counter())
                    if ev.trajectories == 0:
                        progress.update(task, completed=1)
                elif ev.kind == "rebuild":
                    progress.console.print(f"[yellow]rebuilding[/yellow] {ev.message}")
                elif ev.kind == "trajectory" or (ev.kind == "shard" and args.ray is not None):
                    frames += ev.frames
                    progress.update(task, advance=ev.trajectories, frames=frames)

            build_dataset(args.out, config, workers=args.workers, ray_address=args.ray, progress=on_event,
                          verify=not args.no_verify, rebuild=args.rebuild)
    except KeyboardInterrupt:  # finished shards are in the manifest; the shard in progress is redone
        print(f"avworld data make: interrupted; rerun the same command to resume{_kept(args.out)}", file=sys.stderr)
        return 130
    return _report(dataset_info(args.out), args.out)


def _kept(root) -> str:
    """`` (N of M shards finished and kept)`` from the manifest, or nothing."""
    from avworld.data.manifest import load_manifest

    try:
        shards = load_manifest(root)["shards"]
    except (ValueError, OSError, KeyError):
        return ""
    return f" ({sum(s.get('status') == 'done' for s in shards)} of {len(shards)} shards finished and kept)"


def _report(info: dict, root, as_json: bool = False) -> int:
    """Print ``info``; raise :class:`~avworld.data.errors.CorruptShardError` (exit 2) if shards are bad."""
    from avworld.data.errors import CorruptShardError
    from avworld.data.inspection import format_info

    print(json.dumps(info, indent=2) if as_json else format_info(info))
    bad = info["bad_shards"]
    if bad:
        sys.stdout.flush()
        raise CorruptShardError(
            f"{len(bad)} of {info['shards_done']} built shards of {root} are missing or damaged ("
            + ", ".join(b["id"] for b in bad) + "): delete them and rerun `avworld data make` with the same "
            "--out to rebuild them")
    return 0


def _cmd_info(args) -> int:
    from avworld.data.inspection import dataset_info

    return _report(dataset_info(args.path, verify=args.verify), args.path, as_json=args.json)


def _cmd_show(args) -> int:
    from avworld.data.inspection import show_trajectory

    paths = show_trajectory(args.path, args.traj, args.out)
    for name, p in paths.items():
        print(f"{name:>8}: {p}")
    return 0
