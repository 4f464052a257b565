"""Active-separation episodes: distinct types, >= 8 m apart (redrawn), small scenes, splits, files, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from avworld.geometry.builder import box_room
from avworld.geometry.io import save_scene
from avworld.geometry.spec import load_scene_spec
from avworld.sim.config import SimConfig
from avworld.sim.world import SharedWorld
from avworld.sounds import split_clips
from avworld.tasks.episodes import split_scenes
from avworld.tasks.separation import ActiveSeparationEnv
from avworld.tasks.separation_episodes import (
    EpisodeSource,
    SameTypeError,
    SceneTooSmallError,
    SeparationEpisode,
    SeparationEpisodeConfig,
    SeparationFileError,
    draw_types,
    iter_separation_episodes,
    load_separation_episodes,
    navigable_diameter_m,
    sample_separation_episode,
    save_separation_episodes,
    sound_bank,
)

SIM = SimConfig.preset("grid", outputs=(), spectrogram=False)


@pytest.fixture(scope="module")
def house():
    spec = split_scenes("train", 1, (5, 8))[0]
    return spec, SharedWorld(load_scene_spec(spec), SIM)


def _horizontal_distances(ep):
    p = np.array([s.position for s in ep.sources])[:, :2]
    return [np.linalg.norm(p[i] - p[j]) for i in range(len(p)) for j in range(i + 1, len(p))]


def test_sources_are_8m_apart_and_close_draws_are_redrawn(house):
    spec, world = house
    cfg = SeparationEpisodeConfig()
    redrawn = 0
    for k in range(30):
        ep = sample_separation_episode(world, spec, np.random.default_rng([1, k]), cfg, f"e{k}")
        assert min(_horizontal_distances(ep)) >= 8.0
        assert ep.start_pose[:2] == pytest.approx(ep.target.position[:2])  # the agent starts at the target
        assert world.nav.is_navigable(np.array(ep.start_pose[:2]))
        redrawn += ep.info["redrawn"]
    # in this house most random pairs lie closer than 8 m: the draws had to be redone
    pts = world.nav.sample_navigable(np.random.default_rng(0), 400)
    assert np.mean(np.linalg.norm(pts[:200] - pts[200:], axis=1) < 8.0) > 0.5
    assert redrawn > 30


def test_three_sources_pairwise_apart(house):
    spec, world = house
    ep = sample_separation_episode(world, spec, np.random.default_rng(5), SeparationEpisodeConfig(num_sources=3), "e")
    assert len(ep.sources) == 3 and min(_horizontal_distances(ep)) >= 8.0
    assert len(set(ep.source_types)) == 3


def test_same_type_is_refused():
    s = EpisodeSource((1.0, 1.0, 1.2), "speaker_001", 0, 0.0)
    t = EpisodeSource((9.0, 1.0, 1.2), "speaker_001", 3, 2.0)
    with pytest.raises(SameTypeError, match="speaker_001"):
        SeparationEpisode("e", "house:0:5", "", (1.0, 1.0, 0.0), (s, t))
    d = SeparationEpisode("e", "house:0:5", "", (1.0, 1.0, 0.0), (s,)).to_dict()
    d["sources"].append(dict(d["sources"][0]))
    with pytest.raises(SameTypeError):
        SeparationEpisode.from_dict(d)


def test_drawn_types_are_distinct_and_of_the_allowed_kinds():
    bank = sound_bank()
    cfg = SeparationEpisodeConfig(num_sources=4, target_kinds=("music",), distractor_kinds=("music", "background"))
    for k in range(50):
        types = draw_types(np.random.default_rng(k), cfg, bank)
        assert len(set(types)) == 4
        assert bank.get(types[0]).kind == "music"
        assert all(bank.get(t).kind in ("music", "background") for t in types[1:])


def test_scene_too_small_names_the_scene(tmp_path):
    path = str(save_scene(box_room((5.0, 4.0, 2.7)), tmp_path))
    world = SharedWorld(load_scene_spec(path), SIM)
    assert navigable_diameter_m(world.nav) < 8.0
    with pytest.raises(SceneTooSmallError, match=path.replace(".", r"\.")):
        sample_separation_episode(world, path, np.random.default_rng(0), SeparationEpisodeConfig(), "e")
    env = ActiveSeparationEnv(scenes=(path,), rgb=False)
    with pytest.raises(SceneTooSmallError, match="larger scene"):
        env.reset(seed=0)
    # a single source (no separation needed) fits anywhere
    ep = sample_separation_episode(world, path, np.random.default_rng(0), SeparationEpisodeConfig(num_sources=1), "e")
    assert len(ep.sources) == 1


def test_heard_and_unheard_clips(house):
    spec, world = house
    bank = sound_bank()
    splits = split_clips(bank, types=bank.names("dynamic"))
    train, test = set(splits["train"]), set(splits["test"])
    for sounds, allowed in (("unheard", test), ("heard", train)):
        cfg = SeparationEpisodeConfig(sounds=sounds)
        for k in range(10):
            ep = sample_separation_episode(world, spec, np.random.default_rng(k), cfg, "e", split="test")
            assert all((s.sound, s.clip_index) in allowed for s in ep.sources)
            assert all(0 <= s.offset_s < 20.0 for s in ep.sources)
    assert not train & test


def test_episode_files_round_trip_and_same_seed_same_bytes(tmp_path):
    cfg = SeparationEpisodeConfig()
    scenes = split_scenes("val", 1, (5, 8))
    eps = [e for _, _, new in iter_separation_episodes(scenes, 3, cfg, "val", seed=4) for e in new]
    a = save_separation_episodes(tmp_path / "a.jsonl", eps, cfg, split="val")
    eps2 = [e for _, _, new in iter_separation_episodes(scenes, 3, cfg, "val", seed=4) for e in new]
    b = save_separation_episodes(tmp_path / "b.jsonl", eps2, cfg, split="val")
    assert a.read_bytes() == b.read_bytes()
    header, loaded = load_separation_episodes(a)
    assert header["split"] == "val" and loaded == eps
    # the env replays a file episode; its on-the-fly episode (seed, i, k) is the file's episode k
    env = ActiveSeparationEnv(episodes=a, rgb=False, num_steps=2)
    _, info = env.reset(options={"episode_index": 1})
    assert info["episode_id"] == eps[1].episode_id and info["source_types"] == eps[1].source_types
    env2 = ActiveSeparationEnv(scenes=tuple(scenes), split="val", seed=4, rgb=False, num_steps=2)
    assert env2.scene_episode(0, 2) == eps[2]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"format": "avworld-audiogoal-episodes", "version": 1}) + "\n")
    with pytest.raises(SeparationFileError, match="not an active-separation episode file"):
        load_separation_episodes(bad)


def test_splits_use_disjoint_houses():
    tr, va, te = (set(split_scenes(s, 20, (5, 8))) for s in ("train", "val", "test"))
    assert not tr & va and not tr & te and not va & te


def test_cli_episodes_make(tmp_path):
    out = tmp_path / "eps.jsonl"
    cmd = [sys.executable, "-m", "avworld.cli", "separation", "episodes", "make", "--split", "test", "--scenes", "1",
           "--per-scene", "2", "--seed", "1", "--out", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    header, eps = load_separation_episodes(out)
    assert header["split"] == "test" and len(eps) == 2 and all(len(e.sources) == 2 for e in eps)
