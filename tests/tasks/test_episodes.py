"""Episode sampling, scene splits and episode files."""

import json

import pytest

from avworld.geometry.builder import SceneBuilder
from avworld.geometry.io import save_scene
from avworld.geometry.spec import load_scene_spec
from avworld.sim.world import SharedWorld
from avworld.tasks import AudioGoalEnv
from avworld.tasks.episodes import (
    EPISODE_VERSION,
    AudioGoalEpisode,
    EpisodeConfig,
    EpisodeError,
    EpisodeFileError,
    load_episodes,
    make_episodes,
    save_episodes,
    split_scenes,
)

SMALL = {"width": 32, "height": 32, "observations": "vision"}


def test_splits_are_disjoint_and_reproducible():
    splits = {s: split_scenes(s, 50, rooms=(2, 4)) for s in ("train", "val", "test")}
    assert splits["train"] == split_scenes("train", 50, rooms=(2, 4))
    seeds = {s: {int(spec.split(":")[1]) for spec in v} for s, v in splits.items()}
    assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["test"]
    assert not seeds["val"] & seeds["test"]
    rooms = {int(spec.split(":")[2]) for v in splits.values() for spec in v}
    assert rooms == {2, 3, 4}
    with pytest.raises(EpisodeError, match="unknown split"):
        split_scenes("dev", 3)


def test_episodes_respect_the_sampling_rules(small_episodes):
    cfg = EpisodeConfig()
    for ep in small_episodes:
        world = SharedWorld(load_scene_spec(ep.scene))
        assert world.scene.content_hash == ep.scene_hash
        nav = world.nav
        assert nav.is_navigable(ep.start_pose[:2]) and nav.is_navigable(ep.goal_xy)
        geo = float(nav.geodesic_field(ep.goal_xy).distance_at(ep.start_pose[:2]))
        assert geo == pytest.approx(ep.geodesic_distance_m)
        assert cfg.min_geodesic_m <= geo <= cfg.max_geodesic_m
        assert geo >= ep.euclidean_distance_m - 1e-6
        assert ep.optimal_actions >= geo / cfg.forward_step_m
        assert ep.source_position[2] == pytest.approx(nav.floor_z + cfg.source_height_m)


def test_sampling_is_deterministic(small_episodes):
    again = make_episodes(split_scenes("test", 2, rooms=(2, 3)), per_scene=3, config=EpisodeConfig(), seed=7)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in small_episodes]


def test_roundtrip(small_episodes, tmp_path):
    path = save_episodes(tmp_path / "e.jsonl", small_episodes, EpisodeConfig(), split="test")
    header, eps = load_episodes(path)
    assert header["version"] == EPISODE_VERSION and header["split"] == "test"
    assert eps == small_episodes


def _write(path, header, lines):
    path.write_text("\n".join([json.dumps(header), *lines]) + "\n")
    return path


def test_malformed_and_mismatched_files(small_episodes, tmp_path):
    good = small_episodes[0].to_dict()
    header = {"format": "avworld-audiogoal-episodes", "version": EPISODE_VERSION, "config": {}}
    with pytest.raises(EpisodeFileError, match="does not exist"):
        load_episodes(tmp_path / "missing.jsonl")
    with pytest.raises(EpisodeFileError, match="version 99"):
        load_episodes(_write(tmp_path / "v.jsonl", {**header, "version": 99}, [json.dumps(good)]))
    with pytest.raises(EpisodeFileError, match="not an avworld"):
        load_episodes(_write(tmp_path / "f.jsonl", {"format": "x"}, []))
    with pytest.raises(EpisodeFileError, match=r":3: episode line is not JSON"):
        load_episodes(_write(tmp_path / "j.jsonl", header, [json.dumps(good), "{oops"]))
    bad = {k: v for k, v in good.items() if k != "goal_xy"}
    with pytest.raises(EpisodeFileError, match=f"episode '{good['episode_id']}'.*missing fields \\['goal_xy'\\]"):
        load_episodes(_write(tmp_path / "m.jsonl", header, [json.dumps(bad)]))
    with pytest.raises(EpisodeFileError, match="duplicate episode_id"):
        load_episodes(_write(tmp_path / "d.jsonl", header, [json.dumps(good)] * 2))
    other = {**header, "config": {**header["config"], "forward_step_m": 0.15}}
    with pytest.raises(EpisodeFileError, match="planned for 0.15 m"):
        AudioGoalEnv(episodes=_write(tmp_path / "p.jsonl", other, [json.dumps(good)]))


def _variant(ep: AudioGoalEpisode, **kw) -> AudioGoalEpisode:
    return AudioGoalEpisode.from_dict({**ep.to_dict(), **kw})


def test_unusable_episodes_name_the_episode(small_episodes):
    ep = small_episodes[0]
    world = SharedWorld(load_scene_spec(ep.scene))
    lo = world.nav.origin_xy
    outside = (float(lo[0]) - 5.0, float(lo[1]) - 5.0)
    env = AudioGoalEnv(episodes=[_variant(ep, start_pose=[*outside, 0.0], episode_id="bad-start")], **SMALL)
    with pytest.raises(EpisodeError, match="episode bad-start: start .* not navigable"):
        env.reset(options={"episode_index": 0})
    env = AudioGoalEnv(episodes=[_variant(ep, goal_xy=list(outside), episode_id="bad-goal")], **SMALL)
    with pytest.raises(EpisodeError, match=r"episode bad-goal: goal .* not navigable \(unreachable\)"):
        env.reset(options={"episode_index": 0})
    env = AudioGoalEnv(episodes=[_variant(ep, scene_hash="0" * 64, episode_id="bad-hash")], **SMALL)
    with pytest.raises(EpisodeError, match="episode bad-hash: scene .* hash"):
        env.reset(options={"episode_index": 0})


def test_unreachable_goal_behind_a_sealed_wall(tmp_path):
    """A navigable goal in a room with no door (infinite geodesic distance) is refused."""
    b = SceneBuilder()
    b.add_box((-0.1, -0.1, -0.1), (6.1, 3.1, 0.0), "wood_floor", "floor")
    b.add_box((-0.1, -0.1, 2.5), (6.1, 3.1, 2.6), "ceiling_plaster", "ceiling")
    for lo, hi in [((-0.1, -0.1, 0), (0, 3.1, 2.5)), ((6, -0.1, 0), (6.1, 3.1, 2.5)), ((0, -0.1, 0), (6, 0, 2.5)),
                   ((0, 3, 0), (6, 3.1, 2.5)), ((2.95, 0, 0), (3.05, 3, 2.5))]:  # the last one seals the two halves
        b.add_box(lo, hi, "plaster", "wall")
    scene = b.build()
    save_scene(scene, tmp_path / "sealed")
    spec = str(tmp_path / "sealed")
    ep = AudioGoalEpisode("sealed-1", spec, scene.content_hash, (1.5, 1.5, 0.0), (4.5, 1.5, 1.2), (4.5, 1.5),
                          3.0, 3.0, 20)
    env = AudioGoalEnv(episodes=[ep], **SMALL)
    with pytest.raises(EpisodeError, match=r"episode sealed-1: .*unreachable"):
        env.reset(options={"episode_index": 0})
