"""Non-learned motion baselines of active separation, as policies over ``ActiveSeparation-v0``.

Every policy has ``reset()`` (call after ``env.reset``) and ``act(obs, info) -> int``;
:func:`rollout` runs one episode and returns what a separator and its metrics need (the
mixtures heard, the ground truth, the path). The separator is the same for every policy:
these only decide where the microphones go.

* :class:`StandInPlace` - keeps its start pose (STAY; the env needs ``allow_stay=True``).
* :class:`RotateInPlace` - turns clockwise (TURN_RIGHT) at every step.
* :class:`RandomMotion` - uniform over MOVE_FORWARD / TURN_LEFT / TURN_RIGHT (seeded).
* :class:`ProximityPrior` - random actions, but never steps beyond ``radius_m`` (2 m) of the
  target: it uses the privileged ``info["target_distance_m"]`` / ``info["target_direction_rad"]``
  and walks back when it finds itself outside.
* :class:`DoAPolicy` - steps away from the target, then turns toward the direction of
  arrival given by a ``direction(obs, info)`` estimate (e.g. :func:`binaural_doa` of the
  separated target binaural) and holds that pose. :func:`oracle_direction` is the privileged
  estimate, for tests and as an upper bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from avworld.tasks.separation import MOVE_FORWARD, STAY, TURN_LEFT, TURN_RIGHT
from avworld.tasks.separation_episodes import SeparationError

SPEED_OF_SOUND_M_S = 343.0
#: effective distance between the ears for the ITD -> angle conversion (Woodworth's sphere, KEMAR-sized head)
EAR_DISTANCE_M = 0.18


def _needs_stay(env) -> None:
    n = getattr(env.action_space, "n", 3)
    if n < 4:
        raise SeparationError("this baseline holds its pose with STAY: make the env with allow_stay=True")


class StandInPlace:
    """Never moves (the passive listener)."""

    name = "stand"

    def __init__(self, env=None) -> None:
        if env is not None:
            _needs_stay(env)

    def reset(self) -> None:
        pass

    def act(self, obs, info) -> int:
        return STAY


class RotateInPlace:
    """Turns clockwise at every step, sampling the mixture from every direction."""

    name = "rotate"

    def reset(self) -> None:
        pass

    def act(self, obs, info) -> int:
        return TURN_RIGHT


class RandomMotion:
    """Uniformly random MOVE_FORWARD / TURN_LEFT / TURN_RIGHT."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, obs, info) -> int:
        return int(self.rng.integers(3))


class ProximityPrior:
    """Random actions inside ``radius_m`` of the target (privileged distance and bearing).

    A forward step is taken only if the predicted distance after it,
    ``sqrt(d^2 + s^2 - 2 d s cos(theta))`` (d = ``target_distance_m``, theta =
    ``target_direction_rad``, s = ``step_m``), stays within ``radius_m``; otherwise it turns
    at random. Outside the radius (after a collision slid it away) it turns toward the target
    and walks back.
    """

    name = "proximity"

    def __init__(self, radius_m: float = 2.0, step_m: float = 1.0, seed: int = 0) -> None:
        if not radius_m > 0:
            raise SeparationError(f"ProximityPrior radius_m must be > 0, got {radius_m}")
        self.radius_m, self.step_m = float(radius_m), float(step_m)
        self.rng = np.random.default_rng(seed)

    def reset(self) -> None:
        pass

    def act(self, obs, info) -> int:
        d, theta = float(info["target_distance_m"]), float(info["target_direction_rad"])
        if d > self.radius_m:
            if abs(theta) <= math.pi / 4:
                return MOVE_FORWARD
            return TURN_LEFT if theta > 0 else TURN_RIGHT
        a = int(self.rng.integers(3))
        if a == MOVE_FORWARD:
            after = math.sqrt(max(d * d + self.step_m**2 - 2 * d * self.step_m * math.cos(theta), 0.0))
            if after > self.radius_m:
                a = TURN_LEFT if self.rng.random() < 0.5 else TURN_RIGHT
        return a


def oracle_direction(obs, info) -> float:
    """The true bearing of the target (privileged), radians counter-clockwise from the heading."""
    return float(info["target_direction_rad"])


