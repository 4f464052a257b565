"""World models behind one interface, and the Oracle world model (the simulator itself).

A world model predicts, for N (state, action) pairs at once, the next observation the policy
sees, the reward, whether the episode ended, and the next states. States are opaque to the
planner. :meth:`WorldModel.root` turns the real env's present into a state without changing
the env; the planner never steps the real env.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np


@dataclass
class Prediction:
    obs: list[dict]  # per pair: the observation dict the policy sees after the action
    reward: np.ndarray  # (N,) float; NaN where the model cannot tell (STOP in a learned model)
    terminal: np.ndarray  # (N,) bool: the episode ended (no value after it)
    done: np.ndarray  # (N,) bool: cannot be expanded further (terminal or truncated)
    states: list  # per pair: the next state


class WorldModel:
    """Interface. ``predicts_stop``: whether rewards of STOP are predicted (else NaN)."""

    name = "world model"
    predicts_stop = True

    def reset(self, env, obs: dict) -> None:
        """A real episode starts in ``env`` with observation ``obs``."""

    def observe(self, obs: dict) -> None:
        """A real step gave ``obs`` (after :meth:`reset`'s first)."""

    def root(self, env):
        """The state of the real env's present (the env is left untouched)."""
        raise NotImplementedError

    def step(self, states: list, actions: list[int]) -> Prediction:
        raise NotImplementedError


def clone_env(env):
    """An independent copy of an :class:`~avworld.tasks.audiogoal.AudioGoalEnv` mid-episode (wrappers
    dropped): stepping it gives the observations, rewards and outcome stepping ``env`` would, and leaves
    ``env`` as it was. Scene worlds and caches are shared; the simulator is cloned
    (:meth:`~avworld.sim.simulator.Simulator.clone`)."""
    base = env.unwrapped
    if base.sim is None:
        raise ValueError("clone_env: reset the env first")
    new = copy.copy(base)
    new.sim = base.sim.clone()
    r = base._replay
    new._replay = {"rng": r["rng"], "options": dict(r["options"]), "actions": list(r["actions"])}
    new._last = dict(base._last)
    new._np_random = copy.deepcopy(base.np_random)
    return new


class OracleWorldModel(WorldModel):
    """The true dynamics: each state is a cloned env, stepped and thrown away (seed 001's "Oracle WM")."""

    name = "oracle"
    predicts_stop = True

    def root(self, env):
        return clone_env(env)

    def step(self, states: list, actions: list[int]) -> Prediction:
        obs, rew, term, done, nxt = [], [], [], [], []
        for s, a in zip(states, actions, strict=True):
            c = clone_env(s)  # a state may be expanded with several actions
            o, r, te, tr, _ = c.step(int(a))
            obs.append(o)
            rew.append(r)
            term.append(te)
            done.append(te or tr)
            nxt.append(c)
        return Prediction(obs, np.asarray(rew, float), np.asarray(term, bool), np.asarray(done, bool), nxt)
