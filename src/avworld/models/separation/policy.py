"""The audio-visual motion policy of active separation (the seed's Sec. 4.2 / 7.10).

Three CNN encoders, each three convolutions and a 512-unit fully connected layer
(:class:`~avworld.models.encoders.VisualCNN`'s 8/4, 4/2, 3/1 kernels/strides; on the 32 x 32
spectrogram tensors the last kernel shrinks to 2, as the seed's): ``rgb`` (H, W, 3) uint8,
``sep_binaural`` = log1p of f^B's target binaural B~ (32, 32, 32) and ``sep_mono`` = the
memory's current monaural estimate M.. (16, 32, 32; magnitudes, not log, as the seed says).
Their concatenation feeds the shared recurrent actor-critic of the navigation agents (GRU
``hidden_size`` = 512, linear actor and critic, :class:`~avworld.models.nav.policy.NavPolicy`),
so the PPO trainer drives it unchanged. ``zero_visual`` is the "w/o visual input" ablation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avworld.models.encoders import AudioCNN
from avworld.models.nav.policy import ModelConfigError, NavConfig, NavPolicy, check_shape

BINAURAL_KEY, MONO_KEY = "sep_binaural", "sep_mono"


@dataclass(frozen=True)
class SeparationPolicyConfig(NavConfig):
    """NavConfig with the separation defaults: RGB only, the separated binaural as the audio input."""

    visual_keys: tuple[str, ...] = ("rgb",)
    audio_key: str = BINAURAL_KEY
    mono_size: int = 512
    mono_channels: tuple[int, int, int] = (32, 64, 32)
    visual_channels: tuple[int, int, int] = (32, 64, 32)
    audio_channels: tuple[int, int, int] = (32, 64, 32)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "mono_channels", tuple(self.mono_channels))
        if self.mono_size < 1:
            raise ModelConfigError("mono_size must be >= 1")


class SeparationPolicy(NavPolicy):
    """RGB + separated binaural + memory monaural -> GRU -> actor-critic over the 3 motion actions."""

    def __init__(self, config: SeparationPolicyConfig, obs_shapes: dict[str, tuple], action_dim: int = 3,
                 continuous: bool = False) -> None:
        super().__init__(config, obs_shapes, action_dim, continuous)
        if MONO_KEY not in self.obs_shapes:
            raise ModelConfigError(f"the separation policy needs the observation {MONO_KEY!r}")
        self.obs_keys = (*self.obs_keys, MONO_KEY)
        self.visual = self._build_visual()
        a, m = self.obs_shapes[config.audio_key], self.obs_shapes[MONO_KEY]
        check_shape(config.audio_key, a, 3, "(C, F, T)")
        check_shape(MONO_KEY, m, 3, "(C, F, T)")
        self.binaural_cnn = AudioCNN(a[0], a[1:], config.audio_size, config.audio_channels)
        self.mono_cnn = AudioCNN(m[0], m[1:], config.mono_size, config.mono_channels)
        feat = config.audio_size + config.mono_size + (config.visual_size if self.visual is not None else 0)
        self.feature_size = feat
        self._build_heads(feat)

    def encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        parts = [self.binaural_cnn(obs[self.config.audio_key].float()), self.mono_cnn(obs[MONO_KEY].float())]
        if self.visual is not None:
            parts.insert(0, self.visual(self.visual_input(obs)))
        return torch.cat(parts, dim=1), {}
