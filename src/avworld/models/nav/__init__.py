"""Navigation agents: SoundSpaces' AV-Nav baseline and AGSA (SAM + AGDF), recurrent actor-critics.

``build_policy("agsa" | "avnav", obs_shapes, action_dim, continuous, config)`` builds one;
``model_config("agsa", **fields)`` makes its config; ``ABLATIONS`` maps ablation names to
config overrides.
"""

from __future__ import annotations

from dataclasses import fields

from avworld.models.nav.agsa import AGSAConfig, AGSAPolicy, AudioGuidedDynamicFusion, StereoAwareAttention
from avworld.models.nav.avnav import AVNavConfig, AVNavPolicy
from avworld.models.nav.policy import ActOutput, ModelConfigError, NavConfig, NavPolicy, RNNStateEncoder

AGENTS = {"avnav": (AVNavConfig, AVNavPolicy), "agsa": (AGSAConfig, AGSAPolicy)}

#: Ablations of the AGSA paper as config overrides (``audio-only`` and ``modality-dropout`` also fit AV-Nav).
ABLATIONS: dict[str, dict] = {
    "audio-only": {"zero_visual": True},
    "static-fusion": {"fusion": "concat"},
    "no-sam": {"sam": False},
    "modality-dropout": {"modality_dropout": 0.5},
}


def model_config(agent: str, ablations: tuple[str, ...] = (), **overrides) -> NavConfig:
    """The config of ``agent`` with ``ablations`` applied, then ``overrides``."""
    if agent not in AGENTS:
        raise ModelConfigError(f"unknown agent {agent!r}; choose one of {sorted(AGENTS)}")
    cls = AGENTS[agent][0]
    names = {f.name for f in fields(cls)}
    kwargs: dict = {}
    for name in ablations:
        if name not in ABLATIONS:
            raise ModelConfigError(f"unknown ablation {name!r}; choose from {sorted(ABLATIONS)}")
        bad = sorted(set(ABLATIONS[name]) - names)
        if bad:
            raise ModelConfigError(f"ablation {name!r} does not apply to {agent!r} (it sets {bad}); use agsa")
        kwargs.update(ABLATIONS[name])
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ModelConfigError(f"unknown {agent} config fields {unknown}; valid: {sorted(names)}")
    kwargs.update(overrides)
    return cls(**kwargs)


def build_policy(agent: str, obs_shapes: dict[str, tuple], action_dim: int, continuous: bool = False,
                 config: NavConfig | None = None) -> NavPolicy:
    """A fresh policy of ``agent`` for observations of ``obs_shapes`` ({key: shape})."""
    if agent not in AGENTS:
        raise ModelConfigError(f"unknown agent {agent!r}; choose one of {sorted(AGENTS)}")
    cfg_cls, policy_cls = AGENTS[agent]
    config = config if config is not None else cfg_cls()
    if not isinstance(config, cfg_cls):
        raise ModelConfigError(f"agent {agent!r} needs a {cfg_cls.__name__}, got {type(config).__name__}")
    return policy_cls(config, obs_shapes, action_dim, continuous)


__all__ = [
    "ABLATIONS", "AGENTS", "AGSAConfig", "AGSAPolicy", "AVNavConfig", "AVNavPolicy", "ActOutput",
    "AudioGuidedDynamicFusion", "ModelConfigError", "NavConfig", "NavPolicy", "RNNStateEncoder",
    "StereoAwareAttention", "build_policy", "model_config",
]
