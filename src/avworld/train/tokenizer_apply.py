"""``avworld tokenizer encode`` and ``avworld tokenizer eval``: apply trained tokenizers to a dataset.

* encode: latents of every frame beside the shards (``DATA/latents/NAME``, see
  :mod:`avworld.data.latents`), resumable; Ctrl-C keeps the finished files.
* eval: reconstructions of a split's frames and clips by the tokenizers and by the baselines
  at the same latent size (copy, bicubic; linear and mu-law resampling), the metric tables
  (audio also over the clips with line of sight to the source), printed and written with an
  HTML page of originals vs reconstructions (:mod:`avworld.eval.tokenizer_report`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ENCODE_BATCH = 64


def add_apply_commands(tsub) -> None:
    enc = tsub.add_parser("encode", help="write the latents of every frame of a dataset beside its shards (resumable)")
    enc.add_argument("--data", required=True, help="AVW dataset directory")
    enc.add_argument("--image", default=None, help="image autoencoder: run dir, .pt file, or 'image' (the shipped one)")
    enc.add_argument("--audio", default=None, help="audio codec: run dir, .pt file, or 'audio' (the shipped one)")
    enc.add_argument("--name", default="tokens", help="latent set name: DATA/latents/NAME (default tokens)")
    enc.add_argument("--split", action="append", default=None, choices=("train", "val", "test"),
                     help="repeatable; default all splits")
    enc.add_argument("--batch-size", type=int, default=ENCODE_BATCH, help=f"frames per batch (default {ENCODE_BATCH})")
    enc.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default torch's)")
    enc.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    enc.add_argument("--no-progress", action="store_true", help="no progress bar")
    enc.set_defaults(func=_cmd_encode)

    ev = tsub.add_parser("eval", help="metrics of the tokenizers and of same-size baselines on a split + HTML page")
    ev.add_argument("--data", required=True, help="AVW dataset directory")
    ev.add_argument("--image", default=None, help="image autoencoder: run dir, .pt file, or 'image' (shipped)")
    ev.add_argument("--audio", default=None, help="audio codec: run dir, .pt file, or 'audio' (shipped)")
    ev.add_argument("--split", default="test", choices=("train", "val", "test"), help="default test")
    ev.add_argument("--max-frames", type=int, default=0, help="evaluate the first N frames (default 0 = all)")
    ev.add_argument("--out", default=None, help="report folder (default runs/tokenizer-eval)")
    ev.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default torch's)")
    ev.add_argument("--items", type=int, default=8, help="frames and clips shown on the page (default 8)")
    ev.set_defaults(func=_cmd_eval)


def _sha256(path: str) -> str:
    from avworld.data.storage import file_sha256

    return file_sha256(path)


def _load(which: str | None, kind: str, device: str | None):
    if which is None:
        return None
    import torch

    from avworld.train.distributed import pick_device
    from avworld.train.tokenizer_checkpoint import load_tokenizer

    return load_tokenizer(which, kind=kind, map_location=pick_device(device) if device else torch.device("cpu"))


def image_encoder(model):
    """uint8 (N, H, W, 3) -> scaled posterior means (N, C, h, w) float32 (numpy in, numpy out)."""
    import torch

    dev = next(model.parameters()).device

    @torch.no_grad()
    def encode(frames: np.ndarray) -> np.ndarray:
        return model.encode_latents(torch.from_numpy(np.ascontiguousarray(frames)).to(dev)).float().cpu().numpy()
    return encode


def audio_encoder(model):
    """float32 (N, 2, n) -> scaled latents (N, D, F) float32."""
    import torch

    dev = next(model.parameters()).device

    @torch.no_grad()
    def encode(clips: np.ndarray) -> np.ndarray:
        return model.encode_latents(torch.from_numpy(np.ascontiguousarray(clips, np.float32)).to(dev)).cpu().numpy()
    return encode


def identity_of(model) -> dict:
    """What makes latents reproducible: the checkpoint's hash, kind, config and latent scale."""
    info = model.checkpoint_info
    return {"kind": info["kind"], "sha256": _sha256(info["path"]), "latent_scale": float(model.latent_scale),
            "step": info.get("step"), "file": Path(info["path"]).name}


def _threads(n: int | None) -> None:
    from avworld.train.run_options import set_threads
    from avworld.train.tokenizer_config import TokenizerConfigError

    set_threads(n, TokenizerConfigError)


