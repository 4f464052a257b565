"""The ``avworld`` command line.

Sub-commands::

    avworld demo    [--out runs/demo] [--checkpoint avnav|agsa|CKPT|'']
                                                          navigation demo with the shipped learned AV-Nav agent:
                                                          report.html with map, videos, RIR
    avworld scene new  --seed N --out DIR [--rooms N ...] generate and save a procedural house
    avworld scene show PATH --out DIR [--views N]         top-down PNG + egocentric views
    avworld scene gallery --out DIR                       maps and views of six procedural houses
    avworld render SCENE --pose X,Y,YAW_DEG ... --out DIR  RGB / depth / semantic images
    avworld rir SCENE --source X,Y,Z --listener X,Y,Z,YAW_DEG --out DIR
                                                          binaural RIR (WAV), plots, RT60 per band

``SCENE``/``PATH`` is a saved avworld scene (directory, .glb or .json), a user mesh
(.ply/.obj/.glb/.gltf, imported with ``--up-axis``, default ``auto``: y-up for glTF, z-up
otherwise; a suspicious orientation prints a warning) or ``house:SEED[:ROOMS]`` for a
procedural house. ``render`` and ``scene show`` refuse cameras inside solids or outside
the scene unless ``--allow-inside``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np


class CliError(ValueError):
    """Bad command-line input; the message says what to change."""


def _parse_floats(text: str, n: int, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"{what}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise CliError(f"{what}: expected {n} comma-separated numbers, got {text!r}")
    return vals


def load_scene_spec(spec: str, up_axis: str = "auto"):
    """A Scene from ``house:SEED[:ROOMS]``, a saved scene, or a mesh file to import."""
    from avworld.geometry.spec import load_scene_spec as _load

    return _load(spec, up_axis)


def _cmd_scene_new(args) -> int:
    from avworld.geometry.io import save_scene
    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.procedural import HouseConfig, generate_house

    cfg = HouseConfig(
        num_rooms=args.rooms,
        furniture_density=args.furniture_density,
        open_plan=args.open_plan,
        outdoor=args.outdoor,
        windows=not args.no_windows,
    )
    scene = generate_house(cfg, seed=args.seed)
    path = save_scene(scene, args.out)
    nav = NavGrid.build(scene, NavConfig())
    print(json.dumps({
        "saved": str(path),
        "hash": scene.content_hash,
        "rooms": [r.room_type for r in scene.rooms],
        "doors": len(scene.doors),
        "objects": len(scene.objects),
        "faces": scene.num_faces,
        "navigable_m2": round(float(nav.free.sum() * nav.resolution_m**2), 2),
    }, indent=2))
    return 0


@contextlib.contextmanager
def _printed_warnings():
    """Print the warnings raised inside (e.g. a suspicious mesh up axis) as ``avworld: warning: ...``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                print(f"avworld: warning: {w.category.__name__}: {w.message}", file=sys.stderr)


def _cmd_scene_show(args) -> int:
    from avworld.geometry.navigation import NavConfig, NavGrid
    from avworld.geometry.up_axis_check import floor_plan_area_m2, warn_if_suspect
    from avworld.viz.gallery import write_scene_views

    with _printed_warnings():
        scene = load_scene_spec(args.path, args.up_axis)
        nav = NavGrid.build(scene, NavConfig())
        warn_if_suspect(scene, nav)
    out = Path(args.out)
    fix = ("the views are placed on the navigable area, so its floor is probably wrong: check --up-axis, "
           "or pass --allow-inside to render them anyway")
    figs, poses = write_scene_views(scene, nav, out, "scene", args.views, args.size, np.random.default_rng(args.seed),
                                    check_poses_fix=None if args.allow_inside else fix)
    for name, caption in figs:
        print(f"{out / name}: {caption}")
    plan = floor_plan_area_m2(scene, nav)
    share = f" ({100 * nav.navigable_area_m2 / plan:.0f} % of the {plan:.1f} m^2 floor plan)" if plan > 0 else ""
    print(f"navigable area: {nav.navigable_area_m2:.1f} m^2{share}")
    return 0


