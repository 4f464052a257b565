"""Baseline AudioGoal agents: the sanity floor and ceiling for learned agents.

Every agent has ``reset(env)`` (called after ``env.reset``; ``env`` is the unwrapped
:class:`~avworld.tasks.audiogoal.AudioGoalEnv`) and ``act(obs, info) -> int``. Only the
oracle reads privileged state (the goal and the navigation grid); the heuristic uses
nothing but the binaural ``audio`` observation.
"""

from __future__ import annotations

import numpy as np

from avworld.geometry.actions import Action
from avworld.geometry.follower import ShortestPathFollower


class RandomAgent:
    """Uniformly random actions, STOP included (SoundSpaces' random baseline)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, env) -> None:
        pass

    def act(self, obs, info) -> int:
        return int(self.rng.integers(len(Action)))


class ForwardBiasAgent(RandomAgent):
    """Random with a bias to walk: forward with ``p_forward``, STOP with ``p_stop``, else a turn."""

    name = "forward"

    def __init__(self, seed: int = 0, p_forward: float = 0.7, p_stop: float = 0.01) -> None:
        super().__init__(seed)
        if not (0 <= p_forward and 0 <= p_stop and p_forward + p_stop <= 1):
            raise ValueError(f"need p_forward, p_stop >= 0 with sum <= 1, got {p_forward}, {p_stop}")
        rest = (1.0 - p_forward - p_stop) / 2
        self.p = np.array([p_stop, p_forward, rest, rest])

    def act(self, obs, info) -> int:
        return int(self.rng.choice(len(Action), p=self.p))


class OracleAgent:
    """The shortest-path follower to the episode's goal (privileged: reads the goal and the map)."""

    name = "oracle"

    #: the follower stops this fraction of the success distance from the goal, at most one step away: it
    #: measures the pulled path, the env the geodesic field, which reads up to ~1 % longer (with 1 m grid
    #: steps, stopping "one step" away then ended 1.004 m from the goal, a failure)
    STOP_FRACTION = 0.97

    def reset(self, env) -> None:
        sc = env.sim_config
        self.env = env
        radius = min(sc.forward_step_m, self.STOP_FRACTION * env.config.success_distance_m)
        self.follower = ShortestPathFollower(env.world_.nav, sc.forward_step_m, sc.turn_deg, goal_radius_m=radius)

    def act(self, obs, info) -> int:
        x, y, yaw = self.env.sim.pose
        return int(self.follower.next_action((x, y), yaw, self.env.goal_xy))


class AudioHeuristicAgent:
    """Audio only: climb the loudness gradient, steer by the louder ear, stop where it is loud.

    Per step it reads the broadband level ``L`` (dB) and the interaural level difference
    (ILD, left minus right, dB) of the step's binaural audio, smoothed over the last two
    steps. Where the direct sound dominates (``L`` above ``steer_db``) an ILD beyond
    ``ild_db`` turns it toward the louder ear; otherwise it walks forward, and when the
    level has fallen over ``back_steps`` consecutive forward steps it turns by a random
    90-180 degrees (interaural cues cannot tell front from back, and in another room the
    reverberant field carries little direction). It stops once the smoothed level reaches
    ``near_db``, the level heard about a metre from the unit-power source of the default
    episodes (calibrate it for other sounds). A collision makes it turn away. The defaults were chosen
    on train-split episodes with the acoustics of 2026-12-07 (docs/tasks.md).
    """

    name = "heuristic"

    def __init__(self, ild_db: float = 2.0, steer_db: float = -47.0, near_db: float = -35.0, back_steps: int = 3,
                 seed: int = 0) -> None:
        self.ild_db, self.steer_db, self.near_db, self.back_steps = ild_db, steer_db, near_db, back_steps
        self.rng = np.random.default_rng(seed)

    def reset(self, env) -> None:
        self.queue: list[int] = []
        self.history: list[tuple[float, float]] = []
        self.prev_level = -np.inf
        self.falling = 0
        self.turns_in_row = 0
        self.turn_steps_90 = max(1, int(round(90.0 / env.sim_config.turn_deg)))

    @staticmethod
    def levels(audio: np.ndarray) -> tuple[float, float]:
        """(level dB, ILD dB) of a (2, n) waveform."""
        e = np.mean(np.square(audio, dtype=np.float64), axis=1) + 1e-12
        return float(10 * np.log10(e.mean())), float(10 * np.log10(e[0] / e[1]))

    def act(self, obs, info) -> int:
        self.history = [*self.history[-1:], self.levels(obs["audio"])]
        level = float(np.mean([h[0] for h in self.history]))
        ild = float(np.mean([h[1] for h in self.history]))
        if level >= self.near_db:
            return int(Action.STOP)
        if info.get("collided", False):
            self.queue = []
            self._turn_around(90)
        if self.queue:
            return self.queue.pop(0)
        if level > self.steer_db and abs(ild) > self.ild_db and self.turns_in_row < 36:
            self.turns_in_row += 1
            return int(Action.TURN_LEFT if ild > 0 else Action.TURN_RIGHT)
        self.turns_in_row = 0
        self.falling = self.falling + 1 if level < self.prev_level - 0.5 else 0
        self.prev_level = level
        if self.falling >= self.back_steps:
            self.falling = 0
            self._turn_around(int(self.rng.integers(90, 181)))
            return self.queue.pop(0)
        return int(Action.MOVE_FORWARD)

    def _turn_around(self, degrees: int) -> None:
        turn = int(self.rng.choice([Action.TURN_LEFT, Action.TURN_RIGHT]))
        n = max(1, int(round(degrees / 90 * self.turn_steps_90)))
        self.queue += [turn] * n + [int(Action.MOVE_FORWARD)]
        self.history = []
        self.prev_level = -np.inf


AGENTS = {"random": RandomAgent, "forward": ForwardBiasAgent, "oracle": OracleAgent,
          "heuristic": AudioHeuristicAgent}


def make_agent(name: str, seed: int = 0):
    """A baseline agent by name: random, forward, oracle, heuristic."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose one of {sorted(AGENTS)}")
    cls = AGENTS[name]
    return cls() if cls is OracleAgent else cls(seed=seed)