def _cmd_encode(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from avworld.data.latents import EncodeInterrupted, LatentsError, encode_dataset
    from avworld.train.stop import StopRequest

    if args.image is None and args.audio is None:
        raise LatentsError("nothing to encode: pass --image CKPT, --audio CKPT or both ('image' / 'audio' for the "
                           "shipped tokenizers)")
    _threads(args.threads)
    img, aud = _load(args.image, "image", args.device), _load(args.audio, "audio", args.device)
    identity = {k: identity_of(m) for k, m in (("image", img), ("audio", aud)) if m is not None}
    t0 = time.perf_counter()
    with Progress(disable=args.no_progress) as bar, StopRequest(announce=False) as stop:
        task = bar.add_task("encoding", total=None)
        try:
            result = encode_dataset(args.data, args.name, image_encoder(img) if img is not None else None,
                                    audio_encoder(aud) if aud is not None else None, identity,
                                    batch_size=args.batch_size, splits=args.split, stop=stop,
                                    progress=lambda done, total: bar.update(task, completed=done, total=total))
        except EncodeInterrupted as exc:
            bar.stop()
            print(str(exc))
            return 130
    seconds = time.perf_counter() - t0
    out = {"latents": str(result.path), "seconds": round(seconds, 1), "frames_encoded": result.frames_encoded,
           "frames_per_s": round(result.frames_encoded / max(seconds, 1e-9), 1), "encoded": len(result.encoded),
           "skipped": len(result.skipped), "redone": result.redone}
    print(json.dumps(out))
    return 0


def _eval_frames(root: str, split: str, max_frames: int):
    from avworld.data import AVWDataset

    data = AVWDataset(root, split=split)
    rgb, audio, n = [], [], 0
    for i in range(len(data.trajectories)):
        if max_frames and n >= max_frames:
            break
        traj = data.trajectory(i, fields=("rgb", "audio"))
        rgb.append(traj["rgb"])
        audio.append(traj["audio"].astype(np.float32))
        n += len(traj["rgb"])
    take = max_frames or n
    return data, np.concatenate(rgb)[:take], np.concatenate(audio)[:take]


def _reconstruct(model, x: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for a in range(0, len(x), batch):
            xb = torch.from_numpy(np.ascontiguousarray(x[a:a + batch]))
            if model.checkpoint_info["kind"] == "image":
                out.append(model.to_uint8(model.decode(model.encode(xb).mode())))
            else:
                out.append(model.reconstruct(xb).numpy())
    y = np.concatenate(out)
    return y.numpy() if hasattr(y, "numpy") else y


def _cmd_eval(args: argparse.Namespace) -> int:
    from avworld.data.visibility import line_of_sight
    from avworld.eval import tokenizer_baselines as tb
    from avworld.eval.tokenizer_report import (
        AudioSection,
        ImageSection,
        audio_metrics_table,
        format_metrics_table,
        image_metrics_table,
        jsonable,
        write_html_report,
    )
    from avworld.train.tokenizer_config import TokenizerConfigError

    if args.image is None and args.audio is None:
        raise TokenizerConfigError("nothing to evaluate: pass --image CKPT, --audio CKPT or both")
    _threads(args.threads)
    img, aud = _load(args.image, "image", None), _load(args.audio, "audio", None)
    data, rgb, audio = _eval_frames(args.data, args.split, args.max_frames)
    out = Path(args.out or "runs/tokenizer-eval")
    pick = np.linspace(0, len(rgb) - 1, min(args.items, len(rgb))).astype(np.int64)
    results, timing = {}, {}
    img_table = aud_table = img_section = aud_section = None
    if img is not None:
        cfg = img.config
        if rgb.shape[1] != cfg.image_size:
            raise TokenizerConfigError(f"the split's frames are {rgb.shape[1]} px, the autoencoder's {cfg.image_size}; "
                                       "evaluate on a dataset of its size")
        t0 = time.perf_counter()
        rec = _reconstruct(img, rgb)
        timing["image_frames_per_s"] = len(rgb) / (time.perf_counter() - t0)
        values = cfg.latent_channels * (cfg.image_size // cfg.downsample) ** 2
        recs = {"tokenizer": rec, "copy": tb.copy_roundtrip(rgb), f"bicubic ({values} values)":
                tb.bicubic_roundtrip(rgb, values)}
        img_table = image_metrics_table(rgb, recs)
        img_section = ImageSection(rgb[pick], {k: v[pick] for k, v in recs.items()})
        results["image"] = {"latent_values": values, "table": img_table}
        print(f"images ({len(rgb)} frames of {args.split}, {rgb.shape[1]} px):\n{format_metrics_table(img_table)}")
    if aud is not None:
        cfg = aud.config
        t0 = time.perf_counter()
        rec = _reconstruct(aud, audio)
        timing["audio_clips_per_s"] = len(audio) / (time.perf_counter() - t0)
        values = cfg.latent_dim * cfg.latent_frames
        recs = {"tokenizer": rec, "copy": tb.copy_roundtrip(audio), "linear resample": tb.linear_resample_roundtrip(
            audio, values), "mu-law 8 bit": tb.mulaw_roundtrip(audio, tb.float16_latent_bytes(values))}
        los = line_of_sight(data)[: len(audio)]
        aud_table = audio_metrics_table(audio, recs, sample_rate=cfg.sample_rate)
        los_table = audio_metrics_table(audio, recs, sample_rate=cfg.sample_rate, mask=los)
        aud_section = AudioSection(audio[pick], {k: v[pick] for k, v in recs.items()}, sample_rate=cfg.sample_rate)
        results["audio"] = {"latent_values": values, "table": aud_table, "line_of_sight": los_table,
                            "line_of_sight_fraction": float(los.mean())}
        print(f"audio, all {len(audio)} clips of {args.split}:\n{format_metrics_table(aud_table)}")
        print(f"audio, {int(los.sum())} clips with line of sight:\n{format_metrics_table(los_table)}")
    notes = [f"dataset {args.data}, split {args.split}, {len(rgb)} frames",
             *(f"{k}: {m.checkpoint_info['path']} (step {m.checkpoint_info.get('step')})"
               for k, m in (("image", img), ("audio", aud)) if m is not None),
             "Audio tables: all clips, then only the clips with line of sight to the source "
             "(avworld.data.visibility); the page's table is the all-clips one."]
    page = write_html_report(out, "Tokenizer evaluation", img_section, aud_section, img_table, aud_table, notes,
                             max_items=args.items)
    (out / "results.json").write_text(json.dumps(jsonable({"results": results, "timing": timing, "notes": notes}),
                                                 indent=1))
    print(f"report: {page}")
    return 0
