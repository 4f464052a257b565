"""Videos with sound: both streams present, durations in sync, bad input refused."""

import re
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest

from avworld.viz.video import VideoError, write_video_with_audio


def _probe(path) -> str:
    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


def test_mp4_has_video_and_stereo_audio_of_the_same_duration(tmp_path):
    frames = np.zeros((12, 30, 40, 3), np.uint8)
    frames[:, :, :20] = 255
    t = np.arange(12 * 4000) / 16000
    audio = np.stack([np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)])
    path = write_video_with_audio(tmp_path / "a.mp4", frames, audio, 16000, fps=4)
    info = _probe(path)
    assert re.search(r"Video: h264.*40x30", info), info
    assert re.search(r"Audio: aac.*16000 Hz, stereo", info), info
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    assert float(dur[2]) == pytest.approx(3.0, abs=0.15)  # 12 frames at 4 fps = 12 * 4000 samples at 16 kHz


def test_bad_input(tmp_path):
    with pytest.raises(VideoError, match="uint8"):
        write_video_with_audio(tmp_path / "b.mp4", np.zeros((3, 8, 8, 3), np.float32), None, 16000, 4)
    with pytest.raises(VideoError, match=r"\(2, n\)"):
        write_video_with_audio(tmp_path / "c.mp4", np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 10)), 16000, 4)