def _cmd_render(args) -> int:
    from PIL import Image

    from avworld.vision.camera import CameraConfig
    from avworld.vision.pose_check import check_camera_poses
    from avworld.vision.render import Renderer
    from avworld.vision.topdown import colorize_semantic
    from avworld.viz.colorize import depth_to_rgb

    if not args.pose:
        raise CliError("render: give at least one --pose X,Y,YAW_DEG")
    with _printed_warnings():
        scene = load_scene_spec(args.scene, args.up_axis)
    cam = CameraConfig(width=args.width, height=args.height, hfov_deg=args.hfov, height_m=args.camera_height)
    poses = np.array([_parse_floats(p, 3, "--pose") for p in args.pose])
    poses[:, 2] = np.radians(poses[:, 2])
    if not args.allow_inside:
        check_camera_poses(scene, poses, cam.height_m, labels=[f"--pose {p}" for p in args.pose],
                           fix="`avworld scene show` draws the navigable area; --allow-inside renders it anyway")
    views = Renderer(scene, cam).render_batch(poses)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(len(poses)):
        Image.fromarray(views["rgb"][k]).save(out / f"rgb_{k}.png")
        Image.fromarray(depth_to_rgb(views["depth"][k])).save(out / f"depth_{k}.png")
        Image.fromarray(colorize_semantic(views["semantic"][k])).save(out / f"semantic_{k}.png")
        np.save(out / f"depth_{k}.npy", views["depth"][k])
    print(f"wrote {len(poses)} view(s) (rgb, depth png+npy, semantic) to {out}")
    return 0


def _cmd_rir(args) -> int:
    from avworld.acoustics.hrtf import load_hrtf
    from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
    from avworld.acoustics.synthesis import binaural_rir, mono_rir
    from avworld.viz.rir_report import write_rir_report

    with _printed_warnings():
        scene = load_scene_spec(args.scene, args.up_axis)
    src = _parse_floats(args.source, 3, "--source")
    lx, ly, lz, yaw_deg = _parse_floats(args.listener, 4, "--listener")
    cfg = AcousticConfig(sample_rate_hz=args.sample_rate, ism_order=args.ism_order, max_rir_s=args.max_rir_s)
    engine = AcousticEngine(scene, cfg)
    srir = engine.spatial_rir(src, (lx, ly, lz))
    hrtf = load_hrtf(args.hrtf, cfg.sample_rate_hz)
    binaural = binaural_rir(srir, hrtf, np.radians(yaw_deg))
    info = {
        "scene_hash": scene.content_hash,
        "source": src,
        "listener": [lx, ly, lz],
        "yaw_deg": yaw_deg,
        "hrtf": hrtf.name,
        "arrivals": int(len(srir.delay_s)),
        "direct_path": srir.has_direct_path,
    }
    result = write_rir_report(binaural, mono_rir(srir), cfg.sample_rate_hz, args.out, info)
    print(json.dumps(result, indent=2))
    return 0


def _cmd_scene_gallery(args) -> int:
    from rich.progress import Progress

    from avworld.viz.gallery import GalleryConfig, render_gallery

    cfg = GalleryConfig()
    with Progress() as progress:
        task = progress.add_task("scene gallery", total=len(cfg.houses))
        index = render_gallery(args.out, cfg, progress=lambda msg: progress.advance(task))
    print(f"scene gallery written to {index}")
    return 0


def _cmd_demo(args) -> int:
    from rich.progress import Progress

    from avworld.viz.demo_agent import choose_demo_agent
    from avworld.viz.nav_demo import DemoConfig, run_demo

    choice = choose_demo_agent(args.checkpoint)  # says which learned agent it shows, or why none
    print(choice.message)
    cfg = DemoConfig(checkpoint=choice.checkpoint, learned_note=choice.message)
    steps = 1 + (len(cfg.agents) + bool(cfg.checkpoint)) * (cfg.episodes + 1)
    with Progress() as progress:
        task = progress.add_task("avworld demo", total=steps)

        def step(msg: str) -> None:
            progress.update(task, advance=1, description=msg)

        report = run_demo(args.out, cfg, progress=step)
    print(f"demo report written to {report}")
    return 0


