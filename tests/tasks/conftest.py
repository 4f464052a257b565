import pytest

from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes

SMALL = {"width": 32, "height": 32}


@pytest.fixture(scope="session")
def small_episodes():
    """6 episodes in 2 held-out houses (soundspaces2 motion)."""
    return make_episodes(split_scenes("test", 2, rooms=(2, 3)), per_scene=3, config=EpisodeConfig(), seed=7)


@pytest.fixture(scope="session")
def episode_file(small_episodes, tmp_path_factory):
    return save_episodes(tmp_path_factory.mktemp("eps") / "test.jsonl", small_episodes, EpisodeConfig(), split="test")
