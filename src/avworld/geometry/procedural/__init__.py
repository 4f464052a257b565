"""Procedural multi-room houses from a seed.

>>> from avworld.geometry.procedural import HouseConfig, generate_house
>>> scene = generate_house(HouseConfig(num_rooms=6), seed=0)

The same (config, seed) always gives a bit-identical scene.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from avworld.geometry.builder import SceneBuilder
from avworld.geometry.procedural.config import HouseConfig, HouseConfigError
from avworld.geometry.procedural.furniture import FurniturePlacer
from avworld.geometry.procedural.layout import ROOM_TYPES, make_floor_plan
from avworld.geometry.procedural.shell import ShellBuilder
from avworld.geometry.scene import Scene

#: version of the generator's output (2: soft furnishings, rugs, curtains and the contents allowance of
#: home-like acoustics); saved episodes of older houses fail their scene-hash check and need regenerating
GENERATOR_VERSION = 2
#: the random stream the layouts are drawn from (kept at 1 so that a seed keeps its floor plan)
_RNG_STREAM = 1

__all__ = ["HouseConfig", "HouseConfigError", "generate_house", "ROOM_TYPES", "GENERATOR_VERSION"]


def generate_house(config: HouseConfig | None = None, seed: int = 0) -> Scene:
    """Generate a furnished multi-room house.

    Rooms (rectangles from a binary space partition) are connected by doors along a
    random spanning tree plus extra doors; walls have real thickness; windows, glass
    and curtains sit in exterior walls; furniture never blocks a doorway and never
    splits a room's walkable space.
    """
    cfg = config or HouseConfig()
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HouseConfigError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng([int(seed), _RNG_STREAM])
    plan = make_floor_plan(cfg, rng)
    b = SceneBuilder()
    shell = ShellBuilder(b, plan, cfg, rng)
    shell.build()
    FurniturePlacer(b, cfg, rng, b.doors, shell.windows).place_all(b.rooms)
    meta = {
        "generator": "avworld.procedural",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "config": asdict(cfg),
        "floor_z": 0.0,
    }
    return b.build(meta=meta)
