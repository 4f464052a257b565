"""Benchmark: PPO training throughput (environment + learning) for AV-Nav and AGSA.

``avworld/AudioGoal-v0`` with the preset's image size and envs (``fast``: 64x64 depth, 16
envs stepped in the learner's process; ``soundspaces``: 128x128 depth, 5 envs, one process
per env), on a repeating file of 16 episodes of the test split (4 houses of 2–4 rooms, as
``bench_env.py``), or with ``--on-the-fly`` on episodes sampled on the fly in the train
houses, as ``avworld train nav`` without ``--episodes`` (the quick start) trains. After one
warm-up update (worlds built, sound bank and HRTF loaded), ``--updates`` updates are timed:

* collect: rollout steps per second (env stepping + policy inference),
* learn: seconds per PPO update (epochs x minibatches of forward + backward),
* total: env steps per second of the whole training loop (the issue's figure), from the
  mean times, and the best single update (the machine is shared: other jobs slow some updates),
* cpu: env steps per CPU-second of this process (all its threads) while collecting, a figure
  that load from other jobs changes less than wall time (with ``--sync`` or a sync preset it
  covers the envs; with subprocess envs it covers only the learner's side).

16 repeating episodes let the simulator reuse what it computed (the RIRs at the positions
agents visit again, the episodes' distance fields and oracle plans), so they measure the
training loop's best case; episodes sampled on the fly keep meeting new source and
listener positions and run slower (docs/training.md gives both).

A freshly initialized policy picks STOP a quarter of the time, so its episodes last ~4
steps and resets dominate; a trained agent walks episodes of tens to hundreds of steps.
``--stop-bias B`` (default -3) adds B to the STOP logit so that episodes are long, as in
later training; ``--stop-bias 0`` measures the untrained regime.

    .venv/bin/python benchmarks/bench_train.py [--preset fast] [--agents avnav,agsa] [--updates 3] [--on-the-fly]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, save_json  # noqa: E402
from avworld.models.nav import build_policy, model_config  # noqa: E402
from avworld.sim.config import PRESETS as MOTION_PRESETS  # noqa: E402
from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes  # noqa: E402
from avworld.train.config import resolve  # noqa: E402
from avworld.train.nav import make_nav_envs  # noqa: E402
from avworld.train.ppo import PPOTrainer  # noqa: E402


def run(agent: str, preset: str, episodes: str | None, updates: int, stop_bias: float, num_envs: int | None,
        sync: bool = False, motion: str = "soundspaces2") -> dict:
    env_kw = {"episodes": episodes, "motion": motion, **({"asynchronous": False} if sync else {})}
    ppo, env, model_kw = resolve(preset, {"num_envs": num_envs} if num_envs else {}, env_kw)
    torch.manual_seed(0)
    envs = make_nav_envs(env, ppo.num_envs)
    try:
        shapes = {k: tuple(s.shape) for k, s in envs.single_observation_space.spaces.items()}
        policy = build_policy(agent, shapes, int(envs.single_action_space.n), config=model_config(agent, **model_kw))
        with torch.no_grad():
            policy.actor.bias[0] += stop_bias
        tr = PPOTrainer(envs, policy, ppo, agent=agent)
        tr.reset_envs()
        times, cpu = [], []
        for k in range(updates + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            next_value, _ = tr.collect()
            t1, c1 = time.perf_counter(), time.process_time()
            tr.learn(next_value)
            t2 = time.perf_counter()
            if k:  # the first update is the warm-up
                times.append((t1 - t0, t2 - t1))
                cpu.append(c1 - c0)
        steps = ppo.num_steps * ppo.num_envs
        collect_s = sum(t[0] for t in times) / len(times)
        learn_s = sum(t[1] for t in times) / len(times)
        lengths = [r["length"] for r in tr.window]
    finally:
        envs.close()
    return {"agent": agent, "preset": preset, "motion": motion, "size": env.size, "asynchronous": env.asynchronous,
            "visual_keys": list(model_kw["visual_keys"]),
            "num_envs": ppo.num_envs, "num_steps": ppo.num_steps, "epochs": ppo.epochs,
            "num_minibatches": ppo.num_minibatches, "parameters": policy.num_parameters(),
            "collect_s_each": [t[0] for t in times], "learn_s_each": [t[1] for t in times],
            "best_total_steps_per_s": steps / min(t[0] + t[1] for t in times),
            "collect_steps_per_s": steps / collect_s, "learn_s_per_update": learn_s,
            "collect_steps_per_cpu_s": steps * len(cpu) / sum(cpu), "episodes_file": episodes,
            "learner_steps_per_s": steps / learn_s, "total_steps_per_s": steps / (collect_s + learn_s),
            "mean_episode_length": sum(lengths) / max(len(lengths), 1), "episodes": len(lengths)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="fast")
    p.add_argument("--agents", default="avnav,agsa")
    p.add_argument("--updates", type=int, default=3, help="timed updates after one warm-up update")
    p.add_argument("--stop-bias", type=float, default=-3.0, help="added to the STOP logit (0: untrained policy)")
    p.add_argument("--num-envs", type=int, default=None, help="override the preset's envs per process")
    p.add_argument("--sync", action="store_true", help="step the envs in the learner's process (no subprocesses)")
    p.add_argument("--motion", default="soundspaces2", choices=sorted(MOTION_PRESETS),
                   help="simulator motion preset (grid: SoundSpaces 1's 1 m / 90 deg / 1 s steps)")
    p.add_argument("--on-the-fly", action="store_true",
                   help="episodes sampled on the fly in the train houses (as `avworld train nav` without --episodes) "
                        "instead of the repeating 16-episode test file")
    p.add_argument("--out", default=None, help="default benchmarks/results/train_PRESET[_MOTION][_onthefly].json")
    args = p.parse_args()
    suffix = "" if args.motion == "soundspaces2" else f"_{args.motion}"
    ep_path = Path(f"runs/bench/train_episodes{suffix}.jsonl")
    if not ep_path.exists():
        step = MOTION_PRESETS[args.motion]
        cfg = EpisodeConfig(forward_step_m=step["forward_step_m"], turn_deg=step["turn_deg"])
        save_episodes(ep_path, make_episodes(split_scenes("test", 4, rooms=(2, 4)), 4, cfg, seed=0), cfg, split="test")
    results = []
    for agent in args.agents.split(","):
        r = run(agent, args.preset, None if args.on_the_fly else str(ep_path), args.updates, args.stop_bias,
                args.num_envs, args.sync, args.motion)
        results.append(r)
        print(f"{agent:6s} {args.preset} {args.motion} {r['size']}x{r['size']} {r['num_envs']} envs: total "
              f"{r['total_steps_per_s']:.0f} steps/s (collect {r['collect_steps_per_s']:.0f} steps/s, learn "
              f"{r['learn_s_per_update']:.2f} s per {r['num_steps'] * r['num_envs']}-step update = "
              f"{r['learner_steps_per_s']:.0f} steps/s; best update {r['best_total_steps_per_s']:.0f} steps/s; "
              f"collect {r['collect_steps_per_cpu_s']:.0f} steps per CPU-second; "
              f"mean episode {r['mean_episode_length']:.0f} steps)")
    out = args.out or f"benchmarks/results/train_{args.preset}{suffix}{'_onthefly' if args.on_the_fly else ''}.json"
    save_json({"benchmark": "train_throughput", "machine": machine_info(), "torch": torch.__version__,
               "torch_threads": torch.get_num_threads(), "stop_bias": args.stop_bias, "results": results}, out)


if __name__ == "__main__":
    main()
