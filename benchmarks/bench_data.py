"""Benchmark: AVW dataset generation (frames/s per core, bytes per frame) and loader throughput.

Generation: a dataset of ``--scenes`` procedural houses (``--rooms`` rooms) with
``--per-scene`` trajectories each, the default frame (128x128 RGB + 0.15 s binaural
audio at 16 kHz as float16, RGB gzip level 1 by ISA-L), built in this process pinned to one core.
The first build in the process is reported apart (it also pays the process-wide
first-time costs: lazy imports, the KEMAR HRTF load); then ``--repeats`` builds are
timed (median, min, max), each with the per-scene setup (``SceneRecorder`` construction:
scene, Embree BVH, navigation grid, renderer tables and textures, acoustic engine,
source placement; plus the source's ray trace) timed so that frames/s are reported with
and without it. A final build wraps every component of the code path (exclusive wall
time: nested components are charged to the innermost one) for the per-frame breakdown,
and checks that it wrote the same bytes as the timed builds. Before each timed build a
host probe (:func:`host_probe`: Embree single-ray throughput on fixed rays) records how fast
the shared host runs at that moment. Reported also: bytes per
frame on disk, and the size / write / read time of the same frames with other filters.

Loader: ``CDiTDataset`` samples (4 context + 4 goal frames, RGB + audio) through a
``DataLoader`` with 2 workers and batches of 64 (the process unpinned), random access
(``RandomSampler``) and block-shuffled with a per-worker trajectory cache
(``TrajectoryBlockSampler``). The cost of the per-chunk checksums: the block-shuffled loader
on the dataset as built (every chunk's Fletcher-32 checked on read) against a copy of it
rewritten without checksums (shard version 1, read with ``verify="none"``: no checks at all),
alternated ``--integrity-rounds`` times.

    .venv/bin/python benchmarks/bench_data.py [--scenes 3] [--per-scene 4] [--repeats 3] [--batches 40]
        [--no-loader | --loader-only] [--recipe avw-4k]

``--loader-only`` builds the dataset once (untimed) and measures only the loaders.

``--recipe avw-4k`` measures the paper-scale recipe's houses (6-12 rooms) and trajectories
(10-30 m paths, ~160 frames) on ``--scenes`` of its scenes.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.data.config import DatasetConfig, TrajectoryConfig, preset  # noqa: E402
from avworld.data.generate import build_dataset  # noqa: E402

# ---------------------------------------------------------------------- instrumentation
#: Labels of the breakdown, in report order, with what each one times (exclusive time: a
#: labelled call inside another labelled call is subtracted from its parent).
SETUP_LABELS = ("hrtf_load", "scene_build", "embree_bvh", "navmesh", "renderer_setup", "acoustic_setup",
                "source_placement", "source_ray_trace", "other_scene_setup")
FRAME_LABELS = ("planning", "geodesic_fields", "render", "spatial_rir", "binaural_synthesis", "rir_spectrum",
                "stream_convolution", "simulator_other", "recording_other", "hdf5_write", "checksum")


class Timers:
    """Exclusive wall time per label for wrapped functions (nested calls are charged to the inner label)."""

    def __init__(self) -> None:
        self.times: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list] = []  # [label, start, time of labelled children]
        self._undo: list = []

    def wrap(self, owner, name: str, label: str, kind: str = "function") -> None:
        raw = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        fn = raw.fget if kind == "property" else raw.__func__ if kind in ("staticmethod", "classmethod") else raw
        stack, times, calls = self._stack, self.times, self.calls

        @functools.wraps(fn)
        def wrapper(*a, **k):
            frame = [label, time.perf_counter(), 0.0]
            stack.append(frame)
            try:
                return fn(*a, **k)
            finally:
                stack.pop()
                dt = time.perf_counter() - frame[1]
                times[label] += dt - frame[2]
                calls[label] += 1
                if stack:
                    stack[-1][2] += dt

        new = {"property": lambda w: property(w), "staticmethod": staticmethod,
               "classmethod": classmethod}.get(kind, lambda w: w)(wrapper)
        setattr(owner, name, new)
        self._undo.append((owner, name, raw))

    def restore(self) -> None:
        for owner, name, raw in reversed(self._undo):
            setattr(owner, name, raw)
        self._undo.clear()


def instrument(timers: Timers, full: bool) -> None:
    """Wrap the code paths of a dataset build. ``full=False``: only the per-scene setup
    (a few calls per scene, so the timing runs stay unperturbed); ``full=True``: every
    component of the per-frame path too."""
    import avworld.data.shards as shards
    import avworld.geometry.spec as spec
    import avworld.sim.world as world
    from avworld.acoustics.spatial_rir import AcousticEngine

    timers.wrap(shards.SceneRecorder, "__init__", "other_scene_setup")
    timers.wrap(AcousticEngine, "trace", "source_ray_trace")  # a dict lookup once traced
    if not full:
        return
    from avworld.acoustics.stream import BinauralStream
    from avworld.data.storage import ShardWriter
    from avworld.geometry.navigation import NavGrid
    from avworld.geometry.raycast import RayCaster
    from avworld.sim.simulator import Simulator
    from avworld.vision.render import Renderer, RenderJob

    timers.wrap(world, "load_hrtf", "hrtf_load")
    timers.wrap(spec, "load_scene_spec", "scene_build")
    timers.wrap(RayCaster, "embree", "embree_bvh", kind="property")
    timers.wrap(NavGrid, "build", "navmesh", kind="classmethod")
    timers.wrap(Renderer, "__init__", "renderer_setup")
    timers.wrap(AcousticEngine, "__init__", "acoustic_setup")
    timers.wrap(shards, "place_source", "source_placement")
    timers.wrap(shards, "plan_trajectory", "planning")
    timers.wrap(NavGrid, "_field_for_cell", "geodesic_fields")
    timers.wrap(Renderer, "submit", "render")
    timers.wrap(RenderJob, "result", "render")
    timers.wrap(AcousticEngine, "spatial_rir", "spatial_rir")
    timers.wrap(world, "binaural_rir", "binaural_synthesis")
    if hasattr(world, "binaural_parts"):  # the split RIR path (early part + shared tail) of the simulator
        timers.wrap(world, "binaural_parts", "binaural_synthesis")
    timers.wrap(world._SpectrumCache, "__call__", "rir_spectrum")
    timers.wrap(BinauralStream, "step_per_source", "stream_convolution")
    timers.wrap(Simulator, "step", "simulator_other")
    timers.wrap(Simulator, "reset", "simulator_other")
    timers.wrap(shards, "record_trajectory", "recording_other")
    timers.wrap(shards.SceneRecorder, "record", "recording_other")
    for name in ("__init__", "append", "finish"):
        timers.wrap(ShardWriter, name, "hdf5_write")
    timers.wrap(shards, "file_sha256", "checksum")


_PROBE: dict = {}


def host_probe(seconds: float = 0.3) -> float:
    """This host's current speed: ``embreex`` single-ray throughput (million rays/s) on fixed
    camera rays in a fixed house, code this project does not change. The shared VM's speed
    drifts by up to ~30 % within minutes; the probe before each build says how fast the host
    was, so absolute frames/s from different moments can be compared."""
    if not _PROBE:
        from avworld.geometry.raycast import RayCaster
        from avworld.geometry.spec import load_scene_spec
        from avworld.vision.camera import Camera, CameraConfig

        scene = load_scene_spec("house:0:4")
        cam = Camera(CameraConfig(width=128, height=128))
        lo, hi = scene.bounds
        o, d = cam.rays(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.3), scene.floor_z)
        d = np.ascontiguousarray(np.asarray(d, np.float32).reshape(-1, 3))
        _PROBE.update(emb=RayCaster(scene).embree, d=d,
                      o=np.ascontiguousarray(np.broadcast_to(np.asarray(o, np.float32).reshape(1, 3), d.shape)))
    emb, o, d = _PROBE["emb"], _PROBE["o"], _PROBE["d"]
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        emb.run(o, d)
        n += len(d)
    return n / (time.perf_counter() - t0) / 1e6


def _build(root: Path, cfg: DatasetConfig, full: bool) -> tuple[dict, float, Timers]:
    shutil.rmtree(root / "shards", ignore_errors=True)
    (root / "manifest.json").unlink(missing_ok=True)
    timers = Timers()
    instrument(timers, full)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        manifest = build_dataset(root, cfg, workers=1, verify=False)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        timers.restore()
    timers.cpu_s = cpu
    return manifest, total, timers


def bench_generation(root: Path, cfg: DatasetConfig, repeats: int) -> dict:
    """``repeats`` timed builds (only the scene setup instrumented) after one warm-up build
    whose process-wide first-time costs (imports, HRTF load) are reported apart, then one
    build with every component instrumented for the breakdown."""
    runs = []
    for r in range(repeats + 1):
        probe = host_probe()
        manifest, total, timers = _build(root, cfg, full=False)
        frames = manifest["totals"]["all"]["frames"]
        setup = timers.times["other_scene_setup"] + timers.times["source_ray_trace"]
        runs.append({"seconds": total, "cpu_seconds": timers.cpu_s, "scene_setup_s": setup,
                     "frames_per_s": frames / total, "frames_per_s_without_scene_setup": frames / (total - setup),
                     "frames_per_cpu_s": frames / timers.cpu_s, "host_probe_mrays_per_s": probe})
        first = " (first in process)" if r == 0 else ""
        print(f"  build {r}{first} (host probe {probe:.1f} Mrays/s): {frames} frames, {total:.2f} s = "
              f"{frames / total:.1f} frames/s ({frames / (total - setup):.1f} without the scene setup, "
              f"{setup:.2f} s; CPU {timers.cpu_s:.2f} s = {frames / timers.cpu_s:.1f} frames per CPU second)",
              flush=True)
    shas = [s["sha256"] for s in manifest["shards"]]
    manifest, total, timers = _build(root, cfg, full=True)
    if [s["sha256"] for s in manifest["shards"]] != shas:
        raise AssertionError("a rebuild gave different bytes: generation is not deterministic")
    measured = sum(timers.times.values())
    ms = {k: 1e3 * timers.times.get(k, 0.0) / frames for k in SETUP_LABELS + FRAME_LABELS}
    ms["unaccounted"] = 1e3 * (total - measured) / frames
    timed = runs[1:]

    def stat(key):
        v = [x[key] for x in timed]
        return {"median": float(np.median(v)), "min": float(min(v)), "max": float(max(v)), "runs": v}

    return {
        "frames": frames,
        "trajectories": manifest["totals"]["all"]["trajectories"],
        "scenes": len({s["scene"] for s in manifest["shards"]}),
        "first_build_in_process": runs[0],
        "frames_per_s": stat("frames_per_s"),
        "frames_per_s_without_scene_setup": stat("frames_per_s_without_scene_setup"),
        "seconds": stat("seconds"),
        "frames_per_cpu_s": stat("frames_per_cpu_s"),
        "host_probe_mrays_per_s": stat("host_probe_mrays_per_s"),
        "scene_setup_s": stat("scene_setup_s"),
        "instrumented_build_s": total,
        "ms_per_frame": ms,
        "setup_ms_per_frame": sum(ms[k] for k in SETUP_LABELS),
        "per_frame_ms_per_frame": sum(ms[k] for k in FRAME_LABELS) + ms["unaccounted"],
        "calls": dict(timers.calls),
        "bytes_per_frame": manifest["totals"]["all"]["bytes_per_frame"],
    }


#: Filter settings compared by :func:`storage_breakdown` (``name: (rgb kwargs, audio kwargs)``).
#: ``direct`` in the RGB kwargs: chunks compressed by ``deflate_chunk`` at that level (ISA-L for
#: 1-3) and written with ``write_direct_chunk``, as ``ShardWriter`` does; otherwise h5py's filters.
_GZ1 = {"compression": "gzip", "compression_opts": 1}
FILTERS = {
    "none": ({}, {}),
    "gzip 1 by ISA-L, raw audio (default)": ({**_GZ1, "direct": 1}, {}),
    "gzip 1 by HDF5 (zlib), raw audio": (_GZ1, {}),
    "gzip 1": (_GZ1, _GZ1),
    "gzip 1, shuffled audio": (_GZ1, {**_GZ1, "shuffle": True}),
    "gzip 4": ({**_GZ1, "compression_opts": 4},) * 2,
    "gzip 9": ({**_GZ1, "compression_opts": 9},) * 2,
    "lzf": ({"compression": "lzf"},) * 2,
}


def _write_rgb(g, rgb: np.ndarray, kw: dict) -> None:
    from avworld.data.storage import deflate_chunk

    kw = dict(kw)
    level = kw.pop("direct", None)
    if level is None:
        g.create_dataset("rgb", data=rgb, chunks=(1, *rgb.shape[1:]), **kw)
        return
    d = g.create_dataset("rgb", shape=rgb.shape, dtype=rgb.dtype, chunks=(1, *rgb.shape[1:]), **kw)
    for i in range(len(rgb)):
        d.id.write_direct_chunk((i, 0, 0, 0), deflate_chunk(rgb[i].tobytes(), level))


def storage_breakdown(root: Path) -> dict:
    """Per-frame storage of RGB / audio, and the same frames rewritten (one chunk per frame)
    with other filters: size, write and read (frame by frame: h5py, and the dataset reader's
    ``read_frames``) time per frame."""
    import h5py

    from avworld.data.storage import direct_readable, read_frames

    shards = sorted((root / "shards").glob("*.h5"))
    with h5py.File(shards[0]) as f:
        n = f["rgb"].shape[0]
        rgb, audio = f["rgb"][:], f["audio"][:]
        out = {"shard": shards[0].name, "frames": n,
               "rgb_bytes_per_frame": f["rgb"].id.get_storage_size() / n,
               "audio_bytes_per_frame": f["audio"].id.get_storage_size() / n,
               "rgb_filters": list(f["rgb"]._filters), "audio_filters": list(f["audio"]._filters),
               "filters": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kw_rgb, kw_audio) in FILTERS.items():
            path = Path(tmp) / "f.h5"
            t = time.perf_counter()
            with h5py.File(path, "w") as g:
                _write_rgb(g, rgb, kw_rgb)
                g.create_dataset("audio", data=audio, chunks=(1, *audio.shape[1:]), **kw_audio)
            write_ms = 1e3 * (time.perf_counter() - t) / n
            t = time.perf_counter()
            with h5py.File(path) as g:  # through h5py's filter pipeline
                for i in range(n):
                    g["rgb"][i]
                    g["audio"][i]
            read_ms = 1e3 * (time.perf_counter() - t) / n
            t = time.perf_counter()
            with h5py.File(path) as g:  # as the dataset reader reads (ISA-L for deflate-only chunks)
                rgb_ds, audio_ds = g["rgb"], g["audio"]
                direct = direct_readable(rgb_ds), direct_readable(audio_ds)
                for i in range(n):
                    read_frames(rgb_ds, slice(i, i + 1), direct[0])
                    read_frames(audio_ds, slice(i, i + 1), direct[1])
            reader_ms = 1e3 * (time.perf_counter() - t) / n
            out["filters"][name] = {"bytes_per_frame": path.stat().st_size / n, "write_ms_per_frame": write_ms,
                                    "read_ms_per_frame": read_ms, "reader_read_ms_per_frame": reader_ms}
            path.unlink()
    return out


def without_checksums(src: Path, dst: Path) -> Path:
    """A copy of the dataset at ``src`` as shard version 1 wrote it: the same chunks (the
    compressed ones copied byte for byte, their checksums stripped) without the fletcher32
    filter; the manifest's records updated (size, SHA-256, no ``chunk_checksums``)."""
    import json

    import h5py

    from avworld.data.storage import file_sha256

    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for rec in manifest["shards"]:
        path = dst / rec["path"]
        tmp = path.with_suffix(".v1")
        with h5py.File(path, "r") as f, h5py.File(tmp, "w", libver=("earliest", "v110")) as g:
            def copy(name, obj, f=f, g=g):
                if not isinstance(obj, h5py.Dataset):
                    return
                per_frame = obj.ndim > 1 and obj.chunks[0] == 1
                if per_frame and obj.compression:
                    d = g.create_dataset(name, shape=obj.shape, dtype=obj.dtype, chunks=obj.chunks,
                                         compression=obj.compression, compression_opts=obj.compression_opts,
                                         track_times=False)
                    zeros = (0,) * (obj.ndim - 1)
                    for i in range(obj.shape[0]):
                        _, chunk = obj.id.read_direct_chunk((i, *zeros))
                        d.id.write_direct_chunk((i, *zeros), chunk[:-4])  # without the Fletcher-32
                else:
                    g.create_dataset(name, data=obj[()], chunks=obj.chunks if per_frame else None,
                                     track_times=False)
            f.visititems(copy)
            for k, v in f.attrs.items():
                g.attrs[k] = v
            g.attrs["version"] = 1
        os.replace(tmp, path)
        rec.pop("chunk_checksums", None)
        rec.update(bytes=path.stat().st_size, sha256=file_sha256(path))
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return dst


