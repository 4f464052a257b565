"""Active audio-visual separation of dynamic sources (issue 20): spectrograms, f^P, memories, policy.

No simulator imports: the models see tensors only (docs/separation.md).
"""

from avworld.models.separation.memory import (
    MEMORY_KINDS,
    MemoryConfig,
    MemoryConfigError,
    MemoryStep,
    NoMemory,
    RecurrentRefiner,
    TransformerMemory,
    build_memory,
    sequence_loss,
    sinusoidal_encoding,
)
from avworld.models.separation.passive import PassiveConfig, PassiveOutput, PassiveSeparator, passive_loss
from avworld.models.separation.policy import BINAURAL_KEY, MONO_KEY, SeparationPolicy, SeparationPolicyConfig
from avworld.models.separation.spectrogram import SpectrogramError, magnitudes, phases, to_waveform
from avworld.models.separation.unet import UNet, UNetError

__all__ = [
    "BINAURAL_KEY", "MEMORY_KINDS", "MONO_KEY", "MemoryConfig", "MemoryConfigError", "MemoryStep", "NoMemory",
    "PassiveConfig", "PassiveOutput", "PassiveSeparator", "RecurrentRefiner", "SeparationPolicy",
    "SeparationPolicyConfig", "SpectrogramError", "TransformerMemory", "UNet", "UNetError", "build_memory",
    "magnitudes", "passive_loss", "phases", "sequence_loss", "sinusoidal_encoding", "to_waveform",
]
