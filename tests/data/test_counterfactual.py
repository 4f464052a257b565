"""'What if' renders: the stored actions reproduce the stored future, other actions another one."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.data.counterfactual import (
    WHAT_IFS,
    CounterfactualError,
    CounterfactualMismatchError,
    choose_what_if,
    render_what_if,
)
from avworld.data.poses import compose
from avworld.data.reader import AVWDataset
from avworld.geometry.actions import Action


def _long_item(data, horizon=4):
    for i in range(len(data)):
        if data.info(i)["frames"] >= horizon + 6:
            return i, 3
    pytest.skip("no trajectory long enough")


def test_stored_actions_reproduce_the_stored_future_and_rewards(tiny_dataset):
    root, _ = tiny_dataset
    data = AVWDataset(root)
    i, t = _long_item(data)
    small = data.small(i)
    h = 4
    out = render_what_if(data, i, t, small["action"][t:t + h])
    assert np.array_equal(out["frames"], data.frames(i, "rgb", slice(t, t + h + 1)))
    assert np.array_equal(out["clips"], data.frames(i, "audio", slice(t, t + h + 1)).astype(np.float32))
    assert np.allclose(out["pose"], small["pose"][t:t + h + 1])
    cum = np.cumsum(small["reward"][t:t + h].astype(np.float64))
    assert np.allclose(out["reward"], cum, atol=1e-6)
    # aggregated actions compose the per-step ones (seed 001, Eq. 1)
    acc = np.zeros(3)
    for j in range(h):
        acc = compose(acc, out["step_action"][j])
        assert np.allclose(acc, out["action"][j], atol=1e-5)


def test_a_what_if_turn_changes_the_view_and_the_heading(tiny_dataset):
    root, _ = tiny_dataset
    data = AVWDataset(root)
    i, t = _long_item(data)
    stored = data.small(i)["action"][t:t + 4]
    name = choose_what_if(stored)
    assert int(WHAT_IFS[name]) != int(stored[0])
    out = render_what_if(data, i, t, [int(Action.TURN_LEFT)] * 3)
    assert np.allclose(out["action"][:, :2], 0, atol=1e-9)           # turning in place
    assert np.all(np.diff(out["action"][:, 2]) > 0)                    # the yaw grows to the left
    assert not np.array_equal(out["frames"][1], out["frames"][0])     # the view changes


def test_choose_what_if_is_deterministic_and_differs_first():
    assert choose_what_if([1, 1, 1, 1]) == "left"       # left and right tie on 4 differences: order wins
    assert choose_what_if([1, 1, 1, 2]) == "right"      # right differs in 4 steps, left in 3
    assert choose_what_if([2, 2, 3, 3]) == "forward"    # forward differs in all 4 steps
    assert choose_what_if([3, 2, 2, 2]) == "forward"
    assert choose_what_if([0]) == "forward"             # a stored STOP differs from every move
    with pytest.raises(CounterfactualError):
        choose_what_if([])


def test_bad_input_is_a_typed_error(tiny_dataset):
    root, _ = tiny_dataset
    data = AVWDataset(root)
    with pytest.raises(CounterfactualError, match="MOVE_FORWARD"):
        render_what_if(data, 0, 0, [0, 1])                 # STOP is not a what-if move
    with pytest.raises(CounterfactualError, match="outside trajectory"):
        render_what_if(data, 0, 10_000, [1])
    with pytest.raises(CounterfactualError, match="not in the split"):
        render_what_if(data, 99, 0, [1])


def test_a_dataset_from_another_engine_is_refused(tiny_dataset, monkeypatch):
    root, _ = tiny_dataset
    data = AVWDataset(root)
    real = data.frames

    def darker(i, name, sel):
        x = real(i, name, sel)
        return x // 2 if name == "rgb" else x
    monkeypatch.setattr(data, "frames", darker)
    with pytest.raises(CounterfactualMismatchError, match="regenerate"):
        render_what_if(data, 0, 2, [1])
