"""Tokenizers for sight and sound (torch, no simulator imports).

* :mod:`.audio_codec`: :class:`AudioCodec`, a SEANet-style binaural (left, right) conv
  encoder/decoder with continuous latents, and its :class:`AudioCodecConfig`.
* :mod:`.audio_losses`: multi-resolution STFT loss on left, right, mid and side, and the
  waveform L1 (:class:`BinauralCodecLoss`).
* :mod:`.image_autoencoder`: :class:`ImageAutoencoder`, an SD-VAE-style KL autoencoder
  (4 latent channels, 8x down-sampling), and its :class:`ImageAutoencoderConfig`.
* :mod:`.image_losses`: L1 + (1 - MS-SSIM) + KL, optional PatchGAN (:class:`ImageLossConfig`).

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
from avworld.models.tokenizers.image_autoencoder import (
    DiagonalGaussian,
    ImageAutoencoder,
    ImageAutoencoderConfig,
    ImageAutoencoderError,
    ImageChannelError,
    ImageDtypeError,
    ImageSizeError,
    LatentShapeError,
)
from avworld.models.tokenizers.image_losses import (
    ImageLossConfig,
    ImageLossError,
    PatchDiscriminator,
    ms_ssim,
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
    "DiagonalGaussian",
    "ImageAutoencoder",
    "ImageAutoencoderConfig",
    "ImageAutoencoderError",
    "ImageChannelError",
    "ImageDtypeError",
    "ImageLossConfig",
    "ImageLossError",
    "ImageSizeError",
    "LatentShapeError",
    "PatchDiscriminator",
    "SampleRateMismatchError",
    "mid_side",
    "ms_ssim",
    "multi_resolution_stft_loss",
]
