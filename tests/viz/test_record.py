"""RecordEpisodeAV: an episode as an mp4 with video and the binaural sound, in sync."""

from __future__ import annotations

import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from avworld.tasks.audiogoal import AudioGoalEnv
from avworld.viz.record import RecordEpisodeAV, RecordError

SMALL = {"width": 32, "height": 32, "num_scenes": 1, "rooms": (2, 2)}


def _decode(path, stream: str, fmt: list[str]) -> bytes:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", f"0:{stream}", *fmt, "-"]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def _walk(env, steps: int, seed: int = 0) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    heard = [obs["audio"]]
    for k in range(steps):  # move and turn, never STOP
        obs, _, terminated, truncated, _ = env.step(1 + k % 3)
        heard.append(obs["audio"])
        if terminated or truncated:
            break
    return heard


def test_an_episode_becomes_an_mp4_with_stereo_sound_of_the_right_duration(tmp_path):
    env = RecordEpisodeAV(AudioGoalEnv(render_mode="rgb_array", step_limit=6, **SMALL), tmp_path, scale=2)
    heard = _walk(env, 10)
    assert len(heard) == 7  # reset + 6 steps, truncated by step_limit
    assert env.paths == [tmp_path / "episode-0.mp4"]
    path = env.paths[0]
    env.close()
    assert env.paths == [path]  # nothing left to write

    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                           capture_output=True, text=True).stderr
    assert "Video: h264" in probe and "64x64" in probe  # 32 px frames at scale 2
    assert "Audio: aac" in probe and "16000 Hz, stereo" in probe
    frames = _decode(path, "v", ["-f", "rawvideo", "-pix_fmt", "rgb24"])
    assert len(frames) == 7 * 64 * 64 * 3  # one frame per observation
    pcm = np.frombuffer(_decode(path, "a", ["-f", "f32le", "-ac", "2"]), np.float32).reshape(-1, 2).T
    expected = np.concatenate(heard, axis=1)  # 7 x 0.25 s = 1.75 s, the video's length
    assert expected.shape == (2, 28000) and abs(pcm.shape[1] - 28000) <= 1024  # within one AAC frame
    n = min(pcm.shape[1], expected.shape[1])
    for ear in range(2):  # the track is what the agent heard, ear by ear, in order
        corr = np.corrcoef(pcm[ear, :n], expected[ear, :n])[0, 1]
        assert corr > 0.99, f"ear {ear}: correlation {corr:.3f}"
    assert not np.allclose(pcm[0], pcm[1], atol=1e-3)  # two different ears


def test_only_triggered_episodes_are_written_and_unfinished_ones_on_reset_and_close(tmp_path):
    inner = AudioGoalEnv(render_mode="rgb_array", step_limit=50, **SMALL)
    env = RecordEpisodeAV(inner, tmp_path, name_prefix="ag", episode_trigger=lambda k: k != 1)
    _walk(env, 2, seed=0)  # episode 0, cut short by the next reset
    _walk(env, 2, seed=1)  # episode 1: not recorded
    _walk(env, 3, seed=2)  # episode 2, written on close
    assert env.paths == [tmp_path / "ag-0.mp4"]
    env.close()
    assert env.paths == [tmp_path / "ag-0.mp4", tmp_path / "ag-2.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ag-0.mp4", "ag-2.mp4"]
    frames = _decode(tmp_path / "ag-2.mp4", "v", ["-f", "rawvideo", "-pix_fmt", "rgb24"])
    assert len(frames) == 4 * 32 * 32 * 3


def test_an_env_without_sound_or_pictures_is_a_clear_error(tmp_path):
    silent = RecordEpisodeAV(AudioGoalEnv(render_mode="rgb_array", observations="vision", **SMALL), tmp_path)
    with pytest.raises(RecordError, match="'audio' key"):
        silent.reset(seed=0)
    blind = RecordEpisodeAV(AudioGoalEnv(observations="audiodepth", **SMALL), tmp_path)
    with pytest.raises(RecordError, match="render_mode='rgb_array'"):
        blind.reset(seed=0)
    with pytest.raises(RecordError, match="scale"):
        RecordEpisodeAV(AudioGoalEnv(**SMALL), tmp_path, scale=0)
