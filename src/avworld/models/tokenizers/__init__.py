"""Tokenizers for sight and sound (torch, no simulator imports).

* :mod:`.audio_codec`: :class:`AudioCodec`, a SEANet-style binaural (left, right) conv
  encoder/decoder with continuous latents, and its :class:`AudioCodecConfig`.
* :mod:`.audio_losses`: multi-resolution STFT loss on left, right, mid and side, and the
  waveform L1 (:class:`BinauralCodecLoss`).

See ``docs/tokenizers.md``.
"""

from avworld.models.tokenizers.audio_codec import (
    AudioCodec,
    AudioCodecConfig,
    AudioCodecError,
    ChannelCountError,
    ClipLengthError,
    SampleRateMismatchError,
)
from avworld.models.tokenizers.audio_losses import (
    AudioLossError,
    BinauralCodecLoss,
    BinauralLossConfig,
    mid_side,
    multi_resolution_stft_loss,
)

__all__ = [
    "AudioCodec",
    "AudioCodecConfig",
    "AudioCodecError",
    "AudioLossError",
    "BinauralCodecLoss",
    "BinauralLossConfig",
    "ChannelCountError",
    "ClipLengthError",
    "SampleRateMismatchError",
    "mid_side",
    "multi_resolution_stft_loss",
]
