"""Replaying stored trajectories: the stored actions through a fresh simulator.

Everything a recording depends on is in the dataset: the scene spec, the simulator
config (from the manifest's :class:`~avworld.data.config.DatasetConfig`), the source
position and phase, the start pose and the reset seed. :func:`replay_trajectory`
rebuilds the scene and reproduces the stored frames, audio and poses bit for bit (the
audio as stored, i.e. after :func:`~avworld.data.storage.quantize_audio`).
"""

from __future__ import annotations

import numpy as np

from avworld.data.reader import AVWDataset
from avworld.data.rollout import source_spec
from avworld.data.storage import quantize_audio


def start_trajectory(dataset: AVWDataset, i: int, world=None):
    """(simulator, first observation) of trajectory ``i``: its scene (or ``world``, a
    :class:`~avworld.sim.world.SharedWorld` of that scene), source, start pose and reset seed."""
    from avworld.geometry.spec import load_scene_spec
    from avworld.sim.simulator import Simulator
    from avworld.sim.world import SharedWorld

    cfg = dataset.config.trajectory
    meta = dataset.info(i)
    if world is None:
        world = SharedWorld(load_scene_spec(meta["scene"]), cfg.sim_config())
    sim = Simulator(world)
    spec = source_spec(meta["source_position"], cfg, meta["start_offset_s"])
    return sim, sim.reset(agent_pose=tuple(meta["start_pose"]), sources=[spec], seed=int(meta["reset_seed"]))


def replay_trajectory(dataset: AVWDataset, i: int, world=None) -> dict[str, np.ndarray]:
    """Re-simulate trajectory ``i`` from its stored actions; returns ``rgb``, ``audio``
    (quantized like the stored audio), ``depth`` (float16-rounded, if stored), ``pose``.
    ``world`` may be a :class:`~avworld.sim.world.SharedWorld` of the trajectory's scene."""
    cfg = dataset.config.trajectory
    actions = dataset.small(i)["action"]
    sim, obs = start_trajectory(dataset, i, world)
    out: dict[str, list] = {"rgb": [], "audio": [], "pose": [], "depth": []}
    for t in range(len(actions)):
        out["rgb"].append(obs["rgb"])
        out["audio"].append(obs["audio"])
        out["pose"].append(obs["pose"])
        if cfg.depth:
            out["depth"].append(obs["depth"][..., 0])
        if t < len(actions) - 1:
            obs = sim.step(int(actions[t]))
    result = {"rgb": np.stack(out["rgb"]), "audio": quantize_audio(np.stack(out["audio"]), cfg),
              "pose": np.stack(out["pose"])}
    if cfg.depth:
        result["depth"] = np.stack(out["depth"]).astype(np.float16).astype(np.float32)
    return result
