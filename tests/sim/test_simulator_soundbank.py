"""The simulator with the built-in sound bank (the default when none is given)."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.acoustics.spatial_rir import AcousticConfig
from avworld.geometry.actions import Action
from avworld.geometry.builder import box_room
from avworld.sim.config import SimConfig
from avworld.sim.simulator import Simulator
from avworld.sim.sources import SoundSourceSpec
from avworld.sounds import UnknownSoundError


@pytest.fixture(scope="module")
def sim():
    return Simulator(box_room((6.0, 5.0, 2.7)), SimConfig.preset("avw", acoustics=AcousticConfig(max_rir_s=0.5)))


def test_default_bank_ring_and_speech(sim):
    obs = sim.reset(agent_pose=(4.5, 2.5, np.pi), sources=[
        SoundSourceSpec((1.0, 1.0, 1.0), "telephone"),
        SoundSourceSpec((1.0, 4.0, 1.5), sim.sound_bank.names()[-1], clip_index=2, start_offset_s=-3.0),
    ])
    heard = [obs["audio"]] + [sim.step(Action.TURN_LEFT)["audio"] for _ in range(20)]
    heard = np.concatenate(heard, axis=1)
    assert heard.shape == (2, 21 * 2400)
    assert np.sqrt(np.mean(heard**2)) > 1e-4 and np.isfinite(heard).all()
    assert obs["spectrogram"].shape[0] == 2


def test_unknown_sound_type_is_a_clear_error(sim):
    with pytest.raises(UnknownSoundError, match="did you mean"):
        sim.reset(agent_pose=(4.5, 2.5, 0.0), sources=[SoundSourceSpec((1.0, 1.0, 1.0), "telefone")])