def read_cost(checked: Path, unchecked: Path, rounds: int) -> dict:
    """CPU ms per frame (RGB + audio, ``AVWDataset.frames`` over every trajectory, this process)
    reading the dataset with per-chunk checksums against the copy without, alternated ``rounds``
    times: CPU time, so that other processes on a shared host disturb it less than wall time."""
    import warnings

    from avworld.data.reader import AVWDataset, UncheckedShardsWarning

    out = {"checked_cpu_ms_per_frame": [], "unchecked_cpu_ms_per_frame": []}
    for _ in range(rounds):
        for key, root in (("checked_cpu_ms_per_frame", checked), ("unchecked_cpu_ms_per_frame", unchecked)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UncheckedShardsWarning)
                data = AVWDataset(root, verify="none")
            for i in range(len(data)):  # warm: files open, pages cached
                data.small(i)
            t = time.process_time()
            for i in range(len(data)):
                data.frames(i, "rgb", slice(None))
                data.frames(i, "audio", slice(None))
            out[key].append(1e3 * (time.process_time() - t) / data.num_frames)
            data.close()
    return {**out, **{k + "_median": float(np.median(v)) for k, v in out.items()}}


def bench_loader(root: Path, batches: int, batch_size: int = 64, workers: int = 2,
                 integrity_rounds: int = 2) -> dict:
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from avworld.data.loaders import CDiTDataset, TrajectoryBlockSampler, worker_init

    def run(ds, sampler, workers: int = workers) -> float:
        loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                            persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
                            worker_init_fn=worker_init if workers else None)
        it = iter(loader)
        for _ in range(3):  # warm-up: workers started, files opened
            next(it)
        t = time.perf_counter()
        n = 0
        for _ in range(batches):
            try:
                b = next(it)
            except StopIteration:
                it = iter(loader)
                b = next(it)
            n += len(b["t"])
        dt = time.perf_counter() - t
        del it
        return n / dt

    torch.set_num_threads(1)
    plain = CDiTDataset(root, split=None)
    cached = CDiTDataset(root, split=None, cache_trajectories=8)
    gen = torch.Generator().manual_seed(0)
    integrity = {"checked_samples_per_s": [], "unchecked_samples_per_s": []}
    if integrity_rounds:
        import warnings

        from avworld.data.reader import UncheckedShardsWarning

        unchecked_root = without_checksums(root, root.parent / f"{root.name}-v1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UncheckedShardsWarning)
            unchecked = CDiTDataset(unchecked_root, split=None, cache_trajectories=8, verify="none")
        try:
            integrity["read"] = read_cost(root, unchecked_root, 2 * integrity_rounds)
            r = integrity["read"]
            print(f"  reading RGB + audio: {r['checked_cpu_ms_per_frame_median']:.3f} CPU ms per frame with "
                  f"per-chunk checksums, {r['unchecked_cpu_ms_per_frame_median']:.3f} without", flush=True)
            for _ in range(integrity_rounds):  # alternated: the shared host drifts
                for key, ds in (("checked_samples_per_s", cached), ("unchecked_samples_per_s", unchecked)):
                    rate = run(ds, TrajectoryBlockSampler(ds, block=4, streams=workers, batch_size=batch_size))
                    integrity[key].append(rate)
                    print(f"  loader, {key.split('_')[0]:>9} chunks: {rate:.0f} samples/s", flush=True)
        finally:
            shutil.rmtree(unchecked_root, ignore_errors=True)
        for key in ("checked_samples_per_s", "unchecked_samples_per_s"):
            integrity[key + "_median"] = float(np.median(integrity[key]))
    return {
        "integrity": integrity,
        "samples": len(plain),
        "batch_size": batch_size,
        "workers": workers,
        "random_access_samples_per_s": run(plain, RandomSampler(plain, replacement=True,
                                                                num_samples=10**7, generator=gen)),
        "block_shuffled_cached_samples_per_s": run(cached, TrajectoryBlockSampler(
            cached, block=4, streams=workers, batch_size=batch_size)),
        "block_shuffled_cached_in_process_samples_per_s": run(
            CDiTDataset(root, split=None, cache_trajectories=8), TrajectoryBlockSampler(cached, block=4), workers=0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default=None, choices=["avw-tiny", "avw-small", "avw-4k"],
                    help="a dataset preset's houses and trajectories (with --scenes / --per-scene) instead of "
                         "--rooms-room houses and the default trajectories")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--rooms", type=int, default=None, help="rooms per house (default 4; not with --recipe)")
    ap.add_argument("--per-scene", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="timed builds after the first one")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--no-loader", action="store_true", help="generation and storage only")
    ap.add_argument("--loader-only", action="store_true", help="build once (untimed), measure the loaders only")
    ap.add_argument("--integrity-rounds", type=int, default=2,
                    help="alternations of the loader with and without per-chunk checksums (0: skip)")
    ap.add_argument("--keep", default=None, help="build the dataset here and keep it (default: a temp dir)")
    ap.add_argument("--out", default="benchmarks/results/data.json")
    args = ap.parse_args()
    if args.recipe and args.rooms is not None:
        ap.error("--rooms does not apply to --recipe (the recipe sets its houses' rooms)")
    args.rooms = 4 if args.rooms is None else args.rooms
    if args.recipe:
        cfg = preset(args.recipe, num_scenes=args.scenes, trajectories_per_scene=args.per_scene,
                     trajectories_per_shard=args.per_scene)
    else:
        cfg = DatasetConfig(name="bench", num_scenes=args.scenes, rooms=(args.rooms, args.rooms),
                            trajectories_per_scene=args.per_scene, trajectories_per_shard=args.per_scene,
                            trajectory=TrajectoryConfig())
    cpus = os.sched_getaffinity(0)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="avw-bench-"))
    loader = gen = storage = None
    pinned = False
    try:
        if args.loader_only:
            build_dataset(tmp, cfg, workers=1)
        else:
            pinned = pin_to_one_core()
            gen = bench_generation(tmp, cfg, args.repeats)
            storage = storage_breakdown(tmp)
            os.sched_setaffinity(0, cpus)  # the loader's workers get every core
        if not args.no_loader:
            loader = bench_loader(tmp, args.batches, integrity_rounds=args.integrity_rounds)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = {"benchmark": "avw_data", "machine": machine_info(), "load_average": os.getloadavg(),
              "generation_pinned_one_core": pinned, "config": cfg.to_dict(), "generation": gen,
              "storage": storage, "loader": loader}
    if gen is None:
        _print_loader(loader)
        print("saved", save_json(result, args.out))
        return
    f, fw = gen["frames_per_s"], gen["frames_per_s_without_scene_setup"]
    first = gen["first_build_in_process"]
    print(f"generation: {gen['frames']} frames, {gen['trajectories']} trajectories, {gen['scenes']} scenes, one core")
    print(f"  first build in the process: {first['frames_per_s']:.1f} frames/s "
          f"({first['frames_per_s_without_scene_setup']:.1f} without the scene setup)")
    print(f"  next {len(f['runs'])} builds: {f['median']:.1f} frames/s (min {f['min']:.1f}, max {f['max']:.1f}); "
          f"without the scene setup {fw['median']:.1f} (min {fw['min']:.1f}, max {fw['max']:.1f}); "
          f"per CPU second {gen['frames_per_cpu_s']['median']:.1f}; host probe "
          f"{gen['host_probe_mrays_per_s']['median']:.1f} Mrays/s (see host_probe)")
    print(f"  breakdown (instrumented build, {gen['instrumented_build_s']:.2f} s), ms per frame:")
    for k, v in gen["ms_per_frame"].items():
        print(f"  {k:>20}: {v:6.2f}{'   (setup)' if k in SETUP_LABELS else ''}")
    print(f"  {'setup total':>20}: {gen['setup_ms_per_frame']:6.2f}; per-frame total "
          f"{gen['per_frame_ms_per_frame']:.2f}")
    print(f"on disk: {gen['bytes_per_frame'] / 1e3:.1f} kB/frame (RGB {storage['rgb_bytes_per_frame'] / 1e3:.1f} kB, "
          f"audio {storage['audio_bytes_per_frame'] / 1e3:.1f} kB)")
    for name, s in storage["filters"].items():
        print(f"  {name:>28}: {s['bytes_per_frame'] / 1e3:6.1f} kB/frame, write {s['write_ms_per_frame']:.2f} ms, "
              f"read {s['read_ms_per_frame']:.2f} ms (h5py), {s['reader_read_ms_per_frame']:.2f} ms (reader) per frame")
    _print_loader(loader)
    print("saved", save_json(result, args.out))


def _print_loader(loader: dict | None) -> None:
    if loader is None:
        return
    print(f"loader ({loader['workers']} workers, batch {loader['batch_size']}): random access "
          f"{loader['random_access_samples_per_s']:.0f} samples/s, block-shuffled + cache "
          f"{loader['block_shuffled_cached_samples_per_s']:.0f} samples/s (in the main process, no workers: "
          f"{loader['block_shuffled_cached_in_process_samples_per_s']:.0f} samples/s)")
    integ = loader["integrity"]
    if integ["checked_samples_per_s"]:
        print(f"  per-chunk checksums, block-shuffled + cache: checked {integ['checked_samples_per_s_median']:.0f} "
              f"samples/s, without checksums {integ['unchecked_samples_per_s_median']:.0f} samples/s (medians of "
              f"{len(integ['checked_samples_per_s'])} alternated runs)")


if __name__ == "__main__":
    main()
