"""The audio-visual world model (torch, no simulator imports).

* :mod:`.cdit`: :class:`AVCDiT`, the audio-visual Conditional Diffusion Transformer with
  modality-expert FFNs, its :class:`AVCDiTConfig`, presets (:func:`avcdit_config`) and the
  stagewise-training API (:meth:`AVCDiT.set_stage`, :func:`stage_spec`).
* :mod:`.diffusion`: :class:`GaussianDiffusion` (improved DDPM: learned-range variance,
  hybrid loss, respacing, DDPM and DDIM samplers over a dict of modalities).
* :mod:`.embeddings`: sinusoidal + MLP embedders of the diffusion step, offset and action.

See ``docs/worldmodel.md``.
"""

from avworld.models.worldmodel.cdit import AVCDiT, AVCDiTBlock, parameter_group
from avworld.models.worldmodel.config import (
    MODALITIES,
    PRESETS,
    STAGE_GROUPS,
    AVCDiTConfig,
    ContextLengthError,
    LatentMismatchError,
    LayoutMismatchError,
    OffsetRangeError,
    StageError,
    StageSpec,
    UnknownPresetError,
    WorldModelError,
    avcdit_config,
    stage_spec,
)
from avworld.models.worldmodel.diffusion import DiffusionError, GaussianDiffusion, beta_schedule
from avworld.models.worldmodel.embeddings import ActionEmbedder, ScalarEmbedder, sinusoidal_features

__all__ = [
    "MODALITIES",
    "PRESETS",
    "STAGE_GROUPS",
    "AVCDiT",
    "AVCDiTBlock",
    "AVCDiTConfig",
    "ActionEmbedder",
    "ContextLengthError",
    "DiffusionError",
    "GaussianDiffusion",
    "LatentMismatchError",
    "LayoutMismatchError",
    "OffsetRangeError",
    "ScalarEmbedder",
    "StageError",
    "StageSpec",
    "UnknownPresetError",
    "WorldModelError",
    "avcdit_config",
    "beta_schedule",
    "parameter_group",
    "sinusoidal_features",
    "stage_spec",
]
