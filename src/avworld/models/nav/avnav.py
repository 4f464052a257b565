"""AV-Nav: SoundSpaces' audio-visual navigation baseline (Chen et al., ECCV 2020).

Architecture (SoundSpaces ``AudioNavBaselineNet``)::

    images (rgb/255 ++ depth)  -> VisualCNN 32@8/4 -> 64@4/2 -> 64@3/1 -> FC 512 -> ReLU --+
    spectrogram (2, F, T)      -> AudioCNN (SoundSpaces kernels, adapted)  -> FC 512 -> ReLU --+-> concat 1024
                                                                                               -> GRU 512
                                                                                               -> linear actor
                                                                                               -> linear critic

Sizes are :class:`AVNavConfig` fields (defaults: SoundSpaces'). A blind agent
(``visual_keys=()``) skips the visual CNN; the audio-only ablation (``zero_visual``)
keeps it but feeds zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avworld.models.encoders import AudioCNN
from avworld.models.nav.policy import NavConfig, NavPolicy, check_shape


@dataclass(frozen=True)
class AVNavConfig(NavConfig):
    """AV-Nav sizes; every field of :class:`NavConfig` (SoundSpaces' defaults)."""


class AVNavPolicy(NavPolicy):
    """SoundSpaces' AV-Nav baseline as a recurrent actor-critic (see the module docstring)."""

    def __init__(self, config: AVNavConfig, obs_shapes: dict[str, tuple], action_dim: int,
                 continuous: bool = False) -> None:
        super().__init__(config, obs_shapes, action_dim, continuous)
        self.visual = self._build_visual()
        a_shape = self.obs_shapes[config.audio_key]
        check_shape(config.audio_key, a_shape, 3, "(channels, F, T)")
        self.audio = AudioCNN(a_shape[0], a_shape[1:], config.audio_size, config.audio_channels)
        self.feature_size = config.audio_size + (config.visual_size if self.visual is not None else 0)
        self._build_heads(self.feature_size)

    def encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        feats = []
        if self.visual is not None:
            feats.append(self.visual(self.visual_input(obs)))  # (B, visual_size)
        feats.append(self.audio(self.audio_input(obs)))  # (B, audio_size)
        return torch.cat(feats, dim=1), {}
