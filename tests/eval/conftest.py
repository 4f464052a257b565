import pytest

from avworld.tasks.episodes import EpisodeConfig, make_episodes, save_episodes, split_scenes


@pytest.fixture(scope="session")
def eval_episode_file(tmp_path_factory):
    """5 episodes in 1 held-out house (soundspaces2 motion)."""
    eps = make_episodes(split_scenes("test", 1, rooms=(2, 2)), per_scene=5, config=EpisodeConfig(), seed=3)
    return save_episodes(tmp_path_factory.mktemp("eps") / "test.jsonl", eps, EpisodeConfig(), split="test")