_UP_AXIS_HELP = ("source up axis when importing a mesh: auto (default: y for .glb/.gltf, as glTF specifies; z for "
                 ".obj/.ply), x, y, z, -x, -y or -z (write --up-axis=-y for a negative axis); a saved avworld scene "
                 "(with its .json) is loaded as saved")
_UP_AXIS_CHOICES = ("auto", "x", "y", "z", "-x", "-y", "-z")


def build_parser() -> argparse.ArgumentParser:
    from avworld import __version__

    p = argparse.ArgumentParser(prog="avworld", description="Embodied audio-visual worlds: see and hear 3D houses.")
    p.add_argument("--version", action="version", version=f"avworld {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="AudioGoal navigation demo: oracle, heuristic and the shipped learned AV-Nav "
                                       "agent -> --out/report.html",
                          description="A procedural house, a ringing phone and three agents: oracle, heuristic and "
                                      "the learned AV-Nav agent shipped with avworld (trained 993,600 steps on "
                                      "audiogoal-small; needs the torch extra, else the demo says so and shows the "
                                      "other two). Writes --out/report.html with the map, videos with binaural "
                                      "sound, spectrograms, the RIR and a metrics table.")
    demo.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    demo.add_argument("--checkpoint", default=None,
                      help="learned agent to show: 'avnav' (default) or 'agsa', the two shipped with avworld, a .pt "
                           "file from `avworld train nav`, or '' for none")
    demo.set_defaults(func=_cmd_demo)

    scene = sub.add_parser("scene", help="create or inspect scenes")
    ssub = scene.add_subparsers(dest="scene_command", required=True)
    new = ssub.add_parser("new", help="generate a procedural house and save it (.glb + .json)")
    new.add_argument("--seed", type=int, required=True, help="random seed (same seed, same bytes)")
    new.add_argument("--out", required=True, help="output directory")
    new.add_argument("--rooms", type=int, default=5, help="number of rooms, 1..12 (default 5)")
    new.add_argument("--furniture-density", type=float, default=0.6, help="0..1 (default 0.6)")
    new.add_argument("--open-plan", action="store_true", help="wide openings between living/kitchen/dining")
    new.add_argument("--outdoor", action="store_true", help="add a garden and a front door")
    new.add_argument("--no-windows", action="store_true", help="no windows in exterior walls")
    new.set_defaults(func=_cmd_scene_new)
    show = ssub.add_parser("show", help="write a top-down PNG and egocentric views of a scene")
    show.add_argument("path", help="saved scene, mesh file, or house:SEED[:ROOMS]")
    show.add_argument("--out", required=True, help="output directory")
    show.add_argument("--views", type=int, default=4, help="number of egocentric views (default 4)")
    show.add_argument("--size", type=int, default=256, help="view resolution in pixels (default 256)")
    show.add_argument("--seed", type=int, default=0, help="seed for choosing the view poses")
    show.add_argument("--up-axis", default="auto", choices=_UP_AXIS_CHOICES, help=_UP_AXIS_HELP)
    show.add_argument("--allow-inside", action="store_true",
                      help="render the views even where a camera is inside a solid or outside the scene")
    show.set_defaults(func=_cmd_scene_show)

    gallery = ssub.add_parser("gallery", help="maps and views of six procedural houses -> --out/index.html")
    gallery.add_argument("--out", required=True, help="output directory")
    gallery.set_defaults(func=_cmd_scene_gallery)

    render = sub.add_parser("render", help="render RGB / depth / semantic images at given poses")
    render.add_argument("scene", help="saved scene, mesh file, or house:SEED[:ROOMS]")
    render.add_argument("--pose", action="append", required=True,
                        help="X,Y,YAW_DEG camera pose (required, repeatable); yaw counter-clockwise from +x in degrees")
    render.add_argument("--out", required=True, help="output directory")
    render.add_argument("--width", type=int, default=256, help="image width in pixels (default 256)")
    render.add_argument("--height", type=int, default=256, help="image height in pixels (default 256)")
    render.add_argument("--hfov", type=float, default=90.0, help="horizontal field of view in degrees")
    render.add_argument("--camera-height", type=float, default=1.5, help="camera height above the floor (m)")
    render.add_argument("--up-axis", default="auto", choices=_UP_AXIS_CHOICES, help=_UP_AXIS_HELP)
    render.add_argument("--allow-inside", action="store_true",
                        help="render poses whose camera is inside a solid or outside the scene (refused by default)")
    render.set_defaults(func=_cmd_render)

    rir = sub.add_parser("rir", help="simulate a binaural room impulse response and write WAV, plots, RT60")
    rir.add_argument("scene", help="saved scene, mesh file, or house:SEED[:ROOMS]")
    rir.add_argument("--source", required=True, help="X,Y,Z source position (m)")
    rir.add_argument("--listener", required=True, help="X,Y,Z,YAW_DEG listener head position and yaw")
    rir.add_argument("--out", required=True, help="output directory")
    rir.add_argument("--sample-rate", type=int, default=16000, help="Hz: 16000 (default), 22050 ... 48000")
    rir.add_argument("--ism-order", type=int, default=3, help="image-source reflection order (default 3)")
    rir.add_argument("--max-rir-s", type=float, default=1.5, help="maximum RIR length in seconds")
    rir.add_argument("--hrtf", default="kemar", help="kemar (default), spherical, or a .sofa file")
    rir.add_argument("--up-axis", default="auto", choices=_UP_AXIS_CHOICES, help=_UP_AXIS_HELP)
    rir.set_defaults(func=_cmd_rir)

    # Sub-systems above the simulator own their commands: each module has add_commands(subparsers),
    # which must not import torch at module level (so `avworld --help` stays fast).
    for name in _SUBSYSTEM_CLIS:
        if _module_exists(name):
            importlib.import_module(name).add_commands(sub)
    return p


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is absent
        return False


