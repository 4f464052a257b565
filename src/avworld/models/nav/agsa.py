"""AGSA: Audio-Guided dynamic fusion with Stereo-Aware attention (arXiv 2509.16924).

Architecture::

    images -> VisualCNN (as AV-Nav) -> v (B, d) -------------------------------------------+
    spectrogram (B, 2, F, T) -> SAM -> a (B, d)                                            |
        SAM: each ear (B, 1, F, T) -> shared ear CNN -> tokens (B, f*t, c) + position      |
             left  <- MHA(q=left,  k=right, v=right)   (bidirectional cross-attention)     |
             right <- MHA(q=right, k=left,  v=left)    residual + LayerNorm per ear        |
             [left ; right] flattened -> FC d -> ReLU                                      |
    AGDF: c = MHA(q=a, k=[a ; v], v=[a ; v])  (audio queries the audio-visual pair) <------+
          omega = sigmoid(W [a ; c] + b)      (per channel by default)
          f = omega * a + (1 - omega) * c
    f -> GRU -> linear actor, linear critic (PPO)

The paper leaves sizes open; the choices here (all :class:`AGSAConfig` fields):

* encoders and GRU as AV-Nav (SoundSpaces: 32/64/64 channels, d = 512, GRU 512) so that
  the comparison isolates SAM and AGDF;
* SAM's ear CNN uses SoundSpaces' audio kernels (adapted to short spectrograms, see
  :mod:`avworld.models.encoders`) with one input channel, shared by both ears, so the left
  and right token maps live in one feature space and attention compares like with like;
  ``sam_heads`` = 4 heads over c = 64-dim tokens (13 tokens per ear for (65, 7) inputs), a
  learned positional embedding per token; the two directions have separate weights;
* AGDF attends with ``fusion_heads`` = 8 heads of 64 dims over the two tokens; the gate is
  per channel (``gate="channel"``, ω in (0, 1)^d) or one scalar per sample (``"scalar"``).

The gate ω is returned in ``aux["omega"]`` (and the attention AGDF pays to the visual token
in ``aux["visual_attention"]``) for the trainer to log: it is the paper's critical monitor.
Ablations: ``sam=False`` (plain AudioCNN on both channels, as AV-Nav), ``fusion="concat"``
(static fusion: [a ; v] into the GRU), ``zero_visual`` and ``modality_dropout``
(:class:`~avworld.models.nav.policy.NavConfig`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from avworld.models.encoders import AudioCNN, audio_plan, conv_stack, layer_init
from avworld.models.nav.policy import ModelConfigError, NavConfig, NavPolicy, check_shape

FUSIONS = ("agdf", "concat")
GATES = ("channel", "scalar")


@dataclass(frozen=True)
class AGSAConfig(NavConfig):
    """AGSA options: :class:`NavConfig` fields plus SAM / AGDF sizes and the ablation switches."""

    sam: bool = True
    sam_heads: int = 4
    fusion: str = "agdf"
    fusion_heads: int = 8
    gate: str = "channel"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fusion not in FUSIONS:
            raise ModelConfigError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.gate not in GATES:
            raise ModelConfigError(f"gate must be one of {GATES}, got {self.gate!r}")
        if self.fusion == "agdf":
            if not self.visual_keys:
                raise ModelConfigError("AGDF fuses audio with vision; a blind agent (visual_keys=()) needs "
                                       "fusion='concat' (or keep the images and set zero_visual=True)")
            if self.audio_size != self.visual_size:
                raise ModelConfigError(f"AGDF needs audio_size == visual_size, got {self.audio_size} and "
                                       f"{self.visual_size}")
            if self.audio_size % self.fusion_heads:
                raise ModelConfigError(f"audio_size {self.audio_size} must be divisible by fusion_heads "
                                       f"{self.fusion_heads}")
        if self.sam and self.audio_channels[-1] % self.sam_heads:
            raise ModelConfigError(f"the last audio channel count {self.audio_channels[-1]} must be divisible by "
                                   f"sam_heads {self.sam_heads}")


class StereoAwareAttention(nn.Module):
    """SAM: binaural spectrogram (B, 2, F, T) -> (B, out_size) through left/right cross-attention."""

    def __init__(self, size_ft: Sequence[int], out_size: int = 512, channels: Sequence[int] = (32, 64, 64),
                 heads: int = 4) -> None:
        super().__init__()
        plan, (f, t) = audio_plan(size_ft)
        self.ear = conv_stack(1, channels, plan)  # shared by both ears
        c, n = channels[-1], f * t
        self.pos = nn.Parameter(torch.randn(1, n, c) * 0.02)
        self.left_to_right = nn.MultiheadAttention(c, heads, batch_first=True)
        self.right_to_left = nn.MultiheadAttention(c, heads, batch_first=True)
        self.norm_left, self.norm_right = nn.LayerNorm(c), nn.LayerNorm(c)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * n * c, out_size), nn.ReLU(inplace=True))
        layer_init(self.ear)
        layer_init(self.fc)
        self.num_tokens, self.token_dim = n, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ears, f, t = x.shape  # (B, 2, F, T), channel 0 = left ear
        maps = self.ear(x.reshape(b * ears, 1, f, t))  # (2B, c, f', t')
        tokens = maps.flatten(2).transpose(1, 2)  # (2B, n, c)
        tokens = tokens.reshape(b, ears, self.num_tokens, self.token_dim) + self.pos.unsqueeze(1)  # (B, 2, n, c)
        left, right = tokens[:, 0], tokens[:, 1]  # (B, n, c) each
        from_right, _ = self.left_to_right(left, right, right, need_weights=False)  # left queries the right ear
        from_left, _ = self.right_to_left(right, left, left, need_weights=False)  # right queries the left ear
        left = self.norm_left(left + from_right)
        right = self.norm_right(right + from_left)
        return self.fc(torch.cat([left, right], dim=1))  # (B, 2n, c) -> (B, out_size)


class AudioGuidedDynamicFusion(nn.Module):
    """AGDF: audio (B, d) queries [audio ; visual]; a sigmoid gate ω blends audio and the cross-modal feature."""

    def __init__(self, dim: int = 512, heads: int = 8, gate: str = "channel") -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.gate = nn.Linear(2 * dim, dim if gate == "channel" else 1)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, dict]:
        query = audio.unsqueeze(1)  # (B, 1, d)
        pair = torch.stack([audio, visual], dim=1)  # (B, 2, d): the audio-visual pair
        cross, weights = self.attn(query, pair, pair, need_weights=True)  # (B, 1, d), weights (B, 1, 2)
        cross = cross.squeeze(1)  # (B, d)
        omega = torch.sigmoid(self.gate(torch.cat([audio, cross], dim=1)))  # (B, d) or (B, 1), in (0, 1)
        fused = omega * audio + (1.0 - omega) * cross
        return fused, {"omega": omega, "visual_attention": weights[:, 0, 1]}


class AGSAPolicy(NavPolicy):
    """The AGSA agent as a recurrent actor-critic (see the module docstring)."""

    def __init__(self, config: AGSAConfig, obs_shapes: dict[str, tuple], action_dim: int,
                 continuous: bool = False) -> None:
        super().__init__(config, obs_shapes, action_dim, continuous)
        self.visual = self._build_visual()
        a_shape = self.obs_shapes[config.audio_key]
        check_shape(config.audio_key, a_shape, 3, "(channels, F, T)")
        if config.sam:
            if a_shape[0] != 2:
                raise ModelConfigError(f"SAM needs a binaural (2, F, T) spectrogram, got {a_shape}; use sam=False")
            self.audio = StereoAwareAttention(a_shape[1:], config.audio_size, config.audio_channels, config.sam_heads)
        else:
            self.audio = AudioCNN(a_shape[0], a_shape[1:], config.audio_size, config.audio_channels)
        self.fusion = None
        if config.fusion == "agdf":
            self.fusion = AudioGuidedDynamicFusion(config.audio_size, config.fusion_heads, config.gate)
            self.feature_size = config.audio_size
        else:
            self.feature_size = config.audio_size + (config.visual_size if self.visual is not None else 0)
        self._build_heads(self.feature_size)

    def encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        a = self.audio(self.audio_input(obs))  # (B, d)
        if self.visual is None:
            return a, {}
        v = self.visual(self.visual_input(obs))  # (B, d)
        if self.fusion is None:
            return torch.cat([a, v], dim=1), {}  # static fusion ablation
        return self.fusion(a, v)
