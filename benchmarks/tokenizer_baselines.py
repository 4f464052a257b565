"""Benchmark: the tokenizer baselines at the tokenizers' latent sizes, on the frames and clips of a dataset.

Images: copy of the input (upper bound) and bicubic down/up-sampling at ``--image-latent`` values
(default 4 x 8 x 8 = 256 -> 9 x 9 px); audio: copy, linear PCM (``--audio-latent`` / 2 samples per
ear, default 64 x 20 = 1,280 -> 640) and 8-bit mu-law in the bytes of a float16 latent (1,279
samples per ear). Prints the tables of :mod:`avworld.eval.tokenizer_report` (mean [95% bootstrap
interval]) and, with ``--report DIR``, writes the HTML page.

    .venv/bin/avworld data make --preset avw-tiny --out /tmp/avw-tiny-eval
    .venv/bin/python benchmarks/tokenizer_baselines.py --data /tmp/avw-tiny-eval [--split test] [--report DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from avworld.data import AVWDataset
from avworld.eval.tokenizer_baselines import (
    bicubic_roundtrip,
    copy_roundtrip,
    float16_latent_bytes,
    linear_resample_roundtrip,
    mulaw_roundtrip,
    mulaw_samples_per_ear,
    side_for_latent,
)
from avworld.eval.tokenizer_report import (
    AudioSection,
    ImageSection,
    audio_metrics_table,
    format_metrics_table,
    image_metrics_table,
    write_html_report,
)


def load(root: str, split: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    data = AVWDataset(root, split=split)
    rgb, audio = [], []
    for i in range(len(data)):
        t = data.trajectory(i, fields=("rgb", "audio"))
        rgb.append(t["rgb"])
        audio.append(t["audio"])
    sr = data.sample_rate_hz
    data.close()
    return np.concatenate(rgb), np.concatenate(audio).astype(np.float32), sr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="an AVW dataset directory")
    ap.add_argument("--split", default="test", help="train, val, test or all (default test)")
    ap.add_argument("--image-latent", type=int, default=4 * 8 * 8, help="latent values per image (default 256)")
    ap.add_argument("--audio-latent", type=int, default=64 * 20, help="latent values per clip (default 1280)")
    ap.add_argument("--report", help="also write the HTML report into this folder")
    args = ap.parse_args()

    rgb, audio, sr = load(args.data, None if args.split == "all" else args.split)
    s = side_for_latent(args.image_latent)
    per_ear = args.audio_latent // 2
    mu_ear = mulaw_samples_per_ear(float16_latent_bytes(args.audio_latent))
    print(f"{args.data} split {args.split}: {len(rgb)} frames {rgb.shape[1]}x{rgb.shape[2]}, "
          f"{len(audio)} clips of {audio.shape[-1]} samples at {sr} Hz")

    t0 = time.perf_counter()
    images = {"copy": copy_roundtrip(rgb), f"bicubic {s}x{s}": bicubic_roundtrip(rgb, args.image_latent)}
    clips = {"copy": copy_roundtrip(audio),
             f"linear {per_ear}/ear": linear_resample_roundtrip(audio, args.audio_latent),
             f"mu-law 8 bit {mu_ear}/ear": mulaw_roundtrip(audio, float16_latent_bytes(args.audio_latent))}
    t1 = time.perf_counter()
    it = image_metrics_table(rgb, images)
    at = audio_metrics_table(audio, clips, sample_rate=sr)
    t2 = time.perf_counter()
    print(f"\nimages, latent {args.image_latent} values (bicubic through {s}x{s}x3 = {3 * s * s}):")
    print(format_metrics_table(it))
    print(f"\naudio, latent {args.audio_latent} values ({float16_latent_bytes(args.audio_latent)} bytes as float16):")
    print(format_metrics_table(at))
    bands = {k: {b: round(v, 2) for b, v in row["ild_error_bands"].items() if v is not None} for k, row in at.items()}
    print("\nILD error per octave band (dB):", bands)
    print(f"\nbaselines {t1 - t0:.2f} s, metrics {t2 - t1:.2f} s")
    if args.report:
        k = np.linspace(0, len(rgb) - 1, 8).round().astype(int)
        a = np.linspace(0, len(audio) - 1, 3).round().astype(int)
        path = write_html_report(
            args.report, f"Tokenizer baselines on {args.data} ({args.split})",
            image_section=ImageSection(rgb[k], {n: v[k] for n, v in images.items() if n != "copy"}),
            audio_section=AudioSection(audio[a], {n: v[a] for n, v in clips.items() if n != "copy"}, sample_rate=sr),
            image_table=it, audio_table=at,
            notes=[f"Baselines at the latent size of a 4x8x8 image latent ({args.image_latent} values) and a "
                   f"64x20 audio latent ({args.audio_latent} values)."])
        print(f"report: {path}")


if __name__ == "__main__":
    main()
