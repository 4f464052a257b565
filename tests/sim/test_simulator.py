"""Simulator: time alignment, continuity, mixing, actions, presets, sharing, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.signal import fftconvolve

from avworld.acoustics.spatial_rir import AcousticConfig, PositionError
from avworld.geometry.actions import Action
from avworld.geometry.builder import box_room
from avworld.sim.config import PRESETS, SimConfig, SimConfigError
from avworld.sim.simulator import Simulator, SimulatorError
from avworld.sim.sources import SoundSourceSpec
from avworld.sim.world import SharedWorld

FS = 16000


class ToyBank:
    """A minimal sound bank: a click, a tone, and noise."""

    sample_rate_hz = FS

    def __init__(self, click_at: int = 5000):
        self.click_at = click_at

    def clip(self, name: str, index: int = 0) -> np.ndarray:
        if name == "click":
            x = np.zeros(FS * 4, np.float32)
            x[self.click_at] = 1.0
            return x
        if name == "tone":
            t = np.arange(FS * 2) / FS
            return (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)  # 2 s: whole number of periods
        if name == "noise":
            return np.random.default_rng(index).normal(0, 0.1, FS * 3).astype(np.float32)
        raise KeyError(f"unknown sound type {name!r}")


@pytest.fixture(scope="module")
def world():
    cfg = SimConfig.preset("soundspaces2", acoustics=AcousticConfig(max_rir_s=0.6))
    return SharedWorld(box_room((8.0, 6.0, 3.0)), cfg)


def test_presets():
    assert PRESETS["soundspaces2"] == {"forward_step_m": 0.25, "turn_deg": 10.0, "step_s": 0.25}
    c = SimConfig.preset("avw")
    assert (c.forward_step_m, c.turn_deg, c.step_s, c.step_samples) == (0.15, 10.0, 0.15, 2400)
    g = SimConfig.preset("grid", camera=SimConfig().camera)
    assert (g.forward_step_m, g.turn_deg, g.step_s) == (1.0, 90.0, 1.0)
    with pytest.raises(SimConfigError, match="unknown preset"):
        SimConfig.preset("habitat")
    with pytest.raises(SimConfigError, match="step_s"):
        SimConfig(step_s=1 / 3)


def test_impulse_heard_in_the_step_containing_t_plus_d_over_c(world):
    for click_at in (5000, 3990):  # the second arrives across a step boundary
        sim = Simulator(world, sound_bank=ToyBank(click_at))
        agent = (6.0, 3.0, np.pi)  # facing the source: the direct sound is the strongest arrival
        src = (2.0, 3.0, world.ear_position(0, 0)[2])
        sim.reset(agent_pose=agent, sources=[SoundSourceSpec(src, "click", loop=False)])
        audio = [sim.observe()["audio"]] + [sim.step(Action.STOP)["audio"] for _ in range(5)]
        d = np.linalg.norm(np.array(src) - world.ear_position(6.0, 3.0))
        arrival = click_at + d / 343.0 * FS
        n = sim.config.step_samples
        heard = np.abs(np.concatenate(audio, axis=1)).max(axis=0)
        onset = int(np.argmax(heard > 0.2 * heard.max()))
        assert abs(onset - arrival) <= 4, (onset, arrival)
        assert onset // n == int(arrival // n)  # the step that contains t + d/c
        # nothing in any earlier step (up to the band-limited pre-ringing of the arrival)
        assert heard[: int(arrival) - 64].max() < 1e-3 * heard.max()


def test_stationary_looping_source_is_seamless(world):
    sim = Simulator(world, sound_bank=ToyBank())
    sim.reset(agent_pose=(6.0, 3.0, 0.5), sources=[SoundSourceSpec((2.0, 2.0, 1.2), "tone")])
    chunks = [sim.observe()["audio"]] + [sim.step(Action.STOP)["audio"] for _ in range(11)]
    heard = np.concatenate(chunks, axis=1)
    rir = world.binaural((2.0, 2.0, 1.2), world.ear_position(6.0, 3.0), 0.5)
    dry = np.tile(ToyBank().clip("tone"), 2)[: heard.shape[1]]
    expected = np.stack([fftconvolve(dry, rir[c])[: heard.shape[1]] for c in range(2)])
    np.testing.assert_allclose(heard, expected, atol=1e-5 * np.abs(expected).max())
    # hence no discontinuity at step boundaries: jumps there are like jumps elsewhere
    jumps = np.abs(np.diff(heard, axis=1)).max(axis=0)
    at_boundaries = jumps[np.arange(1, 12) * sim.config.step_samples - 1]
    assert at_boundaries.max() <= jumps.max() + 1e-9


def test_two_sources_mix_is_the_sum_of_each_alone(world):
    s1 = SoundSourceSpec((2.0, 2.0, 1.2), "noise", clip_index=1)
    s2 = SoundSourceSpec((5.0, 5.0, 1.0), "tone", start_offset_s=0.1)
    actions = [Action.TURN_LEFT, Action.MOVE_FORWARD, Action.MOVE_FORWARD, Action.TURN_RIGHT]

    def run(sources):
        sim = Simulator(world, sound_bank=ToyBank())
        out = [sim.reset(agent_pose=(4.0, 3.0, 0.0), sources=sources)["audio"]]
        out += [sim.step(a)["audio"] for a in actions]
        return np.concatenate(out, axis=1), sim

    both, sim = run([s1, s2])
    alone = run([s1])[0] + run([s2])[0]
    np.testing.assert_allclose(both, alone, atol=1e-6)
    obs = sim.observe()
    np.testing.assert_allclose(obs["audio"], obs["source_binaural"].sum(axis=0), atol=1e-6)
    assert obs["source_dry"].shape == (2, sim.config.step_samples)
    assert obs["geodesic_distance_m"].shape == (2,)


def test_actions_collisions_and_continuous(world):
    sim = Simulator(world, sound_bank=ToyBank())
    sim.reset(agent_pose=(7.8, 3.0, 0.0), sources=[])
    obs = sim.step(Action.MOVE_FORWARD)
    assert obs["collided"] and obs["pose"][0] < 8.0 - 0.1 + 1e-9  # stopped before the wall
    obs = sim.step(Action.TURN_LEFT)
    assert obs["pose"][2] == pytest.approx(np.radians(10.0))
    sim.reset(agent_pose=(2.0, 3.0, 0.0), sources=[])
    obs = sim.step(np.array([0.8, 0.0]))  # 0.8 m/s for 0.25 s
    assert obs["pose"][0] == pytest.approx(2.2, abs=1e-9)
    obs = sim.step(np.array([0.0, np.pi / 2]))
    assert obs["pose"][2] == pytest.approx(np.pi / 8)
    assert obs["audio"].shape == (2, 4000) and obs["rgb"].shape == (128, 128, 3)
    with pytest.raises(SimulatorError, match="unknown action"):
        sim.step(7)
    with pytest.raises(SimulatorError, match="continuous action"):
        sim.step(np.array([1.0, 2.0, 3.0]))


def test_bad_input(world):
    sim = Simulator(world, sound_bank=ToyBank())
    with pytest.raises(SimulatorError, match="not navigable"):
        sim.reset(agent_pose=(0.02, 3.0, 0.0))
    with pytest.raises(PositionError, match="outside the scene"):
        sim.reset(agent_pose=(4.0, 3.0, 0.0), sources=[SoundSourceSpec((20.0, 3.0, 1.0), "tone")])
    with pytest.raises(PositionError, match="inside a solid"):
        sim.reset(agent_pose=(4.0, 3.0, 0.0), sources=[SoundSourceSpec((-0.05, 3.0, 1.0), "tone")])
    with pytest.raises(KeyError, match="unknown sound type"):
        sim.reset(agent_pose=(4.0, 3.0, 0.0), sources=[SoundSourceSpec((2.0, 3.0, 1.0), "trumpet")])
    with pytest.raises(SimulatorError, match="reset"):
        Simulator(world, sound_bank=ToyBank()).step(Action.STOP)


def test_simulators_share_a_world_and_pickle(world):
    a, b = Simulator(world, sound_bank=ToyBank()), Simulator(world, sound_bank=ToyBank())
    assert a.world is b.world
    src = [SoundSourceSpec((2.0, 2.0, 1.2), "tone")]
    oa = a.reset(agent_pose=(5.0, 4.0, 1.0), sources=src, seed=3)
    ob = b.reset(agent_pose=(5.0, 4.0, 1.0), sources=src, seed=3)
    assert oa["audio"].tobytes() == ob["audio"].tobytes() and oa["rgb"].tobytes() == ob["rgb"].tobytes()
    clone = pickle.loads(pickle.dumps(world))
    c = Simulator(clone, sound_bank=ToyBank())
    oc = c.reset(agent_pose=(5.0, 4.0, 1.0), sources=src, seed=3)
    np.testing.assert_allclose(oc["audio"], oa["audio"], atol=1e-7)
    assert oc["rgb"].tobytes() == oa["rgb"].tobytes()


def test_binaural_cache_does_not_leak_history_into_outputs():
    """Two yaws in one 1e-4 rad cache bucket: the result must not depend on which came first."""
    cfg = SimConfig(acoustics=AcousticConfig(max_rir_s=0.3))
    w1, w2 = SharedWorld(box_room((5.0, 4.0, 2.7)), cfg), SharedWorld(box_room((5.0, 4.0, 2.7)), cfg)
    src, ear = np.array([1.0, 1.0, 1.5]), np.array([3.0, 2.0, 1.5])
    w1.binaural(src, ear, 0.30002)
    assert w1.binaural(src, ear, 0.29998).tobytes() == w2.binaural(src, ear, 0.29998).tobytes()


def test_threads_give_identical_observations_and_pickle():
    """The camera's rays split over threads (audio computed meanwhile): same bytes for any count."""
    scene = box_room((6.0, 5.0, 2.8))
    src = [SoundSourceSpec((1.5, 1.5, 1.2), "noise"), SoundSourceSpec((4.5, 3.5, 1.4), "tone")]
    runs = {}
    for threads in (1, 2, 3):
        sim = Simulator(SharedWorld(scene, SimConfig(threads=threads, acoustics=AcousticConfig(max_rir_s=0.4))),
                        sound_bank=ToyBank())
        assert sim.world.renderer.threads == threads
        obs = [sim.reset(agent_pose=(3.0, 2.5, 0.3), sources=src, seed=5)]
        obs += [sim.step(a) for a in (Action.MOVE_FORWARD, Action.TURN_LEFT, (0.4, 0.6), Action.MOVE_FORWARD)]
        runs[threads] = obs
    for threads in (2, 3):
        for a, b in zip(runs[1], runs[threads]):
            assert a.keys() == b.keys()
            for k in a:
                assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), (threads, k)
    world = SharedWorld(scene, SimConfig(threads=2))
    world.renderer.render((3.0, 2.5, 0.0))  # starts the worker pool, which must not travel
    clone = pickle.loads(pickle.dumps(world))
    pose = (3.0, 2.5, 0.0)
    assert clone.renderer.render(pose)["rgb"].tobytes() == world.renderer.render(pose)["rgb"].tobytes()


