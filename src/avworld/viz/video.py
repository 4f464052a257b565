"""Videos with sound: frames plus a stereo track muxed into one mp4 (H.264 + AAC via imageio-ffmpeg)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """Frames or audio cannot be written as a video."""


def write_video_with_audio(path: str | Path, frames: np.ndarray, audio: np.ndarray | None, sample_rate_hz: int,
                           fps: float, normalize: bool = True) -> Path:
    """Write ``frames`` (T, H, W, 3) uint8 at ``fps`` with ``audio`` (2, n) float as the sound track.

    Frame ``k`` is shown during [k / fps, (k + 1) / fps), the same interval its audio covers
    when ``n = T * sample_rate_hz / fps``. With ``normalize`` the track is scaled to a peak
    of 0.9 (the relative levels of the two ears are kept). H and W are padded to even
    sizes for H.264.
    """
    import imageio_ffmpeg
    import soundfile as sf

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise VideoError(f"frames must be a non-empty (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    if not fps > 0:
        raise VideoError(f"fps must be > 0, got {fps}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        h, w = frames.shape[1:3]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = None
        if audio is not None:
            a = np.asarray(audio, dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != 2 or not np.all(np.isfinite(a)):
                raise VideoError(f"audio must be a finite (2, n) array, got shape {a.shape}")
            if normalize and np.abs(a).max() > 0:
                a = 0.9 * a / np.abs(a).max()
            audio_path = str(Path(tmp) / "track.wav")
            sf.write(audio_path, np.clip(a, -1, 1).T.astype(np.float32), int(sample_rate_hz), subtype="PCM_16")
        writer = imageio_ffmpeg.write_frames(
            str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p", macro_block_size=2,
            audio_path=audio_path, audio_codec="aac" if audio_path else None, output_params=["-shortest"]
            if audio_path else None, ffmpeg_log_level="error",
        )
        writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    return path
