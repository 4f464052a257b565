"""Acoustic memories that refine the passive monaural estimates over an episode.

Both memories share one step interface: ``step(passive, step_idx, state, reset)`` takes the
passive estimate ``M~_t`` (N, 16, 32, 32) of every env at its episode step ``t`` and returns
``MemoryStep``: the refined estimates of steps ``t - E .. t`` (N, E + 1, 16, 32, 32; slot
``E`` is step ``t``), which of them exist (steps >= 0), their step numbers and the new state.
``reset`` (N,) bool starts a new episode in that env. :func:`sequence_loss` is Eq. 2 over whole
episodes, computed through the same ``step`` calls as the rollouts.

* :class:`TransformerMemory` (f^T, the seed's Sec. 4.1 / 7.10): a bank of the last ``s_M + 1``
  passive estimates (the current one included); each is encoded by two convolutions (kernel
  and stride 2, ``token_channels`` outputs, ReLU after the first) to a ``token_channels * 64``-d
  token (1024 for 16 channels), plus a sinusoidal encoding of its episode step; a pre-norm
  transformer encoder (``layers`` layers, ``heads`` heads, feed-forward ``ff_size``, ReLU,
  Xavier-uniform init) attends over the bank (padding masked); the outputs of the last
  ``E + 1`` slots are decoded by two transposed convolutions (ReLU after the first, the
  encoder's first-layer output of the same slot added to it: the additive skip) into a
  correction of ``log1p(M~)``: ``M.. = expm1(relu(log1p(M~) + delta))``. The last transposed
  convolution starts at zero, so an untrained memory returns the passive estimates exactly
  (the seed pretrains f^P so the memory starts from a stationary input; starting f^T at the
  identity keeps the first on-policy rewards those of f^P).
* :class:`RecurrentRefiner` (Move2Hear's acoustic memory refiner, the baseline): a small
  conv net of ``log1p`` of the current passive estimate and of its own previous output
  (channel concatenation) -> the same zero-initialised correction; it refines only the
  current step (E = 0).
* :class:`NoMemory` (the "w/o f^T" ablation): the passive estimate, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from avworld.models.separation.spectrogram import CHUNKS, log_features


class MemoryConfigError(ValueError):
    """A memory config is out of range (e.g. E > s_M, or a token size the heads do not divide)."""


@dataclass(frozen=True)
class MemoryConfig:
    """f^T's sizes; ``kind`` picks the memory: transformer (f^T), recurrent (Move2Hear) or none."""

    kind: str = "transformer"
    memory_size: int = 19  # s_M: past estimates kept besides the current one
    refine_past: int = 14  # E: past steps refined at every step (<= memory_size)
    token_channels: int = 16  # conv channels; token size = token_channels * 8 * 8 (1024 for 16)
    layers: int = 2
    heads: int = 8
    ff_size: int = 1024
    dropout: float = 0.0
    max_steps: int = 64  # longest episode the step encoding is tabulated for
    refiner_channels: int = 32  # RecurrentRefiner width

    def __post_init__(self) -> None:
        if self.kind not in MEMORY_KINDS:
            raise MemoryConfigError(f"MemoryConfig.kind {self.kind!r}: choose one of {MEMORY_KINDS}")
        if self.memory_size < 0 or self.refine_past < 0:
            raise MemoryConfigError("MemoryConfig.memory_size (s_M) and refine_past (E) must be >= 0")
        if self.kind == "transformer" and self.refine_past > self.memory_size:
            raise MemoryConfigError(f"refine_past E = {self.refine_past} > memory_size s_M = {self.memory_size}: the "
                                    "memory can only refine steps it still holds; lower E or raise s_M")
        if min(self.token_channels, self.layers, self.heads, self.ff_size, self.max_steps, self.refiner_channels) < 1:
            raise MemoryConfigError("token_channels, layers, heads, ff_size, max_steps, refiner_channels must be >= 1")
        if (self.token_channels * 64) % self.heads:
            raise MemoryConfigError(f"token size {self.token_channels * 64} is not divisible by {self.heads} heads")
        if not 0.0 <= self.dropout < 1.0:
            raise MemoryConfigError(f"MemoryConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def window(self) -> int:
        """How many refined steps each call returns (E + 1; 1 for the recurrent refiner and no memory)."""
        return self.refine_past + 1 if self.kind == "transformer" else 1


MEMORY_KINDS = ("transformer", "recurrent", "none")


class MemoryStep(NamedTuple):
    estimates: torch.Tensor  # (N, W, 16, 32, 32) magnitudes of steps t-W+1 .. t
    valid: torch.Tensor  # (N, W) bool: the step exists (>= 0)
    steps: torch.Tensor  # (N, W) long episode steps (negative where not valid)
    state: dict


def sinusoidal_encoding(steps: torch.Tensor, dim: int) -> torch.Tensor:
    """(...,) integer steps -> (..., dim): sin on even, cos on odd features (Vaswani et al.)."""
    half = torch.arange(0, dim, 2, device=steps.device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * half / dim)
    ang = steps.float().unsqueeze(-1) * freq
    out = torch.zeros(*steps.shape, dim, device=steps.device)
    out[..., 0::2] = torch.sin(ang)
    out[..., 1::2] = torch.cos(ang[..., : dim // 2])
    return out


def _correct(passive: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    return torch.expm1(torch.relu(log_features(passive) + delta))


class _Memory(nn.Module):
    config: MemoryConfig

    def initial_state(self, n: int, device) -> dict:
        raise NotImplementedError

    def step(self, passive, step_idx, state, reset) -> MemoryStep:
        raise NotImplementedError

    def _steps(self, step_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.config.window
        steps = step_idx.view(-1, 1) - torch.arange(w - 1, -1, -1, device=step_idx.device).view(1, -1)
        return steps, steps >= 0


class TransformerMemory(_Memory):
    """f^T (see the module doc)."""

    def __init__(self, config: MemoryConfig = MemoryConfig()) -> None:
        super().__init__()
        self.config = c = config
        k = c.token_channels
        self.dim = k * 64
        self.enc1 = nn.Conv2d(CHUNKS, k, 2, 2)
        self.enc2 = nn.Conv2d(k, k, 2, 2)
        layer = nn.TransformerEncoderLayer(self.dim, c.heads, c.ff_size, c.dropout, activation="relu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, c.layers, norm=nn.LayerNorm(self.dim),
                                                 enable_nested_tensor=False)
        self.dec1 = nn.ConvTranspose2d(k, k, 2, 2)
        self.dec2 = nn.ConvTranspose2d(k, CHUNKS, 2, 2)
        for m in (self.enc1, self.enc2, self.dec1):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        for p in self.transformer.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.dec2.weight)
        nn.init.zeros_(self.dec2.bias)

    def initial_state(self, n: int, device) -> dict:
        s = self.config.memory_size + 1
        return {"bank": torch.zeros(n, s, CHUNKS, 32, 32, device=device),
                "valid": torch.zeros(n, s, dtype=torch.bool, device=device)}

    def refine(self, bank: torch.Tensor, bank_steps: torch.Tensor, valid: torch.Tensor, last: int) -> torch.Tensor:
        """Bank (N, S, 16, 32, 32) of passive magnitudes, their steps and validity -> refined magnitudes of
        the last ``last`` slots (N, last, 16, 32, 32)."""
        n, s = bank.shape[:2]
        x = log_features(bank).reshape(n * s, CHUNKS, 32, 32)
        h1 = torch.relu(self.enc1(x))  # (N*S, k, 16, 16)
        tok = self.enc2(h1).reshape(n, s, self.dim)
        tok = tok + sinusoidal_encoding(bank_steps.clamp_min(0), self.dim)
        out = self.transformer(tok, src_key_padding_mask=~valid)  # (N, S, D)
        k = self.config.token_channels
        sel = out[:, s - last:].reshape(n * last, k, 8, 8)
        skip = h1.reshape(n, s, k, 16, 16)[:, s - last:].reshape(n * last, k, 16, 16)
        delta = self.dec2(torch.relu(self.dec1(sel)) + skip).reshape(n, last, CHUNKS, 32, 32)
        return _correct(bank[:, s - last:], delta)

    def step(self, passive, step_idx, state, reset) -> MemoryStep:
        keep = (~reset).view(-1, 1)
        bank = torch.cat([state["bank"][:, 1:] * keep.view(-1, 1, 1, 1, 1), passive.unsqueeze(1)], dim=1)
        valid = torch.cat([state["valid"][:, 1:] & keep, torch.ones_like(keep)], dim=1)
        s = bank.shape[1]
        bank_steps = step_idx.view(-1, 1) - torch.arange(s - 1, -1, -1, device=passive.device).view(1, -1)
        valid = valid & (bank_steps >= 0)
        w = self.config.window
        est = self.refine(bank, bank_steps, valid, w)
        steps, ok = bank_steps[:, s - w:], valid[:, s - w:]
        return MemoryStep(est, ok, steps, {"bank": bank, "valid": valid})


class RecurrentRefiner(_Memory):
    """Move2Hear's acoustic memory refiner (see the module doc)."""

    def __init__(self, config: MemoryConfig = MemoryConfig(kind="recurrent")) -> None:
        super().__init__()
        self.config = config
        c = config.refiner_channels
        self.net = nn.Sequential(nn.Conv2d(2 * CHUNKS, c, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(c, c, 3, 1, 1), nn.ReLU(inplace=True), nn.Conv2d(c, CHUNKS, 3, 1, 1))
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.net[-1].weight)

    def initial_state(self, n: int, device) -> dict:
        return {"previous": torch.zeros(n, CHUNKS, 32, 32, device=device)}

    def step(self, passive, step_idx, state, reset) -> MemoryStep:
        prev = state["previous"] * (~reset).view(-1, 1, 1, 1).to(passive.dtype)
        delta = self.net(torch.cat([log_features(passive), log_features(prev)], dim=1))
        est = _correct(passive, delta)
        steps, ok = self._steps(step_idx)
        return MemoryStep(est.unsqueeze(1), ok, steps, {"previous": est})


class NoMemory(_Memory):
    """The passive estimate as the final one (no parameters)."""

    def __init__(self, config: MemoryConfig = MemoryConfig(kind="none")) -> None:
        super().__init__()
        self.config = config

    def initial_state(self, n: int, device) -> dict:
        return {}

    def step(self, passive, step_idx, state, reset) -> MemoryStep:
        steps, ok = self._steps(step_idx)
        return MemoryStep(passive.unsqueeze(1), ok, steps, {})


def build_memory(config: MemoryConfig) -> _Memory:
    return {"transformer": TransformerMemory, "recurrent": RecurrentRefiner, "none": NoMemory}[config.kind](config)


def sequence_loss(memory: _Memory, passive: torch.Tensor, target: torch.Tensor,
                  length: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2 averaged over the steps of whole episodes: passive and target magnitudes (B, T, 16, 32, 32),
    ``length`` (B,) valid steps per episode (default T). At step t the loss is the mean over the refined
    steps u = t-E..t (those >= 0) of the element-mean |M.._u - M_u|."""
    b, t_len = passive.shape[:2]
    dev = passive.device
    length = torch.full((b,), t_len, device=dev) if length is None else length.to(dev)
    state = memory.initial_state(b, dev)
    total, count = passive.new_zeros(()), passive.new_zeros(())
    for t in range(t_len):
        reset = torch.full((b,), t == 0, dtype=torch.bool, device=dev)
        out = memory.step(passive[:, t], torch.full((b,), t, device=dev, dtype=torch.long), state, reset)
        state = out.state
        idx = out.steps.clamp_min(0)  # (B, W)
        tgt = target[torch.arange(b, device=dev).view(-1, 1), idx]  # (B, W, 16, 32, 32)
        err = (out.estimates - tgt).abs().mean(dim=(2, 3, 4))  # (B, W)
        ok = out.valid.float()
        per_step = (err * ok).sum(1) / ok.sum(1).clamp_min(1.0)  # (1 / (E + 1)) sum_u, Eq. 2
        live = (t < length).float()
        total = total + (per_step * live).sum()
        count = count + live.sum()
    return total / count.clamp_min(1.0)
