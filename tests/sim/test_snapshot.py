"""Simulator snapshot / restore / clone: byte-identical continuations, the original left alone."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.spatial_rir import AcousticConfig
from avworld.geometry.actions import Action
from avworld.geometry.builder import box_room
from avworld.sim.config import SimConfig
from avworld.sim.simulator import Simulator, SimulatorError
from avworld.sim.sources import SoundSourceSpec
from avworld.sim.world import SharedWorld
from avworld.vision.camera import CameraConfig

FS = 16000
KEYS = ("rgb", "depth", "audio", "spectrogram", "pose")


class NoiseBank:
    sample_rate_hz = FS

    def clip(self, name: str, index: int = 0) -> np.ndarray:
        return np.random.default_rng(index).normal(0, 0.1, FS * 3).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    # microphone noise on: the noise generator is part of the state a snapshot must copy
    cfg = SimConfig.preset("avw", acoustics=AcousticConfig(max_rir_s=0.6), camera=CameraConfig(width=24, height=24),
                           noise_snr_db=20.0)
    return SharedWorld(box_room((8.0, 6.0, 3.0)), cfg)


PREFIX = [Action.MOVE_FORWARD, Action.TURN_LEFT, Action.MOVE_FORWARD]
BRANCH = [Action.MOVE_FORWARD, Action.TURN_RIGHT, Action.MOVE_FORWARD, Action.MOVE_FORWARD, Action.STOP]
OTHER = [Action.TURN_LEFT, Action.TURN_LEFT, Action.MOVE_FORWARD, Action.MOVE_FORWARD, Action.MOVE_FORWARD]


def started(world) -> Simulator:
    sim = Simulator(world, sound_bank=NoiseBank())
    sim.reset(agent_pose=(3.0, 3.0, 0.3), sources=[SoundSourceSpec((6.5, 4.5, 1.2), "noise", clip_index=2)], seed=5)
    for a in PREFIX:
        sim.step(a)
    return sim


def run(sim: Simulator, actions) -> list[dict]:
    return [sim.step(a) for a in actions]


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for oa, ob in zip(a, b, strict=True):
        for k in KEYS:
            assert np.asarray(oa[k]).tobytes() == np.asarray(ob[k]).tobytes(), k


def test_restore_gives_byte_identical_observations(world):
    sim = started(world)
    snap = sim.snapshot()
    first = run(sim, BRANCH)
    sim.restore(snap)
    again = run(sim, BRANCH)
    assert_same(first, again)
    sim.restore(snap)  # a snapshot can be restored more than once
    assert_same(first, run(sim, BRANCH))
    # the reverberation carried from the prefix is part of the state: a fresh episode at the same
    # pose hears something else in its first step
    fresh = Simulator(world, sound_bank=NoiseBank())
    fresh.reset(agent_pose=snap.pose, sources=sim.sources, seed=5)
    assert fresh.step(BRANCH[0])["audio"].tobytes() != first[0]["audio"].tobytes()


def test_clone_matches_the_original_and_leaves_it_alone(world):
    reference = run(started(world), BRANCH)  # never cloned
    sim = started(world)
    pose, step = sim.pose.copy(), sim.step_index
    before = sim.observe()["audio"].copy()
    clone = sim.clone()
    run(clone, OTHER)  # look-ahead on the copy
    assert np.array_equal(sim.pose, pose) and sim.step_index == step
    assert np.array_equal(sim.observe()["audio"], before)
    clone2 = sim.clone()
    assert_same(run(clone2, BRANCH), reference)  # a copy steps exactly like the original would
    assert_same(run(sim, BRANCH), reference)  # and the original still does


def test_snapshot_before_reset_is_refused(world):
    with pytest.raises(SimulatorError, match="reset"):
        Simulator(world, sound_bank=NoiseBank()).snapshot()
    sim = started(world)
    with pytest.raises(SimulatorError, match="SimulatorSnapshot"):
        sim.restore({"pose": sim.pose})
