"""The scene worlds an AudioGoal env keeps built (shared by the envs of a process), and its
discrete action parsing."""

from __future__ import annotations

import weakref
from collections import OrderedDict

import numpy as np

from avworld.geometry.actions import Action
from avworld.sim.config import SimConfig
from avworld.sim.world import SharedWorld
from avworld.tasks.episodes import EpisodeError

#: worlds held by some env of this process, by (scene spec, SimConfig); freed when no env holds them
_PROCESS_WORLDS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class WorldCache:
    """The last ``size`` scene worlds an env used (LRU), looked up first among the worlds any env of
    this process holds: a world with its RIR caches takes tens to hundreds of MB, and outputs do not
    depend on a world's cache history, so envs of one process (a ``SyncVectorEnv``) share them."""

    def __init__(self, config: SimConfig, size: int) -> None:
        self.config = config
        self.size = int(size)
        self._worlds: OrderedDict[str, SharedWorld] = OrderedDict()
        self.builds = 0  # worlds this cache had to build (not found in the process)

    def get(self, spec: str) -> SharedWorld:
        from avworld.geometry.spec import load_scene_spec

        w = self._worlds.get(spec)
        if w is not None:
            self._worlds.move_to_end(spec)
            return w
        key = (spec, self.config)
        w = _PROCESS_WORLDS.get(key)
        if w is None:
            w = SharedWorld(load_scene_spec(spec), self.config)
            _PROCESS_WORLDS[key] = w
            self.builds += 1
        self._worlds[spec] = w
        while len(self._worlds) > self.size:
            self._worlds.popitem(last=False)
        return w

    def __len__(self) -> int:
        return len(self._worlds)


def discrete_action(action) -> Action:
    """The :class:`Action` of a discrete env's action: an integer 0-3 (a Python or numpy integer, or a
    one-element integer array); floats, even whole ones, are refused rather than truncated."""
    a = action
    if isinstance(a, np.ndarray) and a.size == 1 and np.issubdtype(a.dtype, np.integer):
        a = a.reshape(()).item()
    if isinstance(a, int | np.integer) and not isinstance(a, bool | np.bool_) and 0 <= int(a) < len(Action):
        return Action(int(a))
    kind = "" if isinstance(a, int | np.integer) else f" ({type(action).__name__})"
    raise EpisodeError(f"action must be one of {[int(a) for a in Action]} ({[a.name for a in Action]}) as an "
                       f"integer, got {action!r}{kind}; a policy with float outputs must round or argmax them")


def env_config(config_cls, config, overrides: dict, render_mode, env_name: str, error: type[Exception]):
    """An env's config: ``config`` (default ``config_cls()``) with keyword ``overrides``; ``error`` names
    unknown options (listing the valid ones) and a ``render_mode`` other than None / "rgb_array"."""
    from dataclasses import fields, replace

    names = {f.name for f in fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise error(f"unknown {env_name} options {unknown}; valid: {sorted(names)}")
    if render_mode not in (None, "rgb_array"):
        raise error(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
    return replace(config or config_cls(), **overrides)


def chosen_episode(options: dict, episodes: list, rng, error: type[Exception]):
    """The episode ``reset(options=...)`` names (``episode``, ``episode_id`` or ``episode_index``), else
    a random one of ``episodes`` drawn with ``rng``; None when neither (the env then draws one from
    its scenes). ``error`` for an unknown id or an index out of range."""
    if "episode" in options:
        return options["episode"]
    if "episode_id" in options:
        for ep in episodes:
            if ep.episode_id == options["episode_id"]:
                return ep
        raise error(f"no episode with id {options['episode_id']!r} in this env's episodes")
    if "episode_index" in options:
        k = int(options["episode_index"])
        if not 0 <= k < len(episodes):
            raise error(f"episode_index {k} out of range; this env has {len(episodes)} episodes")
        return episodes[k]
    if episodes:
        return episodes[int(rng.integers(len(episodes)))]
    return None