#: Modules that add their own sub-commands (see build_parser).
_SUBSYSTEM_CLIS = ("avworld.tasks.cli", "avworld.data.cli", "avworld.train.cli", "avworld.train.tokenizer_cli",
                   "avworld.sounds.cli", "avworld.train.worldmodel_cli", "avworld.train.synthesis_cli",
                   "avworld.tasks.separation_cli", "avworld.planning.cli")


def _raised_by_avworld(exc: BaseException) -> bool:
    """Whether ``exc`` is one of avworld's typed errors, a parse error of a file, or was raised by
    avworld's own code (its innermost frame is in the package), as opposed to a ValueError from inside
    a library (a bug: shown with its traceback)."""
    if type(exc).__module__.split(".")[0] == "avworld" or isinstance(exc, (json.JSONDecodeError, UnicodeError)):
        return True  # avworld's typed errors; a file the user gave that does not parse
    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", "").split(".")[0] == "avworld"


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (2 bad input, 130 interrupted, 1 closed pipe)."""
    try:
        args = build_parser().parse_args(argv)
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below
        return status
    except ValueError as exc:  # all avworld input errors are ValueError subclasses with a fix in the message
        if not _raised_by_avworld(exc):  # e.g. a numpy shape error deep in a library: a bug, not bad input
            traceback.print_exc()
            print(f"avworld: internal error: {type(exc).__name__} raised outside avworld's checks (traceback "
                  "above); please report it with the command you ran", file=sys.stderr)
            return 1
        print(f"avworld: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Commands that resume say so themselves (and return 130); this is the plain case.
        print("avworld: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError as exc:
        if not _stdout_closed():  # another pipe broke (a worker, a subprocess): a real failure
            print(f"avworld: error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        # Output piped into `head` and friends: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not raise again (the recipe of Python's signal docs).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    try:
        import select

        poller = select.poll()  # the write end of a pipe whose reader closed polls as an error
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    sys.exit(main())
