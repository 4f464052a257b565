"""Record episodes as mp4 videos **with the binaural sound** (a gymnasium wrapper).

gymnasium's ``RecordVideo`` writes silent videos and needs moviepy. :class:`RecordEpisodeAV`
collects each step's RGB frame and the stereo audio the agent heard during that step, and
writes one mp4 per recorded episode (H.264 video, stereo AAC audio, through imageio-ffmpeg,
see :func:`avworld.viz.video.write_video_with_audio`). Frame ``k`` is shown for exactly the
time its audio lasts, so picture and sound stay in sync::

    env = RecordEpisodeAV(gymnasium.make("avworld/AudioGoal-v0", render_mode="rgb_array"), "runs/videos")
    obs, info = env.reset(seed=0)
    ...                     # step until the episode ends: runs/videos/episode-0.mp4
    env.close()             # also writes an unfinished episode
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

from avworld.viz.video import write_video_with_audio


class RecordError(ValueError):
    """The env cannot be recorded as configured (no RGB frames, no audio, no sample rate)."""


class RecordEpisodeAV(gym.Wrapper):
    """Write ``out_dir/{name_prefix}-{episode}.mp4`` with the binaural sound for each recorded episode.

    Args:
        env: a single (not vector) env whose observations hold ``audio`` (2, n) per step
            (AudioGoal with ``observations`` ``audiovisual``, ``audio`` or ``audiodepth``) and
            that renders RGB: ``render_mode="rgb_array"``, or an ``rgb`` observation.
        out_dir: where the videos go (created).
        name_prefix: file name prefix (default ``episode``).
        episode_trigger: ``episode_index -> bool``, which episodes to record (default: all).
        scale: integer upscaling of the frames for viewing (nearest neighbour; default 1).
        sample_rate_hz: the audio's rate; default: the env's ``sim_config.sample_rate_hz``.
        normalize: scale the track to a peak of 0.9, keeping the two ears' relative levels.

    ``paths`` lists the videos written so far.
    """

    def __init__(self, env: gym.Env, out_dir: str | Path, name_prefix: str = "episode",
                 episode_trigger: Callable[[int], bool] | None = None, scale: int = 1,
                 sample_rate_hz: int | None = None, normalize: bool = True) -> None:
        super().__init__(env)
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise RecordError(f"scale must be a positive integer, got {scale!r}")
        if sample_rate_hz is None:
            sim_config = getattr(env.unwrapped, "sim_config", None)
            sample_rate_hz = getattr(sim_config, "sample_rate_hz", None)
        if sample_rate_hz is None:
            raise RecordError(f"{type(env.unwrapped).__name__} has no sim_config.sample_rate_hz; pass sample_rate_hz")
        self.out_dir = Path(out_dir)
        self.name_prefix = name_prefix
        self.episode_trigger = episode_trigger or (lambda _k: True)
        self.scale = scale
        self.sample_rate_hz = int(sample_rate_hz)
        self.normalize = normalize
        self.episode_index = -1  # of the current episode (0 after the first reset)
        self.paths: list[Path] = []
        self._frames: list[np.ndarray] = []
        self._audio: list[np.ndarray] = []
        self._recording = False

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._write()  # an episode cut short by a reset is written as it is
        obs, info = self.env.reset(seed=seed, options=options)
        self.episode_index += 1
        self._recording = bool(self.episode_trigger(self.episode_index))
        if self._recording:
            self._capture(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._recording:
            self._capture(obs)
            if terminated or truncated:
                self._write()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._write()
        super().close()

    # ------------------------------------------------------------------ helpers
    def _capture(self, obs) -> None:
        if not isinstance(obs, dict) or "audio" not in obs:
            raise RecordError("RecordEpisodeAV records the step audio: the env's observations need an 'audio' key "
                              "(AudioGoal: observations='audiovisual', 'audio' or 'audiodepth')")
        audio = np.asarray(obs["audio"], dtype=np.float32)
        if audio.ndim != 2 or audio.shape[0] != 2 or audio.shape[1] == 0:
            raise RecordError(f"the 'audio' observation must be (2, n) stereo samples, got shape {audio.shape}")
        if self._audio and audio.shape != self._audio[0].shape:
            raise RecordError(f"every step's audio must have one length to keep the video in sync; got "
                              f"{audio.shape[1]} samples after {self._audio[0].shape[1]}")
        frame = self.env.render() if self.env.render_mode == "rgb_array" else obs.get("rgb")
        if frame is None:
            raise RecordError("RecordEpisodeAV needs RGB frames: make the env with render_mode='rgb_array' (or "
                              "give it an 'rgb' observation)")
        frame = np.asarray(frame, dtype=np.uint8)
        if self.scale > 1:
            h, w = frame.shape[:2]
            frame = np.asarray(Image.fromarray(frame).resize((w * self.scale, h * self.scale), Image.NEAREST))
        self._frames.append(frame)
        self._audio.append(audio.copy())

    def _write(self) -> None:
        if self._recording and self._frames:
            path = self.out_dir / f"{self.name_prefix}-{self.episode_index}.mp4"
            fps = self.sample_rate_hz / self._audio[0].shape[1]  # one frame per step's audio
            write_video_with_audio(path, np.stack(self._frames), np.concatenate(self._audio, axis=1),
                                   self.sample_rate_hz, fps=fps, normalize=self.normalize)
            self.paths.append(path)
        self._frames, self._audio, self._recording = [], [], False