def binaural_doa(binaural: np.ndarray, sample_rate_hz: int = 16000, ear_distance_m: float = EAR_DISTANCE_M) -> float:
    """Lateral direction of arrival (radians, positive = left) of a (2, n) binaural signal.

    GCC-PHAT time difference between the ears (positive when the left ear leads), mapped to
    ``arcsin(c * tau / ear_distance_m)``: front and back are not told apart (the angle lies in
    [-pi/2, pi/2]). Returns 0 for silence.
    """
    x = np.asarray(binaural, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 2:
        raise SeparationError(f"binaural_doa needs a (2, n) signal, got shape {x.shape}")
    if not np.any(x):
        return 0.0
    n = 2 * x.shape[1]
    spec = np.fft.rfft(x, n)
    cross = spec[1] * np.conj(spec[0])  # right vs left: a positive lag = the right ear lags
    cross /= np.maximum(np.abs(cross), 1e-12)
    cc = np.fft.irfft(cross, n)
    max_lag = int(math.ceil(ear_distance_m / SPEED_OF_SOUND_M_S * sample_rate_hz)) + 1
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([cc[: max_lag + 1], cc[-max_lag:]])
    tau = lags[int(np.argmax(vals))] / sample_rate_hz
    return float(math.asin(float(np.clip(tau * SPEED_OF_SOUND_M_S / ear_distance_m, -1.0, 1.0))))


class DoAPolicy:
    """Step away from the target, then face its direction of arrival and hold (see module docstring).

    ``direction(obs, info)`` returns the target's bearing in radians counter-clockwise from the
    heading (estimated, e.g. ``binaural_doa(separated_binaural)``, or :func:`oracle_direction`).
    Phase 1 moves forward once (turning right after a blocked move, up to 4 times); phase 2
    turns toward the estimate until it lies within ``tolerance_rad`` (45 deg: half a 90 deg
    turn) and then STAYs. The env needs ``allow_stay=True``.
    """

    name = "doa"

    def __init__(self, direction: Callable = oracle_direction, tolerance_rad: float = math.pi / 4,
                 env=None) -> None:
        if env is not None:
            _needs_stay(env)
        self.direction = direction
        self.tolerance_rad = float(tolerance_rad)
        self.reset()

    def reset(self) -> None:
        self._moved = False
        self._tries = 0
        self._last = None

    def act(self, obs, info) -> int:
        if not self._moved:
            if self._last == MOVE_FORWARD and not info.get("collided", False):
                self._moved = True
            elif self._tries >= 8:
                self._moved = True  # boxed in: face the target from here
            else:
                self._tries += 1
                self._last = TURN_RIGHT if self._last == MOVE_FORWARD else MOVE_FORWARD
                return self._last
        theta = float(self.direction(obs, info))
        if abs(theta) <= self.tolerance_rad:
            return STAY
        return TURN_LEFT if theta > 0 else TURN_RIGHT


BASELINES = {"stand": StandInPlace, "rotate": RotateInPlace, "random": RandomMotion, "proximity": ProximityPrior,
             "doa": DoAPolicy}


def rollout(env, policy, options: dict | None = None, seed: int | None = None) -> dict:
    """Run one episode; returns stacked arrays over its steps: ``audio`` (T, 2, n), ``target_mono``
    (T, n), ``target_binaural`` (T, 2, n), ``target_type`` (), ``actions`` (T - 1,), ``poses`` (T, 3),
    ``target_distance_m`` (T,), ``collided`` (T,), plus ``episode_id`` and ``scene``."""
    obs, info = env.reset(seed=seed, options=options)
    policy.reset()
    steps, actions = [(obs, info)], []
    done = False
    while not done:
        a = policy.act(obs, info)
        actions.append(a)
        obs, _, term, trunc, info = env.step(a)
        steps.append((obs, info))
        done = term or trunc
    return {
        "audio": np.stack([o["audio"] for o, _ in steps]),
        "target_mono": np.stack([i["target_mono"] for _, i in steps]),
        "target_binaural": np.stack([i["target_binaural"] for _, i in steps]),
        "target_type": int(steps[0][0]["target_type"]),
        "actions": np.asarray(actions, dtype=np.int64),
        "poses": np.stack([i["pose"] for _, i in steps]),
        "target_distance_m": np.array([i["target_distance_m"] for _, i in steps]),
        "collided": np.array([i["collided"] for _, i in steps]),
        "episode_id": steps[0][1]["episode_id"], "scene": steps[0][1]["scene"],
    }
