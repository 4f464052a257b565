"""Training configs and presets (no torch import: the CLI reads these to build its help).

:class:`PPOConfig` holds the PPO / DD-PPO hyperparameters; :class:`EnvConfig` how the
AudioGoal vector env is built; a preset is a named triple of overrides for the PPO, the
env and the model config (:func:`resolve`). ``soundspaces`` is SoundSpaces' published
AV-Nav PPO setting (``ss_baselines/av_nav/config/audionav/*/train_telephone/*.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


class TrainConfigError(ValueError):
    """A training option is out of range or unknown; the message names it and the valid values."""


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters; ``num_envs`` is per process and ``total_steps`` counts env steps of all processes."""

    num_envs: int = 5  # SoundSpaces NUM_PROCESSES (Replica)
    num_steps: int = 150  # rollout length T per update ("length of history that PPO encodes")
    total_steps: int = 2_000_000
    epochs: int = 4
    num_minibatches: int = 1  # minibatches per epoch, split by env (sequences stay whole)
    lr: float = 2.5e-4
    adam_eps: float = 1e-5
    clip_coef: float = 0.1
    clip_value_loss: bool = True
    value_coef: float = 0.5
    entropy_coef: float = 0.2
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95  # SoundSpaces' tau
    lr_decay: bool = True  # linear decay to 0 over total_steps
    clip_decay: bool = True
    norm_advantages: bool = True
    seed: int = 0
    checkpoint_every: int = 50  # updates
    keep_checkpoints: int = 3
    log_every: int = 1  # updates
    reward_window: int = 50  # episodes per process in the logged running means
    time_limit_s: float | None = None  # stop (with a checkpoint) after the first update past this wall time
    # exploration warm-up (not SoundSpaces'): Discrete actions that may not be taken before env step
    # mask_until_step, e.g. mask_actions=(0,) keeps an untrained AudioGoal agent from calling STOP
    mask_actions: tuple[int, ...] = ()
    mask_until_step: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, need: str) -> None:
            raise TrainConfigError(f"PPOConfig.{name} = {getattr(self, name)!r}: must be {need}")

        for name in ("num_envs", "num_steps", "total_steps", "epochs", "num_minibatches", "checkpoint_every",
                     "keep_checkpoints", "log_every", "reward_window"):
            if getattr(self, name) < 1:
                bad(name, ">= 1")
        if self.num_minibatches > self.num_envs:
            bad("num_minibatches", f"<= num_envs ({self.num_envs}): minibatches are whole env sequences")
        for name in ("lr", "adam_eps", "clip_coef", "max_grad_norm"):
            if not getattr(self, name) > 0:
                bad(name, "> 0")
        for name in ("gamma", "gae_lambda"):
            if not 0 <= getattr(self, name) <= 1:
                bad(name, "in [0, 1]")
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            bad("time_limit_s", "> 0 seconds or None")
        object.__setattr__(self, "mask_actions", tuple(int(a) for a in self.mask_actions))
        if any(a < 0 for a in self.mask_actions) or self.mask_until_step < 0:
            bad("mask_actions", "action indices >= 0, with mask_until_step >= 0")
        if self.value_coef < 0 or self.entropy_coef < 0:
            bad("value_coef" if self.value_coef < 0 else "entropy_coef", ">= 0")