def test_threads_config_is_validated():
    assert SimConfig().threads is None  # automatic
    for bad in (0, -1, 2.5, True, 100):
        with pytest.raises(SimConfigError, match="threads"):
            SimConfig(threads=bad)


@pytest.mark.parametrize("directional", [False, True])
def test_streamed_split_rir_is_the_binaural_rir_and_turns_reuse_the_tail(directional):
    """What the simulator streams (early part + tail) is exactly :meth:`SharedWorld.binaural`; with an
    isotropic tail a turn on the spot keeps the tail (and its cached spectra), a move does not; with a
    directional one a turn changes only the tail's level per ear and band."""
    cfg = SimConfig(acoustics=AcousticConfig(max_rir_s=0.3, directional_tail=directional))
    w = SharedWorld(box_room((5.0, 4.0, 2.7)), cfg)
    src, ear = np.array([1.0, 1.0, 1.5]), np.array([3.0, 2.0, 1.5])
    a, b = w.binaural_split(src, ear, 0.3), w.binaural_split(src, ear, 1.2)
    assert a.full().tobytes() == w.binaural(src, ear, 0.3).tobytes()
    assert not a.tail.flags.writeable
    if directional:
        assert a.tail is not b.tail and w.binaural_split(src, ear, 0.3).tail is a.tail
        ratio = np.sqrt(np.mean(a.tail**2, axis=1) / np.mean(b.tail**2, axis=1))
        assert np.all(np.abs(np.log(ratio)) < 0.5)  # same noise and envelope, levels within a few dB
    else:
        assert a.tail is b.tail and a.tail_spectrum is b.tail_spectrum
    moved = w.binaural_split(src, ear + [0.15, 0.0, 0.0], 0.3)
    assert moved.tail is not a.tail


