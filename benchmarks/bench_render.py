"""Rendering throughput on one CPU core: RGB-D frames per second vs raw Embree.

    .venv/bin/python benchmarks/bench_render.py [--frames N] [--out benchmarks/results/render.json]

Scene: ``generate_house(HouseConfig(num_rooms=6), seed=0)``; poses sampled on its
navigation grid. For every pose the renderer is timed one frame at a time (as an
agent uses it) for RGB+depth, depth only and all outputs, plus a batched call; the
*raw* figure times ``EmbreeScene.run`` alone on exactly the same rays (origins and
directions prepared outside the timed loop), both the cheapest call (face ids only)
and the one the single-ray path makes (``output=1``: face, distance, barycentrics), and,
where the renderer uses Embree packets (:mod:`avworld.geometry.embree_packets`), the
packet tracer alone on the same rays in tile order (``raw_embree_packets``). Rounds
alternate between the variants and the best round is reported (median also saved).
The process pins itself to one core and limits BLAS/OpenMP threads to 1; with
``--threads k`` (default 2) and at least k allowed cores, one more variant renders RGB-D
with ``Renderer(..., threads=k)`` on k cores (bit-identical images, see ``vision/render.py``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TBB_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from avworld.vision.camera import CameraConfig  # noqa: E402
from avworld.vision.render import Renderer  # noqa: E402


def build_scene(num_rooms: int = 6, seed: int = 0):
    try:
        from avworld.geometry.procedural import HouseConfig, generate_house
    except ImportError:  # pragma: no cover - only before the generator existed
        return _fallback_house(), "fallback SceneBuilder house (procedural generator unavailable)"
    desc = f"generate_house(HouseConfig(num_rooms={num_rooms}), seed={seed})"
    return generate_house(HouseConfig(num_rooms=num_rooms), seed=seed), desc


def _fallback_house():
    from avworld.geometry.builder import SceneBuilder
    from avworld.geometry.scene import Room, SceneObject

    rng = np.random.default_rng(0)
    b = SceneBuilder()
    size, t = 4.0, 0.15
    k = 0
    for i in range(3):
        for j in range(2):
            x0, y0 = i * size, j * size
            b.add_box((x0, y0, -0.1), (x0 + size, y0 + size, 0), "wood_floor", "floor")
            b.add_box((x0, y0, 2.7), (x0 + size, y0 + size, 2.8), "ceiling_plaster", "ceiling")
            b.rooms.append(Room(k, "room", ((x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size))))
            for _ in range(5):
                lo = np.array([x0 + 0.6 + rng.uniform(0, 2.4), y0 + 0.6 + rng.uniform(0, 2.4), 0.0])
                hi = lo + rng.uniform([0.4, 0.4, 0.4], [1.0, 1.0, 1.8])
                b.add_box(lo, hi, "wood_furniture", "table", instance=len(b.objects), skip=("bottom",))
                b.objects.append(SceneObject(len(b.objects), "table", tuple(lo), tuple(hi), k))
            k += 1
    for i in range(4):
        b.add_box((i * size - t / 2, 0, 0), (i * size + t / 2, 2 * size, 2.7), "plaster", "wall")
    for j in range(3):
        b.add_box((0, j * size - t / 2, 0), (3 * size, j * size + t / 2, 2.7), "plaster", "wall")
    return b.build()


def sample_poses(scene, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    try:
        from avworld.geometry.navigation import NavGrid

        xy = NavGrid.build(scene).sample_navigable(rng, n)
    except Exception:  # pragma: no cover - navigation unavailable: random points in rooms
        pts = []
        while len(pts) < n:
            room = scene.rooms[rng.integers(len(scene.rooms))]
            lo, hi = room.polygon_array.min(0) + 0.3, room.polygon_array.max(0) - 0.3
            pts.append(rng.uniform(lo, hi))
        xy = np.array(pts)
    return np.concatenate([xy, rng.uniform(-np.pi, np.pi, (n, 1))], axis=1)


def machine_info() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import embreex

        embreex_version = getattr(embreex, "__version__", None)
        if embreex_version is None:
            from importlib.metadata import version

            embreex_version = version("embreex")
    except Exception:
        embreex_version = None
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "embreex": embreex_version,
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="poses per round (default 300)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per variant (default 5)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--rooms", type=int, default=6, help="rooms of the generated house (default 6)")
    ap.add_argument("--seed", type=int, default=0, help="house seed (default 0)")
    ap.add_argument("--batch", type=int, default=16, help="batch size of the batched variant")
    ap.add_argument("--cpu", type=int, default=None, help="core to pin to (default: first allowed core)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    ap.add_argument("--threads", type=int, default=2,
                    help="also time RGB-D with this many renderer threads on as many cores (if allowed; 1 = skip)")
    ap.add_argument("--out", default="benchmarks/results/render.json", help="JSON output path ('' = none)")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.rounds < 1 or args.batch < 1:
        ap.error("--frames, --rounds and --batch must be >= 1")

    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    one_core = None
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        one_core = {cpu}
        os.sched_setaffinity(0, one_core)

    scene, scene_desc = build_scene(args.rooms, args.seed)
    config = CameraConfig(width=args.width, height=args.height)
    t0 = time.perf_counter()
    renderer = Renderer(scene, config)
    renderer.render((0.0, 0.0, 0.0), outputs=("depth",))  # builds the BVH: not part of the timings
    init_s = time.perf_counter() - t0
    poses = sample_poses(scene, args.frames)
    emb = renderer.raycaster.embree
    cam = renderer.camera
    npix = config.num_pixels

    # the renderer's exact rays, prepared outside the timed loop
    rays = []
    for p in poses:
        planar = np.empty((3, 1, npix), np.float32)
        cam.world_directions(p[2:3], out=planar.transpose(1, 2, 0))
        o = np.broadcast_to(cam.origins(p[None], renderer.floor_z).astype(np.float32)[0], (npix, 3))
        rays.append((o, planar.reshape(3, npix).T))
    # the same rays in the packets' 4x4 tile order (what the renderer traces where packets are available)
    tiled = [(o[0], np.ascontiguousarray(renderer._to_internal(d.T))) for o, d in rays]
    # sanity: the raw call sees what the renderer sees (packets may pick the other face of an edge tie)
    for i in range(min(5, len(poses))):
        sem = renderer.render(poses[i], outputs=("semantic",))["semantic"].reshape(-1)
        face = emb.run(*rays[i])
        expect = np.where(face >= 0, scene.face_semantic[np.maximum(face, 0)], 0)
        agree = np.mean(sem == expect)
        assert agree >= (0.99 if renderer.uses_packets else 1.0), f"renderer and raw Embree rays differ ({agree:.4f})"

    def per_frame(fn):
        t = time.perf_counter()
        for i in range(len(poses)):
            fn(i)
        return (time.perf_counter() - t) / len(poses)

    batches = [poses[i : i + args.batch] for i in range(0, len(poses), args.batch)]

    def batched():
        t = time.perf_counter()
        for b in batches:
            renderer.render_batch(b, ("rgb", "depth"))
        return (time.perf_counter() - t) / len(poses)

    threaded = None
    if args.threads > 1 and len(allowed) >= args.threads:
        # its worker threads start on first use and keep the affinity of that moment (k cores)
        threaded = Renderer(scene, config, renderer.raycaster, threads=args.threads)
        cores = set(([min(one_core)] if one_core else []) + [c for c in allowed if not one_core or c not in one_core])
        cores = set(sorted(cores)[: args.threads])

    def with_threads():
        if one_core is not None:
            os.sched_setaffinity(0, cores)
        try:
            return per_frame(lambda i: threaded.render(poses[i], ("rgb", "depth")))
        finally:
            if one_core is not None:
                os.sched_setaffinity(0, one_core)

    variants = {
        "raw_embree_ids": lambda: per_frame(lambda i: emb.run(*rays[i])),
        "raw_embree_output1": lambda: per_frame(lambda i: emb.run(*rays[i], output=1)),
        "rgb_depth": lambda: per_frame(lambda i: renderer.render_batch(poses[i : i + 1], ("rgb", "depth"))),
        "depth": lambda: per_frame(lambda i: renderer.render_batch(poses[i : i + 1], ("depth",))),
        "rgb_depth_semantic": lambda: per_frame(lambda i: renderer.render_batch(poses[i : i + 1])),
        f"rgb_depth_batch{args.batch}": batched,
    }
    if renderer.uses_packets:
        variants["raw_embree_packets"] = lambda: per_frame(lambda i: renderer._packets.trace(*tiled[i]))
    if threaded is not None:
        variants[f"rgb_depth_{args.threads}threads_{args.threads}cores"] = with_threads
    for fn in variants.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for k, fn in variants.items():
            times[k].append(fn())

    fps = {k: 1.0 / min(v) for k, v in times.items()}
    fps_median = {k: 1.0 / float(np.median(v)) for k, v in times.items()}
    raw = fps["raw_embree_ids"]
    result = {
        "scene": scene_desc,
        "num_faces": int(scene.num_faces),
        "resolution": [config.width, config.height],
        "hfov_deg": config.hfov_deg,
        "frames_per_round": len(poses),
        "rounds": args.rounds,
        "renderer_init_s": round(init_s, 3),
        "fps": {k: round(v, 1) for k, v in fps.items()},
        "fps_median": {k: round(v, 1) for k, v in fps_median.items()},
        "us_per_ray_raw": round(1e6 / (raw * npix), 4),
        "ratio_rgb_depth_vs_raw": round(fps["rgb_depth"] / raw, 3),
        "ratio_depth_vs_raw": round(fps["depth"] / raw, 3),
        "ratio_rgb_depth_vs_raw_output1": round(fps["rgb_depth"] / fps["raw_embree_output1"], 3),
        "targets": {"rgb_depth_fps>=300": fps["rgb_depth"] >= 300, "ratio>=0.6": fps["rgb_depth"] / raw >= 0.6},
        "machine": machine_info(),
        "pinned_to_one_core": not args.no_pin,
    }

    print(f"scene: {scene_desc}  faces={scene.num_faces}  {config.width}x{config.height}  "
          f"hfov={config.hfov_deg:g}  frames/round={len(poses)} rounds={args.rounds}")
    print(f"machine: {result['machine']['cpu']}  affinity={result['machine']['affinity']}")
    print(f"{'variant':28s} {'fps (best)':>11s} {'fps (median)':>13s} {'ms/frame':>9s} {'vs raw':>7s}")
    for k in variants:
        print(f"{k:28s} {fps[k]:11.1f} {fps_median[k]:13.1f} {1e3 / fps[k]:9.3f} {fps[k] / raw:7.2f}")
    print(f"raw Embree: {result['us_per_ray_raw']} us/ray; RGB-D / raw = {result['ratio_rgb_depth_vs_raw']:.2f}; "
          f"targets: {result['targets']}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {out}")
    return result


if __name__ == "__main__":
    main()
