"""A loader for RWAVS-style real recordings (AV-NeRF's public dataset layout) for π-AVAS training.

Layout (one folder per recorded video, as released)::

    ROOT/position.json                  {"<video>": {"source_position": [x, y, z]}, ...}
    ROOT/<video>/source_syn_re.wav      the source audio (mono; source_syn.wav also read)
    ROOT/<video>/binaural_syn_re.wav    the binaural recording (2 channels; binaural_syn.wav also read)
    ROOT/<video>/transforms_scale_train.json, transforms_scale_val.json
                                        {"camera_path": [{"camera_to_world": 16 numbers (4x4, row-major),
                                                          "file_path": "frames/00012.png"}, ...]}
    ROOT/<video>/binaural_sim.wav       optional, ours: x_sim aligned in time with the recording

A key frame named ``N.png`` sits at second N; its clip is the audio of [N - clip_s / 2, N + clip_s / 2)
(AV-NeRF: 1 s at 22,050 Hz). The listener position is the camera's translation (x, y, z) and its yaw the
direction of the camera matrix's third column in the x-y plane, as AV-NeRF reads them. The real
dataset has no x_sim: give each video a ``binaural_sim.wav`` from your own physics (for example
`avworld`'s engine on a mesh of the room), or pass ``allow_missing_sim=True`` to get zeros (the pure
neural baseline only). :func:`convert` writes the clips as a π-AVAS data folder, with the seed's split
(the first video of each environment trains, the others are held out), so ``avworld synthesis train``
runs on it unchanged.
"""

from __future__ import annotations

import json
from math import gcd
from pathlib import Path

import numpy as np

from avworld.data.synthesis import FORMAT, VERSION, _write_atomic, file_name
from avworld.data.synthesis_scenes import LengthMismatchError, SynthesisDataError


class RWAVSFolderError(SynthesisDataError):
    """A RWAVS-style folder lacks a file or has one that cannot be used."""


def _read(folder: Path, names: tuple[str, ...], rate: int, channels: int) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    for n in names:
        if (folder / n).exists():
            x, sr = sf.read(folder / n, dtype="float64", always_2d=True)
            x = x.T
            if x.shape[0] != channels:
                raise RWAVSFolderError(f"{folder / n}: {x.shape[0]} channels, expected {channels}")
            if sr != rate:
                g = gcd(int(sr), int(rate))
                x = resample_poly(x, rate // g, sr // g, axis=1)
            return x.astype(np.float32)
    raise RWAVSFolderError(f"{folder}: none of {names} found")


def _yaw(c2w: np.ndarray) -> float:
    ori = c2w[:2, 2]
    return float(np.arctan2(ori[1], ori[0]))


def load_video(root: str | Path, video: str, split: str = "train", sample_rate_hz: int = 22050,
               clip_s: float = 1.0, allow_missing_sim: bool = False) -> dict:
    """One video's clips: x_tx (N, T), x_rx and x_sim (N, 2, T), poses (N, 4), source (3,), times (N,)."""
    root = Path(root)
    folder = root / str(video)
    if not folder.is_dir():
        raise RWAVSFolderError(f"{folder}: no such video folder")
    pos_file = root / "position.json"
    if not pos_file.exists():
        raise RWAVSFolderError(f"{pos_file}: missing (source positions per video)")
    positions = json.loads(pos_file.read_text())
    if str(video) not in positions:
        raise RWAVSFolderError(f"{pos_file}: no entry for video {video!r}")
    source = np.zeros(3)
    sp = np.asarray(positions[str(video)]["source_position"], np.float64)
    source[: len(sp)] = sp[:3]
    tf = folder / f"transforms_scale_{split}.json"
    if not tf.exists():
        raise RWAVSFolderError(f"{tf}: missing (camera poses of split {split!r})")
    rx = _read(folder, ("binaural_syn_re.wav", "binaural_syn.wav"), sample_rate_hz, 2)
    tx = _read(folder, ("source_syn_re.wav", "source_syn.wav"), sample_rate_hz, 1)[0]
    if (folder / "binaural_sim.wav").exists():
        sim = _read(folder, ("binaural_sim.wav",), sample_rate_hz, 2)
    elif allow_missing_sim:
        sim = np.zeros_like(rx)
    else:
        raise RWAVSFolderError(f"{folder}: no binaural_sim.wav (x_sim); simulate one aligned with the recording, "
                               "or pass allow_missing_sim=True for the pure neural baseline only")
    if abs(len(tx) - rx.shape[1]) > sample_rate_hz or sim.shape[1] != rx.shape[1]:
        raise LengthMismatchError(f"{folder}: source {len(tx)}, binaural {rx.shape[1]} and x_sim {sim.shape[1]} "
                                  "samples; the files must cover the same recording")
    n_all = min(len(tx), rx.shape[1])
    T = int(round(clip_s * sample_rate_hz))
    rows = {"x_tx": [], "x_rx": [], "x_sim": [], "poses": [], "times": []}
    for item in json.loads(tf.read_text())["camera_path"]:
        c2w = np.asarray(item["camera_to_world"], np.float64).reshape(4, 4)
        second = int(Path(item["file_path"]).stem)
        start = int(round((second - clip_s / 2) * sample_rate_hz))
        if start < 0 or start + T > n_all:
            continue  # a key frame too close to either end of the recording
        rows["x_tx"].append(tx[start:start + T])
        rows["x_rx"].append(rx[:, start:start + T])
        rows["x_sim"].append(sim[:, start:start + T])
        rows["poses"].append([c2w[0, 3], c2w[1, 3], c2w[2, 3], _yaw(c2w)])
        rows["times"].append(second)
    if not rows["x_tx"]:
        raise RWAVSFolderError(f"{tf}: no key frame has a whole {clip_s} s clip inside the recording")
    out = {k: np.asarray(v, np.float32 if k.startswith("x_") else np.float64) for k, v in rows.items()}
    out["source"] = source
    out["sample_rate_hz"] = int(sample_rate_hz)
    return out


def convert(root: str | Path, environments: dict[str, list[str]], out_dir: str | Path, sample_rate_hz: int = 22050,
            clip_s: float = 1.0, allow_missing_sim: bool = False) -> list[Path]:
    """Write RWAVS videos as a π-AVAS data folder: environment e's first video is placement 0 (training).

    Every key frame of both of a video's splits is used (the held-out placements are whole videos).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for e, (env, videos) in enumerate(sorted(environments.items())):
        if len(videos) < 2:
            raise RWAVSFolderError(f"environment {env!r}: needs at least 2 videos (one trains, one is held out)")
        for p, video in enumerate(videos):
            parts = [load_video(root, video, s, sample_rate_hz, clip_s, allow_missing_sim) for s in ("train", "val")
                     if (Path(root) / str(video) / f"transforms_scale_{s}.json").exists()]
            arrays = {k: np.concatenate([d[k] for d in parts]) for k in ("x_tx", "x_sim", "x_rx", "poses")}
            arrays.update(source=parts[0]["source"], sample_rate_hz=np.int64(sample_rate_hz), env=np.int64(e),
                          placement=np.int64(p), sound=np.str_(f"rwavs:{video}"), scene_hash=np.str_(env))
            path = out / file_name(e, p)
            _write_atomic(path, arrays)
            paths.append(path)
    manifest = {"format": FORMAT, "version": VERSION,
                "config": {"rwavs": {"root": str(root), "environments": environments}, "sample_rate_hz": sample_rate_hz,
                           "clip_s": clip_s}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return paths
