"""``avworld plan eval``: an AV-Nav policy alone, or planning with a world model, over an episode file.

Writes to ``out``: ``metrics.json`` (success, SPL, SoftSPL, NA, SNA, distance with 95 % CIs, wall
time per step, settings), ``episodes.csv`` (one row per episode, with its mean planning time per
step, written as each episode finishes), ``paths.json`` (each episode's poses and actions, for
:mod:`avworld.eval.plan_report`) and ``video_<episode>.mp4`` (the first ``video_episodes`` episodes:
what the agent saw and heard).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from avworld.eval.nav_metrics import METRICS, aggregate
from avworld.eval.nav_runner import run_episode


class PlanEvalError(ValueError):
    """Bad ``plan eval`` input (world model, episodes, agent); the message names the fix."""


def build_env(ckpt: dict, episodes: str | Path):
    """The AudioGoal env of a checkpoint's training motion and image size, observing RGB and sound
    (``audiovisual``: the world models need the waveform even if the policy does not)."""
    import gymnasium as gym

    import avworld.tasks  # noqa: F401
    from avworld.train.nav import check_episode_motion

    saved = ckpt.get("run_info", {}).get("env", {})
    motion = saved.get("motion", "soundspaces2")
    check_episode_motion(episodes, motion)
    shapes = ckpt.get("obs_shapes", {})
    image = shapes.get("rgb", shapes.get("depth", (128,)))
    size = int(saved.get("size", image[0]))
    return gym.make(saved.get("env_id", "avworld/AudioGoal-v0"), episodes=str(episodes), width=size, height=size,
                    observations="audiovisual", step_limit=int(saved.get("step_limit", 500)), preset=motion)


def build_world_model(spec: str | None, env, steps: int = 10, sampler: str = "ddim", seed: int = 0,
                      image: str = "image", audio: str = "audio"):
    """None (plain policy), the Oracle WM (``oracle``) or an AV-CDiT checkpoint's adapter."""
    if spec in (None, "", "none", "policy"):
        return None
    if spec == "oracle":
        from avworld.planning.world_models import OracleWorldModel

        return OracleWorldModel()
    if not Path(spec).exists():
        raise PlanEvalError(f"--world-model {spec!r}: neither 'oracle', 'none' nor an existing world-model checkpoint "
                            "(a .pt file or a run directory of `avworld worldmodel train`, e.g. RUN/stages/stage3.pt)")
    from avworld.planning.avcdit import AVCDiTWorldModel

    sc = env.unwrapped.sim_config
    return AVCDiTWorldModel(spec, sc.forward_step_m, sc.turn_deg, steps=steps, sampler=sampler, seed=seed,
                            image=image, audio=audio)


def check_agent_fits(head, world_model, env) -> None:
    """The policy must observe only what the world model predicts, at the decoded frame size."""
    from avworld.planning.avcdit import AVCDiTWorldModel

    if isinstance(world_model, AVCDiTWorldModel):
        head.check_predictable()
        want = head.policy.obs_shapes.get("rgb")
        size, got = env.unwrapped.config.width, world_model.frame_size
        if want is not None and (tuple(want[:2]) != (size, size) or size != got):
            raise PlanEvalError(f"the policy sees {tuple(want[:2])} images, the world model decodes {got} x {got}: "
                                "train the agent at the world model's image size (--size)")
        if env.unwrapped.sim_config.step_samples != world_model.clip_samples:
            raise PlanEvalError(f"the world model's clips have {world_model.clip_samples} samples, an env step "
                                f"{env.unwrapped.sim_config.step_samples}: plan in the motion preset the world model "
                                "was trained with (avw: 0.15 s per step)")


def _frames_with_sound(ro, scale: int = 4) -> tuple[np.ndarray, np.ndarray]:
    frames = np.stack([np.kron(f, np.ones((scale, scale, 1), np.uint8)) for f in ro.rgb])
    return frames, np.concatenate(ro.audio, axis=1)