def test_chunk_spectra_kept_across_episodes_do_not_change_the_audio(world):
    """The stream's chunk-spectrum caches (the world's) outlive episodes (a looping sound on the step grid recurs):
    an episode sounds the same, byte for byte, after other episodes as in a fresh simulator."""
    spec = SoundSourceSpec((2.0, 2.0, 1.2), "tone", start_offset_s=-3 * world.config.step_s)
    actions = [Action.TURN_LEFT, Action.MOVE_FORWARD, Action.STOP, Action.TURN_RIGHT, Action.MOVE_FORWARD]

    def episode(sim, pose):
        out = [sim.reset(agent_pose=pose, sources=[spec], seed=1)["audio"]]
        return np.concatenate(out + [sim.step(a)["audio"] for a in actions], axis=1)

    warm = Simulator(world, sound_bank=ToyBank())
    episode(warm, (5.0, 2.5, 0.0))
    episode(warm, (6.0, 3.0, 2.0))
    assert any(len(c) for c in world.dry_spectrum_caches(1))
    fresh = Simulator(SharedWorld(world.scene, world.config), sound_bank=ToyBank())  # empty caches
    assert episode(warm, (6.0, 3.5, 1.0)).tobytes() == episode(fresh, (6.0, 3.5, 1.0)).tobytes()


