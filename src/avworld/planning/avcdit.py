"""The AV-CDiT world model behind the planner's interface: latent rollouts, decoded for the policy.

The real trajectory's observations are encoded with the tokenizers the world model was trained
on (identity-checked); a state is the last k frames' latents (image and binaural audio). One
:meth:`AVCDiTWorldModel.step` samples the next frame of every (state, action) pair in **one
batched sampler call** (Δ = 1, the action as the relative pose of the step, as the training data
aggregates it), decodes the images and clips, and computes the spectrogram the policy hears.
Before k real frames exist, the first frame is repeated. STOP is not predicted (the AVW data
have no STOP), so ``predicts_stop`` is False.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch

from avworld.planning.world_models import Prediction, WorldModel

FORWARD, LEFT, RIGHT = 1, 2, 3


class AVCDiTPlanningError(ValueError):
    """The world model cannot serve the planner (stage without audio, clip length, frame size)."""


class AVCDiTWorldModel(WorldModel):
    """``AVCDiTWorldModel(checkpoint, forward_step_m, turn_deg, steps=10, sampler="ddim", seed=0)``."""

    name = "avwm"
    predicts_stop = False

    def __init__(self, checkpoint, forward_step_m: float, turn_deg: float, steps: int = 10, sampler: str = "ddim",
                 seed: int = 0, image: str = "image", audio: str = "audio", device: str = "cpu") -> None:
        from avworld.models.worldmodel.generate import modalities
        from avworld.train.tokenizer_apply import audio_encoder, image_encoder
        from avworld.train.tokenizer_checkpoint import load_tokenizer
        from avworld.train.worldmodel_checkpoint import load_worldmodel
        from avworld.train.worldmodel_generate import check_tokenizers, load_tokenizers

        self.model = checkpoint if isinstance(checkpoint, torch.nn.Module) else load_worldmodel(checkpoint, device)
        target, _ = modalities(self.model)
        missing = [m for m in ("rgb", "audio", "reward") if m not in target]
        if missing:
            raise AVCDiTPlanningError(f"this world-model checkpoint (stage {getattr(self.model, 'stage', '?')}) does "
                                      f"not predict {missing}; plan with a stage-3 checkpoint (RUN/stages/stage3.pt)")
        self.tok = load_tokenizers(image, audio, device)
        check_tokenizers(self.model, self.tok)
        self._enc_img = image_encoder(load_tokenizer(image, kind="image", map_location=device))
        self._enc_aud = audio_encoder(load_tokenizer(audio, kind="audio", map_location=device))
        self.k = int(self.model.config.context_frames)
        self.steps, self.sampler, self.seed = int(steps), sampler, int(seed)
        self.device = next(self.model.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        turn = math.radians(turn_deg)
        self.step_action = {FORWARD: (float(forward_step_m), 0.0, 0.0), LEFT: (0.0, 0.0, turn),
                            RIGHT: (0.0, 0.0, -turn)}
        self._ctx: dict | None = None
        self.calls = 0
        c = self.model.config
        with torch.no_grad():  # what a prediction decodes to: frame size (px) and clip length (samples)
            z = torch.zeros(1, c.rgb_channels, c.rgb_size, c.rgb_size)
            self.frame_size = int(self.tok.decode_image(z).shape[1])
            self.clip_samples = int(self.tok.decode_audio(torch.zeros(1, c.audio_dim, c.audio_frames)).shape[-1])

    # ------------------------------------------------------------------ real trajectory
    def _encode(self, obs: dict) -> dict:
        rgb = np.asarray(obs["rgb"])[None]
        clip = np.asarray(obs["audio"], np.float32)[None]
        return {"rgb": torch.from_numpy(self._enc_img(rgb)[0]), "audio": torch.from_numpy(self._enc_aud(clip)[0])}

    def reset(self, env, obs: dict) -> None:
        ep = getattr(getattr(env, "unwrapped", env), "episode", None)
        key = zlib.crc32(str(getattr(ep, "episode_id", "")).encode())
        self.generator.manual_seed((self.seed * 1_000_003 + key) % 2**63)
        z = self._encode(obs)
        self._ctx = {m: z[m][None].repeat(self.k, *([1] * z[m].dim())) for m in ("rgb", "audio")}

    def observe(self, obs: dict) -> None:
        z = self._encode(obs)
        self._ctx = {m: torch.cat([self._ctx[m][1:], z[m][None]]) for m in ("rgb", "audio")}

    def root(self, env):
        if self._ctx is None:
            raise AVCDiTPlanningError("call reset(env, obs) at the start of the episode before planning")
        return self._ctx

    # ------------------------------------------------------------------ imagination
    def step(self, states: list, actions: list[int]) -> Prediction:
        from avworld.acoustics.features import spectrogram
        from avworld.models.worldmodel.generate import sample

        bad = [a for a in actions if int(a) not in self.step_action]
        if bad:
            raise AVCDiTPlanningError(f"actions {bad} cannot be imagined (STOP is not in the world model's data)")
        n = len(states)
        ctx = {m: torch.stack([s[m] for s in states]) for m in ("rgb", "audio")}
        act = torch.tensor([self.step_action[int(a)] for a in actions], dtype=torch.float32)
        out = sample(self.model, ctx, torch.ones(n, dtype=torch.long), act, sampler=self.sampler, steps=self.steps,
                     generator=self.generator)
        self.calls += 1
        frames = self.tok.decode_image(out["rgb"])
        clips = self.tok.decode_audio(out["audio"])
        obs = [{"rgb": frames[i], "audio": clips[i], "spectrogram": spectrogram(clips[i])} for i in range(n)]
        nxt = [{m: torch.cat([states[i][m][1:], out[m][i : i + 1].cpu()]) for m in ("rgb", "audio")} for i in range(n)]
        reward = out["reward"].detach().cpu().numpy().astype(float)
        return Prediction(obs, reward, np.zeros(n, bool), np.zeros(n, bool), nxt)