@dataclass(frozen=True)
class EnvConfig:
    """How ``avworld train nav`` builds its envs (keywords of ``gymnasium.make("avworld/AudioGoal-v0")``)."""

    env_id: str = "avworld/AudioGoal-v0"
    size: int = 128  # width = height in pixels
    # simulator motion preset (avworld.sim.config.PRESETS): soundspaces2 = 0.25 m / 10 deg / 0.25 s of audio per
    # step; grid = SoundSpaces 1's setting (1 m / 90 deg / 1 s), the one the AGSA paper and AV-Nav report on
    motion: str = "soundspaces2"
    observations: str = "audiovisual"
    pointgoal: bool = False  # add the GPS+compass goal vector (AudioPointGoal; pair with model use_pointgoal)
    episodes: str | None = None  # episode file; None: episodes sampled on the fly in `split` houses
    split: str = "train"
    num_scenes: int = 8
    # without an episode file: episodes per house, each sampled on first use and reused (0: a new one per reset)
    episodes_per_scene: int = 64
    rooms: tuple[int, int] = (2, 4)
    step_limit: int = 500
    asynchronous: bool = True  # one process per env (AsyncVectorEnv)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rooms", tuple(self.rooms))
        if self.size < 1 or self.num_scenes < 1 or self.step_limit < 1:
            raise TrainConfigError("EnvConfig: size, num_scenes and step_limit must be >= 1")
        if self.episodes_per_scene < 0:
            raise TrainConfigError("EnvConfig.episodes_per_scene: must be >= 0 (0 samples a new episode per reset)")
        from avworld.eval.choices import check_choice
        from avworld.sim.config import PRESETS as MOTION  # numpy only, no torch
        from avworld.tasks.audiogoal import OBSERVATION_SETS  # no torch either

        check_choice("EnvConfig.motion", self.motion, MOTION, TrainConfigError)
        check_choice("EnvConfig.observations", self.observations, OBSERVATION_SETS, TrainConfigError)


#: name -> {"ppo": PPOConfig overrides, "env": EnvConfig overrides, "model": model config overrides, "doc": ...}
PRESETS: dict[str, dict] = {
    "soundspaces": {
        "doc": "SoundSpaces' published AV-Nav setting: PPO clip 0.1, 4 epochs, 1 minibatch, lr 2.5e-4, entropy "
               "0.2, 150-step rollouts, 5 envs, 128x128 depth, GRU 512",
        "ppo": {}, "env": {"size": 128, "observations": "audiodepth"}, "model": {"visual_keys": ("depth",)},
    },
    "fast": {
        "doc": "the soundspaces PPO sized for a 2-core machine: 64x64 depth, 16 envs stepped in the learner process "
               "(batched inference, shared worlds), 2 epochs, "
               "2 minibatches (the benchmark preset)",
        "ppo": {"num_envs": 16, "epochs": 2, "num_minibatches": 2},
        "env": {"size": 64, "observations": "audiodepth", "asynchronous": False},
        "model": {"visual_keys": ("depth",)},
    },
    "tiny": {
        "doc": "smoke tests: 32x32 depth, small networks (hidden 64), 2 envs x 32 steps",
        "ppo": {"num_envs": 2, "num_steps": 32, "total_steps": 1024, "entropy_coef": 0.01, "lr": 1e-3,
                "clip_coef": 0.2, "checkpoint_every": 4, "num_minibatches": 2},
        "env": {"size": 32, "num_scenes": 2, "step_limit": 100, "asynchronous": False, "observations": "audiodepth"},
        "model": {"visual_keys": ("depth",), "hidden_size": 64, "visual_size": 64, "audio_size": 64,
                  "visual_channels": (8, 16, 16), "audio_channels": (8, 16, 16)},
    },
}


def override(cfg, values: dict, what: str):
    """``dataclasses.replace`` that names unknown fields in its error."""
    names = {f.name for f in fields(cfg)}
    unknown = sorted(set(values) - names)
    if unknown:
        from avworld.eval.choices import did_you_mean

        hint = "".join(did_you_mean(u, names) for u in unknown)
        raise TrainConfigError(f"unknown {what} options {unknown}{hint}; valid: {sorted(names)}")
    return replace(cfg, **values)


def resolve(preset: str, ppo: dict | None = None, env: dict | None = None) -> tuple[PPOConfig, EnvConfig, dict]:
    """(PPOConfig, EnvConfig, model overrides) of ``preset`` with extra PPO and env overrides."""
    from avworld.eval.choices import check_choice

    check_choice("preset", preset, PRESETS, TrainConfigError)
    p = PRESETS[preset]
    ppo_cfg = override(PPOConfig(), {**p["ppo"], **(ppo or {})}, "PPO")
    env_cfg = override(EnvConfig(), {**p["env"], **(env or {})}, "env")
    return ppo_cfg, env_cfg, dict(p["model"])
