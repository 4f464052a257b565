"""AudioGoal episodes in the houses of an AVW dataset split (the world model's houses).

``avworld episodes make`` samples procedural houses of its own splits; the planning agent
must train on the houses the world model was trained on and be tested on the dataset's
unseen (test) houses, so this samples episodes in the scenes listed by a dataset's
``manifest.json`` for one split, with the dataset's motion preset and sound.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path


class PlanEpisodesError(ValueError):
    """A dataset or split to sample planning episodes from is unusable."""


def dataset_scenes(data: str | Path, split: str) -> tuple[list[str], dict]:
    """(scene specs of ``split``, the dataset's trajectory config) from ``data/manifest.json``."""
    path = Path(data) / "manifest.json"
    if not path.is_file():
        raise PlanEpisodesError(f"{path} does not exist; pass --data an AVW dataset directory "
                                "(`avworld data generate`)")
    m = json.loads(path.read_text())
    splits = m.get("splits", {})
    if split not in splits:
        raise PlanEpisodesError(f"{path}: no split {split!r}; it has {sorted(splits)}")
    by_index = {s["index"]: s["spec"] for s in m["scenes"]}
    return [by_index[i] for i in splits[split]], m["config"]["trajectory"]


def make_dataset_episodes(data: str | Path, split: str, per_scene: int, out: str | Path, seed: int = 0,
                          min_geodesic_m: float = 2.0, max_geodesic_m: float = 12.0,
                          max_scenes: int | None = None) -> Path:
    """Sample ``per_scene`` episodes in each house of the dataset's ``split`` and write them to ``out``.

    Motion (forward step, turn), the goal's sound and the source height are the dataset's,
    so an env built from the file matches the world model's training data.
    """
    from avworld.sim.config import PRESETS
    from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes

    scenes, traj = dataset_scenes(data, split)
    if max_scenes is not None:
        scenes = scenes[:max_scenes]
    preset = traj.get("motion_preset", "avw")
    p = PRESETS[preset]
    cfg = replace(EpisodeConfig(), forward_step_m=p["forward_step_m"], turn_deg=p["turn_deg"],
                  sound=traj.get("sound", "telephone_ringing"),
                  source_height_m=float(traj.get("source_height_m", 1.2)),
                  min_geodesic_m=min_geodesic_m, max_geodesic_m=max_geodesic_m)
    eps = make_episodes(scenes, per_scene, cfg, seed=seed)
    return save_episodes(out, eps, cfg, split=split,
                         extra={"seed": seed, "scenes": scenes, "preset": preset, "dataset": str(data)})
