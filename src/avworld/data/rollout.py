"""Recording a planned trajectory with the simulator: frames, binaural audio, poses, rewards.

Frame ``t`` is the observation at pose ``t`` (frame 0 right after ``reset``; its audio
is what the ears heard during [t step_s, (t + 1) step_s)); ``action[t]`` is the action
taken after frame ``t`` (the last one is STOP, after which nothing is recorded);
``reward[t]`` is the reward for ``action[t]``:

* ``distance``: ``geodesic[t] - geodesic[t + 1]``, the decrease of the shortest-path
  distance to the source (0 for the final STOP);
* ``navigation``: SoundSpaces' AudioGoal reward, the distance term plus
  ``slack_reward`` every step plus ``success_reward`` for a STOP within
  ``success_distance_m`` of the source.

``success[t]`` says whether stopping at frame ``t`` would succeed (geodesic distance to
the source at most ``success_distance_m``).
"""

from __future__ import annotations

import numpy as np

from avworld.data.config import TrajectoryConfig
from avworld.data.patterns import TrajectoryPlan
from avworld.geometry.actions import Action
from avworld.sim.simulator import Simulator
from avworld.sim.sources import SoundSourceSpec


def source_spec(source_position, config: TrajectoryConfig, start_offset_s: float) -> SoundSourceSpec:
    """The scene's looping source as the simulator sees it in one trajectory."""
    return SoundSourceSpec(position=tuple(float(v) for v in source_position), sound=config.sound,
                           start_offset_s=float(start_offset_s), loop=True)


def compute_rewards(geodesic_m: np.ndarray, actions: np.ndarray, config: TrajectoryConfig) -> np.ndarray:
    """(T,) float32 rewards for the actions (see module docstring)."""
    g = np.asarray(geodesic_m, dtype=np.float64)
    r = np.zeros(len(g), dtype=np.float64)
    r[:-1] = g[:-1] - g[1:]
    if config.reward == "navigation":
        r += config.slack_reward
        stop = np.asarray(actions) == Action.STOP
        r[stop & (g <= config.success_distance_m)] += config.success_reward
    return r.astype(np.float32)


def level_dbfs(audio: np.ndarray) -> float:
    """Level of a recording: 10 log10 of the mean square of all samples (dB full scale)."""
    ms = float(np.mean(np.square(audio, dtype=np.float64)))
    return 10.0 * np.log10(ms) if ms > 0 else -np.inf


def record_trajectory(world, plan: TrajectoryPlan, source_position, config: TrajectoryConfig, reset_seed: int,
                      sound_bank=None) -> dict[str, np.ndarray]:
    """Run ``plan`` through a :class:`Simulator` on ``world``; returns the per-frame arrays
    ``rgb`` (T, H, W, 3) uint8, ``depth`` (T, H, W) float32 (if configured), ``audio``
    (T, 2, n) float32, ``pose`` (T, 3), ``action``, ``reward``, ``geodesic_m``, ``success``,
    ``collided``."""
    sim = Simulator(world, sound_bank=sound_bank)
    obs = sim.reset(agent_pose=plan.start_pose, sources=[source_spec(source_position, config, plan.start_offset_s)],
                    seed=int(reset_seed))
    T = plan.num_frames
    s = config.image_size
    n = world.config.step_samples
    out = {
        "rgb": np.empty((T, s, s, 3), np.uint8),
        "audio": np.empty((T, 2, n), np.float32),
        "pose": np.empty((T, 3), np.float64),
        "geodesic_m": np.empty(T, np.float64),
        "collided": np.zeros(T, bool),
    }
    if config.depth:
        out["depth"] = np.empty((T, s, s), np.float32)
    for t in range(T):
        out["rgb"][t] = obs["rgb"]
        if config.depth:
            out["depth"][t] = obs["depth"][..., 0]
        out["audio"][t] = obs["audio"]
        out["pose"][t] = obs["pose"]
        out["geodesic_m"][t] = obs["geodesic_distance_m"][0]
        out["collided"][t] = obs["collided"]
        if t < T - 1:
            obs = sim.step(int(plan.actions[t]))
    if not np.allclose(out["pose"], plan.poses, atol=1e-9):  # the planner and the simulator move alike
        raise AssertionError("simulator poses differ from the planned poses; the follower and Simulator disagree")
    out["action"] = plan.actions.astype(np.uint8)
    out["reward"] = compute_rewards(out["geodesic_m"], plan.actions, config)
    out["success"] = out["geodesic_m"] <= config.success_distance_m
    return out
