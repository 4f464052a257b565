"""Torch loaders: CDiT samples (aggregated actions, offsets, rewards), sequences, workers, splits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.data.errors import DataError  # noqa: E402
from avworld.data.loaders import CDiTDataset, SequenceDataset, TrajectoryBlockSampler, worker_init  # noqa: E402
from avworld.data.poses import compose, relative_pose, step_deltas  # noqa: E402
from avworld.geometry.actions import Action  # noqa: E402


def _apply_discrete(pose, action, forward_m=0.15, turn_deg=10.0):
    """Where an action moves a pose when nothing blocks it."""
    x, y, yaw = pose
    if action == Action.MOVE_FORWARD:
        return np.array([x + forward_m * np.cos(yaw), y + forward_m * np.sin(yaw), yaw])
    if action in (Action.TURN_LEFT, Action.TURN_RIGHT):
        s = 1 if action == Action.TURN_LEFT else -1
        return np.array([x, y, yaw + s * np.radians(turn_deg)])
    return np.array(pose, float)


def test_cdit_sample_shapes_and_types(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split="train", depth=True)
    s = ds[0]
    assert s["context_rgb"].shape == (4, 3, 48, 48) and s["context_rgb"].dtype == torch.uint8
    assert s["context_audio"].shape == (4, 2, 2400) and s["context_audio"].dtype == torch.float32
    assert s["goal_rgb"].shape == (4, 3, 48, 48) and s["goal_audio"].shape == (4, 2, 2400)
    assert s["goal_action"].shape == (4, 3) and s["goal_offset"].shape == (4,) and s["goal_reward"].shape == (4,)
    assert s["context_depth"].shape == (4, 1, 48, 48) and s["goal_depth"].shape == (4, 1, 48, 48)
    assert torch.allclose(s["context_pose"][-1], torch.zeros(3), atol=1e-6)  # the current frame is the origin
    lengths = [t.length for t in ds.data.trajectories]
    assert len(ds) == sum(n - 3 for n in lengths)


def test_goal_actions_compose_the_per_step_actions(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split=None, window=16, num_goals=4)
    checked_discrete = 0
    for idx in range(0, len(ds), 3):
        s = ds[idx]
        i, t = int(s["traj"]), int(s["t"])
        small = ds.data.small(i)
        poses, actions, rewards = small["pose"], small["action"], small["reward"]
        deltas = step_deltas(poses)
        frames = ds.data.frames(i, "rgb", slice(None))
        for k, off in enumerate(s["goal_offset"].tolist()):
            assert off != 0 and abs(off) <= 16 and 0 <= t + off < len(poses)
            g = t + off
            # composition of the per-step relative poses between t and the goal
            acc = np.zeros(3)
            for j in range(min(t, g), max(t, g)):
                acc = compose(acc, deltas[j])
            expected = acc if off > 0 else relative_pose(acc, np.zeros(3))  # backwards: the inverse
            assert np.allclose(s["goal_action"][k].numpy(), expected, atol=1e-5)
            # composition of the discrete actions themselves (no step of this data set collides)
            if off > 0 and not small["collided"][t + 1:g + 1].any():
                p = poses[t].copy()
                for j in range(t, g):
                    p = _apply_discrete(p, actions[j])
                assert np.allclose(relative_pose(poses[t], p), s["goal_action"][k].numpy(), atol=1e-5)
                checked_discrete += 1
            lo, hi = sorted((t, g))
            total = rewards[lo:hi].astype(np.float64).sum()
            assert s["goal_reward"][k].item() == pytest.approx(total if off > 0 else -total, abs=1e-5)
            assert s["goal_reward"][k].item() == pytest.approx(small["geodesic_m"][t] - small["geodesic_m"][g],
                                                               abs=1e-5)
            assert np.array_equal(s["goal_rgb"][k].permute(1, 2, 0).numpy(), frames[g])
        assert np.array_equal(s["context_rgb"][-1].permute(1, 2, 0).numpy(), frames[t])
    assert checked_discrete > 20


def test_goal_draws_are_seeded_per_epoch(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split="train", seed=1)
    a = [ds[i]["goal_offset"].tolist() for i in range(10)]
    assert a == [ds[i]["goal_offset"].tolist() for i in range(10)]
    ds.set_epoch(1)
    assert a != [ds[i]["goal_offset"].tolist() for i in range(10)]


def test_trajectory_cache_gives_identical_samples(tiny_dataset):
    root, _ = tiny_dataset
    plain = CDiTDataset(root, split="test")
    cached = CDiTDataset(root, split="test", cache_trajectories=2)
    for idx in [5, 0, 17, len(plain) - 1, 3]:
        a, b = plain[idx], cached[idx]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(cached._cache) == 2


def test_block_sampler_is_a_permutation_in_trajectory_blocks(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split=None)
    sampler = TrajectoryBlockSampler(ds, block=2, seed=0)
    order = list(sampler)
    assert sorted(order) == list(range(len(ds)))
    trajs = [ds.locate(i)[0] for i in order]
    first_block = set(trajs[: ds._valid[trajs[0]]])
    assert len(first_block) <= 2
    sampler.set_epoch(1)
    assert list(sampler) != order
    # two streams in runs of 8: the runs of each stream use trajectories the other never touches
    two = list(TrajectoryBlockSampler(ds, block=1, streams=2, batch_size=8))
    assert sorted(two) == list(range(len(ds)))
    runs = [two[k:k + 8] for k in range(0, len(two), 8)]
    even = {ds.locate(i)[0] for r in runs[:6:2] for i in r}
    odd = {ds.locate(i)[0] for r in runs[1:6:2] for i in r}
    assert even and odd and not (even & odd)


def test_dataloader_with_two_workers(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split="train", cache_trajectories=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2,
                                         sampler=TrajectoryBlockSampler(ds, block=2, streams=2, batch_size=8))
    n = 0
    for batch in loader:
        assert batch["goal_rgb"].shape[1:] == (4, 3, 48, 48)
        n += len(batch["t"])
    assert n == len(ds)


def _strategy_in_worker(_):
    return torch.multiprocessing.get_sharing_strategy()


def test_worker_init_hands_batches_over_by_name_and_changes_no_value(tiny_dataset):
    root, _ = tiny_dataset
    ds = CDiTDataset(root, split="train", cache_trajectories=4)
    sampler = TrajectoryBlockSampler(ds, block=2, streams=2, batch_size=8)
    in_process = list(torch.utils.data.DataLoader(ds, batch_size=8, sampler=sampler))
    before = torch.multiprocessing.get_sharing_strategy()
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, sampler=sampler, worker_init_fn=worker_init)
    batches = list(loader)
    assert len(batches) == len(in_process)
    for a, b in zip(in_process, batches):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.multiprocessing.get_sharing_strategy() == before  # the main process keeps its own
    # in a worker the strategy is file_system (what makes the main process map tensors by name)
    probe = torch.utils.data.DataLoader(range(2), batch_size=1, num_workers=1, worker_init_fn=worker_init,
                                        collate_fn=_strategy_in_worker)
    assert list(probe) == ["file_system", "file_system"]


def test_sequence_dataset(tiny_dataset):
    root, _ = tiny_dataset
    seq = SequenceDataset(root, split="val", length=6, stride=3)
    item = seq[1]
    i, start = int(item["traj"]), int(item["start"])
    small = seq.data.small(i)
    assert item["rgb"].shape == (6, 3, 48, 48) and start == 3
    assert np.array_equal(item["action"].numpy(), small["action"][3:9])
    for t in range(5):
        assert np.allclose(compose(item["pose"][t].double().numpy(), item["step_action"][t].double().numpy()),
                           item["pose"][t + 1].numpy(), atol=1e-5)
    whole = SequenceDataset(root, split="val", length=None)
    assert len(whole) == 3 and whole[0]["rgb"].shape[0] == seq.data.trajectories[0].length


def test_loader_errors(tiny_dataset):
    root, _ = tiny_dataset
    with pytest.raises(DataError, match="context"):
        CDiTDataset(root, context=0)
    with pytest.raises(DataError, match="unknown split"):
        CDiTDataset(root, split="dev")
    with pytest.raises(DataError, match="lower context"):
        CDiTDataset(root, split="train", context=400)


def test_package_imports_without_torch():
    code = ("import sys, avworld.data, avworld.data.cli, avworld.data.reader, avworld.data.inspection, "
            "avworld.data.replay; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
