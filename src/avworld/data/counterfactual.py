"""'What if' renders for counterfactual evaluation: the simulator's answer to an action the data did not take.

For a stored trajectory ``i`` and a context ending at frame ``t``, :func:`render_what_if` replays the
stored actions up to ``t`` in a fresh simulator (as :func:`~avworld.data.replay.replay_trajectory`
does), checks that frame ``t`` is bit-identical to the stored one (else the dataset was rendered by
another engine version or config and the comparison would be meaningless:
:class:`CounterfactualMismatchError`), then takes the *what-if* actions instead of the stored ones and
returns what the agent would have seen and heard, with the poses, aggregated actions and rewards
computed exactly as the dataset computes them. A world model asked the same question can then be
scored against the simulator's render (issue 18, item 6: no anchor of the seed can do this).

:func:`choose_what_if` picks, deterministically, a constant action sequence (all forward, all left or
all right) whose first action differs from the stored one and which differs from the stored actions
in the most steps. Torch-free.
"""

from __future__ import annotations

import numpy as np

from avworld.data.errors import DataError
from avworld.data.poses import relative_pose
from avworld.data.rollout import compute_rewards
from avworld.data.storage import quantize_audio
from avworld.geometry.actions import Action

#: The constant what-if sequences, in tie-break order.
WHAT_IFS = {"forward": Action.MOVE_FORWARD, "left": Action.TURN_LEFT, "right": Action.TURN_RIGHT}


class CounterfactualError(DataError):
    """Bad input to a counterfactual render."""


class CounterfactualMismatchError(CounterfactualError):
    """Replaying the stored actions does not reproduce the stored frame."""


def choose_what_if(stored_actions) -> str:
    """Name in :data:`WHAT_IFS` of the constant sequence whose first action differs from
    ``stored_actions[0]`` and that differs from ``stored_actions`` in the most steps (ties: the
    order of :data:`WHAT_IFS`). A stored STOP counts as different from every move."""
    a = np.asarray(stored_actions, dtype=np.int64)
    if a.ndim != 1 or len(a) == 0:
        raise CounterfactualError(f"stored_actions must be a non-empty 1-D sequence, got shape {a.shape}")
    best, best_n = None, -1
    for name, act in WHAT_IFS.items():
        if int(a[0]) == int(act):
            continue
        n = int((a != int(act)).sum())
        if n > best_n:
            best, best_n = name, n
    return best


def _check_item(dataset, i: int, t: int, horizon: int) -> int:
    if not 0 <= i < len(dataset.trajectories):
        raise CounterfactualError(f"trajectory {i} is not in the split ({len(dataset.trajectories)} trajectories)")
    length = int(dataset.info(i)["frames"])
    if not 0 <= t < length:
        raise CounterfactualError(f"frame t = {t} is outside trajectory {i} ({length} frames)")
    if horizon < 1:
        raise CounterfactualError(f"the what-if sequence must have at least one action, got {horizon}")
    return length


def render_what_if(dataset, i: int, t: int, actions, world=None) -> dict[str, np.ndarray]:
    """The simulator's frames t .. t + H when the agent at frame ``t`` of trajectory ``i`` takes
    ``actions`` (H action ids) instead of the stored ones.

    Returns ``frames`` (H + 1, S, S, 3) uint8 and ``clips`` (H + 1, 2, n) float32 (quantized like the
    stored audio), ``pose`` (H + 1, 3), ``geodesic_m`` (H + 1,), ``step_action`` (H, 3) (pose of frame
    t + j in the frame of t + j - 1), ``action`` (H, 3) (pose of t + j in the frame of t: the
    aggregated action of seed 001's Eq. 1) and ``reward`` (H,) (cumulative reward from t to t + j,
    the dataset's reward definition). ``world`` may be a :class:`~avworld.sim.world.SharedWorld` of
    the trajectory's scene (reuse it across items of one scene)."""
    from avworld.data.replay import start_trajectory

    acts = np.asarray(actions, dtype=np.int64)
    _check_item(dataset, i, t, len(acts))
    if acts.ndim != 1 or not np.isin(acts, [int(a) for a in Action if a != Action.STOP]).all():
        raise CounterfactualError(f"what-if actions must be MOVE_FORWARD (1), TURN_LEFT (2) or TURN_RIGHT (3) ids, "
                                  f"got {acts.tolist()}")
    cfg = dataset.config.trajectory
    meta = dataset.info(i)
    stored = dataset.small(i)["action"]
    sim, obs = start_trajectory(dataset, i, world)
    for s in range(t):
        obs = sim.step(int(stored[s]))
    if not np.array_equal(obs["rgb"], dataset.frames(i, "rgb", slice(t, t + 1))[0]):
        raise CounterfactualMismatchError(
            f"replaying trajectory {i} of {meta['scene']} to frame {t} does not reproduce the stored image: the "
            "dataset was rendered by another avworld version or simulator config; regenerate it (avworld data "
            "make) before a counterfactual evaluation")
    out = {"frames": [obs["rgb"]], "clips": [obs["audio"]], "pose": [obs["pose"]],
           "geodesic_m": [obs["geodesic_distance_m"][0]]}
    for a in acts:
        obs = sim.step(int(a))
        out["frames"].append(obs["rgb"])
        out["clips"].append(obs["audio"])
        out["pose"].append(obs["pose"])
        out["geodesic_m"].append(obs["geodesic_distance_m"][0])
    pose = np.asarray(out["pose"], np.float64)
    geo = np.asarray(out["geodesic_m"], np.float64)
    step_r = compute_rewards(geo, np.append(acts, Action.MOVE_FORWARD), cfg)[:-1]  # no STOP in a what-if
    return {"frames": np.stack(out["frames"]).astype(np.uint8),
            "clips": quantize_audio(np.stack(out["clips"]).astype(np.float32), cfg).astype(np.float32),
            "pose": pose, "geodesic_m": geo,
            "step_action": relative_pose(pose[:-1], pose[1:]).astype(np.float32),
            "action": relative_pose(pose[:1].repeat(len(acts), 0), pose[1:]).astype(np.float32),
            "reward": np.cumsum(step_r.astype(np.float64)).astype(np.float32)}