def run_plan_eval(agent_ckpt: str | Path, episodes: str | Path, world_model: str | None = None, beam: int = 1,
                  horizon: int = 1, candidates: int = 3, gamma: float = 0.99, num: int | None = None, seed: int = 0,
                  steps: int = 10, sampler: str = "ddim", out: str | Path | None = None, video_episodes: int = 1,
                  threads: int | None = 1, progress=None, image: str = "image", audio: str = "audio") -> dict:
    """Evaluate; returns the metrics dict (also written to ``out/metrics.json``)."""
    from avworld.planning.agent import PlanningAgent
    from avworld.planning.beam import PlannerConfig
    from avworld.train.checkpoint import build_from_checkpoint, latest_checkpoint
    from avworld.train.threads import set_inference_threads

    set_inference_threads(threads)
    path = latest_checkpoint(agent_ckpt) if Path(agent_ckpt).is_dir() else Path(agent_ckpt)
    policy, ckpt = build_from_checkpoint(path, "cpu")
    config = PlannerConfig(candidates=candidates, beam=beam, horizon=horizon, gamma=gamma, seed=seed)
    env = build_env(ckpt, episodes)
    try:
        wm = build_world_model(world_model, env, steps, sampler, seed, image, audio)
        agent = PlanningAgent(policy, wm, config)
        check_agent_fits(agent.head, wm, env)
        base = env.unwrapped
        n = len(base.episodes) if num is None else min(int(num), len(base.episodes))
        if n < 1:
            raise PlanEvalError(f"{episodes}: no episodes to evaluate (--num {num})")
        rows, paths = [], {}
        outdir = Path(out) if out is not None else None
        keys = ["episode_id", *METRICS, "steps", "step_seconds_mean"]
        if outdir is not None:  # rows are written as episodes finish (a stopped run keeps them)
            outdir.mkdir(parents=True, exist_ok=True)
            with open(outdir / "episodes.csv", "w", newline="") as f:
                csv.writer(f).writerow(keys)
        t_all = time.perf_counter()
        for k in range(n):
            agent.step_seconds = []
            metrics, ro = run_episode(env, agent, episode_index=k, seed=seed + k, record=True)
            sec = agent.step_seconds
            row = {**metrics, "steps": len(sec), "step_seconds_mean": float(np.mean(sec)) if sec else 0.0}
            rows.append(row)
            if outdir is not None:
                with open(outdir / "episodes.csv", "a", newline="") as f:
                    csv.writer(f).writerow([row[c] for c in keys])
            ep = base.episode
            paths[ep.episode_id] = {"scene": ep.scene, "poses": np.asarray(ro.poses).round(4).tolist(),
                                    "actions": ro.actions, "goal": list(map(float, ep.goal_xy)),
                                    "source": list(map(float, ep.source_position)),
                                    "start": list(map(float, ep.start_pose)), "success": bool(metrics["success"])}
            if outdir is not None and k < video_episodes:
                from avworld.viz.video import write_video_with_audio

                frames, sound = _frames_with_sound(ro)
                write_video_with_audio(outdir / f"video_{ep.episode_id}.mp4", frames, sound,
                                       base.sim_config.sample_rate_hz, fps=1.0 / base.sim_config.step_s)
            if progress is not None:
                progress(k, n, row)
        seconds = time.perf_counter() - t_all
    finally:
        env.close()
    per_step = np.concatenate([[r["step_seconds_mean"]] * r["steps"] for r in rows if r["steps"]])
    label = "policy" if world_model in (None, "", "none", "policy") else (
        "oracle" if world_model == "oracle" else "avwm")
    result = {
        "label": label if label == "policy" else f"{label} B={beam} H={horizon} K={candidates}",
        "world_model": world_model or "none", "beam": beam, "horizon": horizon, "candidates": candidates,
        "gamma": gamma, "denoising_steps": steps, "sampler": sampler, "seed": seed,
        "agent": str(path), "agent_global_step": ckpt.get("global_step"), "episodes": str(episodes),
        "num_episodes": n, "aggregate": aggregate(rows),
        "seconds_per_step": {"mean": float(per_step.mean()), "median": float(np.median(per_step)),
                             "steps": int(per_step.size)},
        "seconds": seconds,
    }
    if outdir is not None:
        (outdir / "metrics.json").write_text(json.dumps(result, indent=2))
        (outdir / "paths.json").write_text(json.dumps(paths))
    return result
