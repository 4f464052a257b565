"""Wall time per planned step of the beam planner, Oracle WM and AV-CDiT WM (issue 19's "Numbers").

    python benchmarks/bench_planning.py --agent CKPT --world-model RUN/stages/stage3.pt --episodes FILE
        [--settings 1,1 2,2 3,3] [--candidates 3] [--steps 10] [--denoise 10] [--threads 1] [--device cpu|cuda]
        [--out benchmarks/results/planning.json]

For each world model and (B, H): ``--steps`` real steps of the test episodes (in file order, the next
episode when one ends), each a full ``PlanningAgent.act`` (encoding the real observation for the
AV-CDiT, the policy on it, the look-ahead). A planned STOP is replaced by MOVE_FORWARD in the real
env so that every timed step is a look-ahead from a new state (timing only; the plans are not
evaluated here). The first step of each setting is not timed (warm-up). Prints and saves JSON:
median and mean seconds per step, world-model calls and imagined rows per step.

``--reward-states N`` also asks the AV-CDiT and the Oracle WM for the reward of FORWARD, LEFT and
RIGHT at N states (episode k of the file after 12 random moves, k = 0 .. N-1) and reports their
correlation and how often both rank the same action first: does the AV-CDiT's reward carry
what planning needs?
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch


def run(agent, env, steps: int) -> dict:
    times, calls, rows = [], [], []
    k, obs, info = 0, None, None

    def new_episode():
        nonlocal k
        o, i = env.reset(seed=k, options={"episode_index": k % len(env.unwrapped.episodes)})
        agent.reset(env.unwrapped)
        k += 1
        return o, i

    obs, info = new_episode()
    for s in range(steps + 1):
        t0 = time.perf_counter()
        a = agent.act(obs, info)
        dt = time.perf_counter() - t0
        if s:  # the first step warms up
            times.append(dt)
            calls.append(agent.plans[-1].model_calls)
            rows.append(len(agent.plans[-1].candidates))
        obs, _, term, trunc, info = env.step(1 if a == 0 else a)
        if term or trunc:
            obs, info = new_episode()
    return {"seconds_median": statistics.median(times), "seconds_mean": statistics.fmean(times),
            "steps": len(times), "world_model_calls_per_step": statistics.fmean(calls),
            "branches_scored_per_step": statistics.fmean(rows)}


def reward_agreement(env, wm, n: int, seed: int = 0) -> dict:
    import numpy as np

    from avworld.planning.world_models import OracleWorldModel

    orc, rng, pred, true = OracleWorldModel(), np.random.default_rng(seed), [], []
    for k in range(n):
        obs, _ = env.reset(seed=k, options={"episode_index": k % len(env.unwrapped.episodes)})
        wm.reset(env, obs)
        for _ in range(12):
            obs, *_ = env.step(int(rng.choice([1, 1, 2, 3])))
            wm.observe(obs)
        pred.append(wm.step([wm.root(env)] * 3, [1, 2, 3]).reward)
        true.append(orc.step([orc.root(env)] * 3, [1, 2, 3]).reward)
    p, t = np.array(pred), np.array(true)
    return {"states": n, "pred_mean_forward_left_right": p.mean(0).tolist(),
            "true_mean_forward_left_right": t.mean(0).tolist(),
            "correlation": float(np.corrcoef(p.ravel(), t.ravel())[0, 1]),
            "correlation_forward": float(np.corrcoef(p[:, 0], t[:, 0])[0, 1]),
            "same_best_action": float(np.mean(p.argmax(1) == t.argmax(1)))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agent", required=True)
    p.add_argument("--world-model", required=True, help="AV-CDiT checkpoint (stage 3)")
    p.add_argument("--episodes", required=True)
    p.add_argument("--settings", nargs="+", default=["1,1", "2,2", "3,3"], help="B,H pairs")
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--denoise", type=int, default=10, help="AV-CDiT denoising steps (DDIM)")
    p.add_argument("--models", default="oracle,avwm")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="device of the AV-CDiT (the policy and simulator stay on CPU)")
    p.add_argument("--reward-states", type=int, default=0, help="states for the reward agreement check (0: none)")
    p.add_argument("--out", default="benchmarks/results/planning.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from avworld.eval.plan_eval import build_env
    from avworld.planning.agent import PlanningAgent
    from avworld.planning.avcdit import AVCDiTWorldModel
    from avworld.planning.beam import PlannerConfig
    from avworld.planning.world_models import OracleWorldModel
    from avworld.train.checkpoint import build_from_checkpoint, latest_checkpoint

    path = latest_checkpoint(args.agent) if Path(args.agent).is_dir() else Path(args.agent)
    policy, ckpt = build_from_checkpoint(path, "cpu")
    env = build_env(ckpt, args.episodes)
    sc = env.unwrapped.sim_config
    results, agreement = [], None
    for name in args.models.split(","):
        if name == "oracle":
            wm = OracleWorldModel()
        else:
            wm = AVCDiTWorldModel(args.world_model, sc.forward_step_m, sc.turn_deg, steps=args.denoise,
                                  device=args.device)
        for setting in args.settings:
            b, h = (int(v) for v in setting.split(","))
            agent = PlanningAgent(policy, wm, PlannerConfig(candidates=args.candidates, beam=b, horizon=h))
            r = {"world_model": name, "beam": b, "horizon": h, "candidates": args.candidates, **run(agent, env,
                                                                                                    args.steps)}
            print(json.dumps(r), flush=True)
            results.append(r)
        if name != "oracle" and args.reward_states:
            agreement = reward_agreement(env, wm, args.reward_states)
            print(json.dumps({"reward_agreement": agreement}), flush=True)
    env.close()
    out = {"agent": str(path), "agent_global_step": ckpt.get("global_step"), "episodes": args.episodes,
           "image_px": env.unwrapped.config.width, "motion": ckpt.get("run_info", {}).get("env", {}).get("motion"),
           "denoise_steps": args.denoise, "sampler": "ddim", "threads": args.threads, "device": args.device,
           "cuda": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
           "machine": platform.machine(), "results": results, "reward_agreement": agreement}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