def test_view_cache_serves_revisited_poses_with_the_same_images_as_rendering():
    """Turning back (or a repeated start) reuses the view; the images equal a fresh render's, and
    observations stay the caller's own arrays."""
    scene = box_room((6.0, 5.0, 2.8))
    src = [SoundSourceSpec((1.5, 1.5, 1.2), "noise")]
    acts = (Action.TURN_LEFT, Action.TURN_RIGHT, Action.MOVE_FORWARD, Action.TURN_RIGHT, Action.TURN_LEFT)
    runs, renders = {}, {}
    for items in (0, 64):
        world = SharedWorld(scene, SimConfig(render_cache_items=items, acoustics=AcousticConfig(max_rir_s=0.4)))
        calls: list = []
        world.renderer.submit = lambda *a, _calls=calls, _submit=world.renderer.submit, **k: (
            _calls.append(1) or _submit(*a, **k))
        sim = Simulator(world, sound_bank=ToyBank())
        obs = [sim.reset(agent_pose=(3.0, 2.5, 0.3), sources=src, seed=5)]
        obs[0]["rgb"][:] = 0  # a caller's change must not reach a later observation of the same pose
        obs += [sim.step(a) for a in acts]
        obs.append(sim.reset(agent_pose=(3.0, 2.5, 0.3), sources=src, seed=5))
        runs[items], renders[items] = obs, len(calls)
    assert renders[0] == 7 and renders[64] == 4  # turning back twice and the repeated start: no render
    for i, (a, b) in enumerate(zip(runs[0], runs[64])):
        for k in ("rgb", "depth", "audio"):
            if i > 0:
                assert a[k].tobytes() == b[k].tobytes(), (i, k)
    assert runs[64][-1]["rgb"].any() and runs[64][-1]["rgb"].flags.writeable
    assert not np.shares_memory(runs[64][2]["rgb"], runs[64][-1]["rgb"])  # the same pose, two own arrays
    world.forget_rendered()
    assert not world._views


def test_view_cache_config_is_validated():
    assert SimConfig().render_cache_items == 64
    for bad in (-1, 2.5, True, None):
        with pytest.raises(SimConfigError, match="render_cache_items"):
            SimConfig(render_cache_items=bad)


def test_view_cache_stays_within_its_byte_budget(monkeypatch):
    import avworld.sim.world as world_module

    world = SharedWorld(box_room((6.0, 5.0, 2.8)), SimConfig(render_cache_items=64))
    one = sum(v.nbytes for v in world.view(np.array([3.0, 2.5, 0.0]), ("rgb", "depth")).result().values())
    monkeypatch.setattr(world_module, "VIEW_CACHE_BYTES", 3 * one)
    for yaw in np.linspace(0.1, 1.0, 6):
        world.view(np.array([3.0, 2.5, yaw]), ("rgb", "depth")).result()
    assert len(world._views) == 3 and world._view_bytes == 3 * one
    pose = np.array([3.0, 2.5, 2.0])
    a, b = world.view(pose, ("rgb", "depth")), world.view(pose, ("rgb", "depth"))  # both rendering
    a.result(), b.result()
    assert len(world._views) == 3 and world._view_bytes == 3 * one  # one entry, counted once
    monkeypatch.setattr(world_module, "VIEW_CACHE_BYTES", one - 1)  # a view larger than the budget
    world.view(np.array([3.0, 2.5, 2.5]), ("rgb", "depth")).result()
    assert len(world._views) == 3 and world._view_bytes == 3 * one  # not kept, nothing evicted for it
    assert np.array([3.0, 2.5, 2.5]).tobytes() not in {k[0] for k in world._views}
