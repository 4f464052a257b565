"""π-AVAS costs (issue 21's "Numbers"): data generation, training step, inference per second of audio per NFE.

    python benchmarks/bench_synthesis.py [--preset cpu|gpu] [--steps 20] [--threads 1] [--device cpu|cuda]
        [--clip-s 0.5] [--out benchmarks/results/synthesis.json]

Times (1) generating one house's placement of 8 poses (both physics, source audio, noise) per pose,
(2) one training step of the preset (Algorithm 1: batch 4, forward, backward, Adam) on random data of
the preset's crop, and (3) refinement at NFE 1 and 4 with Euler on a batch of 4 clips of ``--clip-s``,
as seconds of compute per second of binaural audio per network call. Prints and saves JSON. The
machine's other load changes these: say which card and how busy it was when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from avworld.data.synthesis import SynthesisDataConfig, generate_placement
from avworld.data.synthesis_scenes import Environment
from avworld.eval.synthesis_eval import run_flow
from avworld.models.synthesis import GatedConvRefiner, flow_loss, tf
from avworld.train.synthesis_config import resolve


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--clip-s", type=float, default=0.5)
    p.add_argument("--out", default="benchmarks/results/synthesis.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sr = 16000
    res: dict = {"preset": args.preset, "threads": args.threads, "device": args.device,
                 "load_average": os.getloadavg()[0], "cpu_count": os.cpu_count()}

    from avworld.sounds import SoundBank

    cfg = SynthesisDataConfig(poses_per_placement=8, clip_s=args.clip_s)
    t0 = time.perf_counter()
    env = Environment(0, cfg.num_rooms, sr, cfg.sim, cfg.rx_ism_order)
    res["data_env_setup_s"] = time.perf_counter() - t0
    bank = SoundBank(sample_rate_hz=sr, seed=0)
    generate_placement(env, bank, cfg, 0, 0)  # warm: the source's ray trace and the sound clip
    t0 = time.perf_counter()
    generate_placement(env, bank, cfg, 0, 1)
    res["data_s_per_pose"] = (time.perf_counter() - t0) / cfg.poses_per_placement

    model_cfg, tcfg = resolve(args.preset)
    dev = torch.device(args.device)
    model = GatedConvRefiner(model_cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, betas=tcfg.betas, weight_decay=tcfg.weight_decay)
    T = tcfg.crop or int(args.clip_s * sr)
    b = tcfg.batch_size
    g = torch.Generator().manual_seed(0)
    x = [torch.randn(*s, generator=g).to(dev) for s in ((b, T), (b, 2, T), (b, 2, T), (b, 7), (b,), (b, 2, T))]
    x[4] = x[4].abs().clamp(max=1)
    if model_cfg.domain == "mag":  # the refiner sees STFT magnitudes (the encoding is part of each step)
        raw = x
    times = []
    for i in range(args.steps + 3):
        t0 = time.perf_counter()
        if model_cfg.domain == "mag":
            enc = [tf.encode(a, model_cfg.mag_power) for a in raw[:3]]
            x = [*enc, raw[3], raw[4], torch.randn_like(enc[1])]
        loss = flow_loss(model, *x[:4], x[4], x[5])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    res["train_s_per_step"] = sum(times) / len(times)
    res["train_crop_samples"] = T
    res["params"] = sum(q.numel() for q in model.parameters())

    n = int(args.clip_s * sr)
    tx, sim = torch.randn(4, n, generator=g).to(dev), torch.randn(4, 2, n, generator=g).to(dev)
    pose = torch.randn(4, 7, generator=g).to(dev)
    model.eval()
    for nfe in (1, 4):
        with torch.no_grad():
            run_flow(model, tx.cpu().numpy(), sim.cpu().numpy(), pose.cpu().numpy(), "euler", nfe, batch=4,
                     device=args.device, domain=model_cfg.domain, power=model_cfg.mag_power)  # warm
            t0 = time.perf_counter()
            run_flow(model, tx.cpu().numpy(), sim.cpu().numpy(), pose.cpu().numpy(), "euler", nfe, batch=4,
                     device=args.device, domain=model_cfg.domain, power=model_cfg.mag_power)
            if dev.type == "cuda":
                torch.cuda.synchronize()
        res[f"infer_s_per_audio_s_per_nfe_nfe{nfe}"] = (time.perf_counter() - t0) / (4 * args.clip_s) / nfe
    print(json.dumps(res, indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as f:
        json.dump(res, f, indent=1)
    os.replace(f.name, out)


if __name__ == "__main__":
    main()
