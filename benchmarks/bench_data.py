"""Benchmark: AVW dataset generation (frames/s per core, bytes per frame) and loader throughput.

Generation: a dataset of ``--scenes`` procedural houses (``--rooms`` rooms) with
``--per-scene`` trajectories each, the default frame (128x128 RGB + 0.15 s binaural
audio at 16 kHz as float16, gzip level 1), built in this process pinned to one core.
Reported: frames/s over the whole build (scene setup included) and over the recording
alone, the share of each component (rendering, binaural RIRs, streaming convolution,
HDF5 writing, planning), bytes per frame on disk, and the size / write time of the
same frames at other gzip levels.

Loader: ``CDiTDataset`` samples (4 context + 4 goal frames, RGB + audio) through a
``DataLoader`` with 2 workers and batches of 64 (the process unpinned), random access
(``RandomSampler``) and block-shuffled with a per-worker trajectory cache
(``TrajectoryBlockSampler``).

    .venv/bin/python benchmarks/bench_data.py [--scenes 3] [--per-scene 4] [--batches 40]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, pin_to_one_core, save_json  # noqa: E402
from avworld.data.config import DatasetConfig, TrajectoryConfig  # noqa: E402
from avworld.data.generate import build_dataset  # noqa: E402

TIMES: dict[str, float] = defaultdict(float)


def _timed(owner, name: str, label: str) -> None:
    """Wrap ``owner.name`` so that its wall time accumulates in TIMES[label]."""
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            TIMES[label] += time.perf_counter() - t

    setattr(owner, name, wrapper)


def instrument() -> None:
    import avworld.data.shards as shards
    from avworld.acoustics.stream import BinauralStream
    from avworld.data.storage import ShardWriter
    from avworld.sim.world import SharedWorld
    from avworld.vision.render import Renderer

    _timed(Renderer, "render", "render")
    _timed(SharedWorld, "binaural", "binaural_rir")
    _timed(BinauralStream, "step_per_source", "stream_convolution")
    _timed(ShardWriter, "append", "hdf5_write")
    _timed(ShardWriter, "finish", "hdf5_write")
    _timed(shards, "plan_trajectory", "planning")
    _timed(shards, "record_trajectory", "recording")
    _timed(shards.SceneRecorder, "__init__", "scene_setup")


def bench_generation(root: Path, cfg: DatasetConfig) -> dict:
    instrument()
    t0 = time.perf_counter()
    manifest = build_dataset(root, cfg, workers=1, verify=False)
    total = time.perf_counter() - t0
    frames = manifest["totals"]["all"]["frames"]
    rec_s = TIMES["recording"]
    parts = {k: TIMES[k] for k in ("render", "binaural_rir", "stream_convolution")}
    parts["other_simulator"] = rec_s - sum(parts.values())
    parts.update({k: TIMES[k] for k in ("hdf5_write", "planning", "scene_setup")})
    return {
        "frames": frames,
        "trajectories": manifest["totals"]["all"]["trajectories"],
        "seconds": total,
        "frames_per_s": frames / total,
        "frames_per_s_recording_and_writing": frames / (rec_s + TIMES["hdf5_write"]),
        "ms_per_frame": {k: 1e3 * v / frames for k, v in parts.items()},
        "bytes_per_frame": manifest["totals"]["all"]["bytes_per_frame"],
    }


def storage_breakdown(root: Path, levels=(0, 1, 4, 9)) -> dict:
    """Per-frame storage of RGB / audio, and the same frames rewritten at other gzip levels."""
    import h5py

    shard = sorted((root / "shards").glob("*.h5"))[0]
    with h5py.File(shard) as f:
        n = f["rgb"].shape[0]
        rgb, audio = f["rgb"][:], f["audio"][:]
        out = {"rgb_bytes_per_frame": f["rgb"].id.get_storage_size() / n,
               "audio_bytes_per_frame": f["audio"].id.get_storage_size() / n}
    with tempfile.TemporaryDirectory() as tmp:
        for level in levels:
            kw = {"compression": "gzip", "compression_opts": level} if level else {}
            t = time.perf_counter()
            with h5py.File(Path(tmp) / f"l{level}.h5", "w") as g:
                g.create_dataset("rgb", data=rgb, chunks=(1, *rgb.shape[1:]), **kw)
                g.create_dataset("audio", data=audio, chunks=(1, *audio.shape[1:]), **kw)
            write_ms = 1e3 * (time.perf_counter() - t) / n
            t = time.perf_counter()
            with h5py.File(Path(tmp) / f"l{level}.h5") as g:
                for i in range(n):
                    g["rgb"][i]
                    g["audio"][i]
            read_ms = 1e3 * (time.perf_counter() - t) / n
            size = (Path(tmp) / f"l{level}.h5").stat().st_size
            out[f"gzip_{level}"] = {"bytes_per_frame": size / n, "write_ms_per_frame": write_ms,
                                    "read_ms_per_frame": read_ms}
    return out


def bench_loader(root: Path, batches: int, batch_size: int = 64, workers: int = 2) -> dict:
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from avworld.data.loaders import CDiTDataset, TrajectoryBlockSampler

    def run(ds, sampler, workers: int = workers) -> float:
        loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                            persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
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
    return {
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
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--per-scene", type=int, default=4)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--keep", default=None, help="build the dataset here and keep it (default: a temp dir)")
    ap.add_argument("--out", default="benchmarks/results/data.json")
    args = ap.parse_args()
    cfg = DatasetConfig(name="bench", num_scenes=args.scenes, rooms=(args.rooms, args.rooms),
                        trajectories_per_scene=args.per_scene, trajectories_per_shard=args.per_scene,
                        trajectory=TrajectoryConfig())
    cpus = os.sched_getaffinity(0)
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="avw-bench-"))
    shutil.rmtree(tmp / "shards", ignore_errors=True)
    (tmp / "manifest.json").unlink(missing_ok=True)
    try:
        pinned = pin_to_one_core()
        gen = bench_generation(tmp, cfg)
        storage = storage_breakdown(tmp)
        os.sched_setaffinity(0, cpus)  # the loader's workers get every core
        loader = bench_loader(tmp, args.batches)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    result = {"benchmark": "avw_data", "machine": machine_info(), "generation_pinned_one_core": pinned,
              "config": cfg.to_dict(), "generation": gen, "storage": storage, "loader": loader}
    print(f"generation: {gen['frames']} frames in {gen['seconds']:.1f} s on one core = "
          f"{gen['frames_per_s']:.1f} frames/s ({gen['frames_per_s_recording_and_writing']:.1f} without scene setup)")
    for k, v in gen["ms_per_frame"].items():
        print(f"  {k:>20}: {v:6.2f} ms/frame")
    print(f"on disk: {gen['bytes_per_frame'] / 1e3:.1f} kB/frame (RGB {storage['rgb_bytes_per_frame'] / 1e3:.1f} kB, "
          f"audio {storage['audio_bytes_per_frame'] / 1e3:.1f} kB)")
    for level in (0, 1, 4, 9):
        s = storage[f"gzip_{level}"]
        print(f"  gzip {level}: {s['bytes_per_frame'] / 1e3:6.1f} kB/frame, write {s['write_ms_per_frame']:.2f} ms, "
              f"read {s['read_ms_per_frame']:.2f} ms per frame")
    print(f"loader ({loader['workers']} workers, batch {loader['batch_size']}): random access "
          f"{loader['random_access_samples_per_s']:.0f} samples/s, block-shuffled + cache "
          f"{loader['block_shuffled_cached_samples_per_s']:.0f} samples/s (in the main process, no workers: "
          f"{loader['block_shuffled_cached_in_process_samples_per_s']:.0f} samples/s)")
    print("saved", save_json(result, args.out))


if __name__ == "__main__":
    main()
