"""`import avworld` registers the gymnasium ids cheaply (issue 22, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "scipy.signal", "embreex", "trimesh", "numba", "avworld.tasks", "avworld.acoustics")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_import_avworld_registers_ids_without_heavy_modules():
    code = (
        "import json, sys\n"
        "import avworld\n"
        "from gymnasium.envs.registration import registry\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r} "
        f"or any(m.startswith(h + '.') for h in {HEAVY!r}))\n"
        "print(json.dumps({'ids': [i for i in avworld.ENV_IDS if i in registry], 'heavy': heavy}))\n"
    )
    got = json.loads(_run(code))
    assert got["ids"] == ["avworld/AudioGoal-v0", "avworld/AudioGoalContinuous-v0"]
    assert got["heavy"] == []


def test_gymnasium_make_after_only_import_avworld():
    code = (
        "import avworld, gymnasium\n"
        "env = gymnasium.make('avworld/AudioGoal-v0', width=16, height=16, num_scenes=1, observations='audio')\n"
        "cenv = gymnasium.make('avworld/AudioGoalContinuous-v0', width=16, height=16, num_scenes=1)\n"
        "print(type(env.unwrapped).__name__, env.action_space, cenv.unwrapped.config.continuous)\n"
    )
    assert _run(code) == "AudioGoalEnv Discrete(4) True"


def _import_seconds(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return float(_run(code))


def test_import_avworld_costs_a_few_numpy_imports():
    # a ratio to numpy's import in the same kind of fresh interpreter, best of 3 (the machine may be
    # busy); gymnasium's own import is ~1.5x numpy's, the simulator's stack (Embree, scipy, numba)
    # ~15x; the bound is generous so that only a heavy import creeping back fails it
    numpy_s = min(_import_seconds("numpy") for _ in range(3))
    avworld_s = min(_import_seconds("avworld") for _ in range(3))
    assert avworld_s < 6.0 * numpy_s, (avworld_s, numpy_s)
