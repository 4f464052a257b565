"""AV-CDiT: the audio-visual Conditional Diffusion Transformer of the world model.

NWM's CDiT extended to sight, binaural sound and reward (seed 001 §4.1). Per sample::

    c       = emb_t(diffusion step) + emb_Δ(offset) + emb_a(dx, dy, dyaw)      (embeddings.py)
    target  = [visual tokens | audio tokens | reward token]                     noised latents
              visual: conv patchify (p x p, stride p) of the (C, h, w) latent + learned positions
              audio:  linear of ``audio_patch`` latent frames (D each) + learned positions
              reward: linear of the scalar reward + a learned position
    context = k frames' visual + audio tokens through the SAME adaptors and positions, plus a
              learned per-context-frame embedding (no reward in the context)
    block   = x += g1 * SelfAttn(mod(LN(x)))                  over the target sequence
              x += g2 * CrossAttn(mod(LN(x)), mod(LN(ctx)))    target -> context; the context
                                                               has its own LN + shift/scale
              x += g3 * FFN_expert(mod(LN(x)))                 visual tokens -> visual expert,
                                                               audio + reward -> audio expert
    heads   = per modality: LN + adaLN shift/scale from c + linear -> noise (and the learned
              variance interpolation v when ``learn_sigma``: 2x the channels)

All shift/scale/gate values come from ``c`` through a zero-initialised linear (adaLN-zero), so
an untrained block is the identity on the residual stream, and the zero-initialised heads
predict zero noise. The reward output is the average of the head over the reward token(s).

``model(x_t, t, context, offset, action)`` takes ``x_t = {"rgb": (B, C, h, w), "audio": (B, D,
F), "reward": (B, 1)}`` (any non-empty subset: absent modalities are dropped from the
sequence), ``context = {"rgb": (B, k, C, h, w), "audio": (B, k, D, F)}`` (a non-empty subset),
``t`` (B,) long, ``offset`` (B,) long with ``|offset| <= max_offset`` and ``action`` (B, 3),
and returns a dict with the same keys as ``x_t``: (B, 2C, h, w), (B, 2D, F), (B, 2) (the
first half of the channels is the noise, the second the variance interpolation).

Stagewise training (seed §4.2): see :meth:`AVCDiT.set_stage`, :data:`STAGE_GROUPS` and
:func:`stage_spec`; ``docs/worldmodel.md`` has the table.
"""

from __future__ import annotations

import re
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from avworld.models.worldmodel.config import (
    MODALITIES,
    STAGE_GROUPS,
    AVCDiTConfig,
    ContextLengthError,
    LatentMismatchError,
    LayoutMismatchError,
    OffsetRangeError,
    StageError,
    WorldModelError,
    _check_stage,
)
from avworld.models.worldmodel.embeddings import ActionEmbedder, ScalarEmbedder


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class _Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context`` (itself when None) with SDPA."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q, self.kv, self.proj = nn.Linear(width, width), nn.Linear(width, 2 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        ctx = x if context is None else context
        (b, n, w), m, h = x.shape, ctx.shape[1], self.heads
        q = self.q(x).view(b, n, h, w // h).transpose(1, 2)
        k, v = self.kv(ctx).view(b, m, 2, h, w // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, n, w))


def _ffn(width: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                         nn.Linear(hidden, width), nn.Dropout(dropout))


class AVCDiTBlock(nn.Module):
    """adaLN-zero block: self-attention, cross-attention to the context, modality-expert FFN."""

    def __init__(self, cfg: AVCDiTConfig):
        super().__init__()
        w = cfg.width
        self.norm1, self.norm2, self.norm3, self.norm_ctx = (nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
                                                             for _ in range(4))
        self.attn = _Attention(w, cfg.heads, cfg.dropout)
        self.cross = _Attention(w, cfg.heads, cfg.dropout)
        if cfg.experts:
            self.ffn_visual = _ffn(w, cfg.mlp_ratio, cfg.dropout)
            self.ffn_audio = _ffn(w, cfg.mlp_ratio, cfg.dropout)
        else:
            self.ffn = _ffn(w, cfg.mlp_ratio, cfg.dropout)
        # 11 modulations: shift/scale/gate (self-attn), shift/scale (context), shift/scale/gate
        # (cross-attn), shift/scale/gate (FFN), as NWM's CDiT block
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(w, 11 * w))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, c: torch.Tensor, n_visual: int) -> torch.Tensor:
        (sh1, sc1, g1, sh_ctx, sc_ctx, sh2, sc2, g2, sh3, sc3, g3) = self.adaLN(c).chunk(11, dim=1)
        x = x + g1[:, None] * self.attn(_modulate(self.norm1(x), sh1, sc1))
        ctx = _modulate(self.norm_ctx(ctx), sh_ctx, sc_ctx)
        x = x + g2[:, None] * self.cross(_modulate(self.norm2(x), sh2, sc2), ctx)
        h = _modulate(self.norm3(x), sh3, sc3)
        if hasattr(self, "ffn"):
            h = self.ffn(h)
        else:  # split by modality; an expert never sees an empty slice (hooks count real rows)
            parts = [(self.ffn_visual, h[:, :n_visual]), (self.ffn_audio, h[:, n_visual:])]
            h = torch.cat([f(p) for f, p in parts if p.shape[1]], dim=1)
        return x + g3[:, None] * h


class _Head(nn.Module):
    """Final layer: LN, adaLN shift/scale from c, linear (all zero-initialised but the LN)."""

    def __init__(self, width: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm(x), shift, scale))


_GROUP_PATTERNS = (
    ("visual", re.compile(r"^(rgb_in|rgb_pos|rgb_head)\b|^blocks\.\d+\.ffn_visual\.")),
    ("audio", re.compile(r"^(audio_in|audio_pos|audio_head)\b|^blocks\.\d+\.ffn_audio\.")),
    ("reward", re.compile(r"^(reward_in|reward_pos|reward_head)\b")),
    ("shared_ffn", re.compile(r"^blocks\.\d+\.ffn\.")),
)


def parameter_group(name: str) -> str:
    """The stage group of a parameter name: visual, audio, reward, shared_ffn or shared."""
    return next((g for g, pat in _GROUP_PATTERNS if pat.search(name)), "shared")


class AVCDiT(nn.Module):
    """Audio-visual CDiT; weights are initialised from ``seed`` (global RNG untouched)."""

    def __init__(self, config: AVCDiTConfig = AVCDiTConfig(), seed: int = 0):  # noqa: B008  (frozen dataclass)
        super().__init__()
        self.config = cfg = config
        self.stage = 3
        w, p, r = cfg.width, cfg.patch_size, cfg.reward_tokens if cfg.reward_token else 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.t_embed = ScalarEmbedder(w, cfg.freq_dim)
            self.offset_embed = ScalarEmbedder(w, cfg.freq_dim)
            self.action_embed = ActionEmbedder(w, cfg.freq_dim, cfg.action_scale)
            self.rgb_in = nn.Conv2d(cfg.rgb_channels, w, p, stride=p)
            self.rgb_pos = nn.Parameter(torch.randn(1, cfg.visual_tokens, w) * 0.02)
            self.audio_in = nn.Linear(cfg.audio_dim * cfg.audio_patch, w)
            self.audio_pos = nn.Parameter(torch.randn(1, cfg.audio_tokens, w) * 0.02)
            self.context_frame = nn.Parameter(torch.randn(cfg.context_frames, w) * 0.02)
            self.blocks = nn.ModuleList(AVCDiTBlock(cfg) for _ in range(cfg.depth))
            f = cfg.out_factor
            self.rgb_head = _Head(w, p * p * cfg.rgb_channels * f)
            self.audio_head = _Head(w, cfg.audio_patch * cfg.audio_dim * f)
            if r:
                self.reward_in = nn.Linear(1, w)
                self.reward_pos = nn.Parameter(torch.randn(1, r, w) * 0.02)
                self.reward_head = _Head(w, f)
            self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.rgb_in.weight.view(self.rgb_in.weight.shape[0], -1))
        nn.init.zeros_(self.rgb_in.bias)
        for emb in (self.t_embed, self.offset_embed, *self.action_embed.parts):
            for lin in (emb.mlp[0], emb.mlp[2]):
                nn.init.normal_(lin.weight, std=0.02)
        heads = [self.rgb_head, self.audio_head] + ([self.reward_head] if hasattr(self, "reward_head") else [])
        for mod in [b.adaLN[-1] for b in self.blocks] + [h.adaLN[-1] for h in heads] + [h.linear for h in heads]:
            nn.init.zeros_(mod.weight)
            nn.init.zeros_(mod.bias)

    # ---- input checks -------------------------------------------------------------------
    def _check_latent(self, name: str, x: torch.Tensor, batch: int, frames: int | None = None) -> None:
        cfg = self.config
        want = {"rgb": (cfg.rgb_channels, cfg.rgb_size, cfg.rgb_size), "audio": (cfg.audio_dim, cfg.audio_frames),
                "reward": (1,)}[name]
        lead = (batch,) if frames is None else (batch, frames)
        if frames is not None and (x.dim() != len(want) + 2 or x.shape[1] != frames):
            got = x.shape[1] if x.dim() > 1 else "?"
            raise ContextLengthError(f"context {name} has {got} frames (shape {tuple(x.shape)}), the model needs "
                                     f"k={frames} (context_frames): pass (B, {frames}, ...) context latents")
        if tuple(x.shape) != lead + want:
            fields = {"rgb": f"rgb_channels={cfg.rgb_channels}, rgb_size={cfg.rgb_size}",
                      "audio": f"audio_dim={cfg.audio_dim}, audio_frames={cfg.audio_frames}", "reward": "(B, 1)"}
            raise LatentMismatchError(
                f"{name} latents of shape {tuple(x.shape)}, the model expects {lead + want} (AVCDiTConfig("
                f"{fields[name]})): latents of another tokenizer? encode with the model's tokenizers or "
                f"build the model with a matching config")

    def _check(self, x_t, t, context, offset, action) -> int:
        cfg = self.config
        if not x_t or set(x_t) - set(MODALITIES):
            raise WorldModelError(f"x_t needs a non-empty subset of {MODALITIES}, got {sorted(x_t)}")
        if "reward" in x_t and not hasattr(self, "reward_head"):
            raise WorldModelError("x_t has a reward but the model has no reward token (reward_token=False)")
        if not context or set(context) - {"rgb", "audio"}:
            raise WorldModelError(f"context needs a non-empty subset of ('rgb', 'audio'), got {sorted(context)}")
        b = next(iter(x_t.values())).shape[0]
        for name, x in x_t.items():
            self._check_latent(name, x, b)
        for name, x in context.items():
            self._check_latent(name, x, b, cfg.context_frames)
        if t.shape != (b,) or offset.shape != (b,) or action.shape != (b, 3):
            raise WorldModelError(f"t and offset must be (B,)=({b},) and action (B, 3); got {tuple(t.shape)}, "
                                  f"{tuple(offset.shape)}, {tuple(action.shape)}")
        if offset.is_floating_point():
            raise WorldModelError("offset must be an integer tensor (frames)")
        if b and int(offset.abs().max()) > cfg.max_offset:
            raise OffsetRangeError(f"offset {int(offset.abs().max())} frames is beyond the trained range "
                                   f"[-{cfg.max_offset}, {cfg.max_offset}]; use fixed-step offsets within it "
                                   f"or roll out several steps")
        return b

    # ---- tokens ---------------------------------------------------------------------------
    def _tokens(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name == "rgb":
            return self.rgb_in(x).flatten(2).transpose(1, 2) + self.rgb_pos
        if name == "audio":
            b, d, f = x.shape
            return self.audio_in(x.transpose(1, 2).reshape(b, f // self.config.audio_patch, -1)) + self.audio_pos
        return self.reward_in(x)[:, None] + self.reward_pos

    def _context(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        toks = []
        for name in ("rgb", "audio"):
            if name in context:
                x = context[name]
                b, k = x.shape[:2]
                toks.append(self._tokens(name, x.flatten(0, 1)).unflatten(0, (b, k)))
        ctx = torch.cat(toks, dim=2) + self.context_frame[None, :, None]
        return ctx.flatten(1, 2)

    def forward(self, x_t: dict[str, torch.Tensor], t: torch.Tensor, context: dict[str, torch.Tensor],
                offset: torch.Tensor, action: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config
        b = self._check(x_t, t, context, offset, action)
        c = self.t_embed(t) + self.offset_embed(offset) + self.action_embed(action)
        names = [n for n in MODALITIES if n in x_t]
        toks = [self._tokens(n, x_t[n]) for n in names]
        x, ctx = torch.cat(toks, dim=1), self._context(context)
        n_visual = toks[0].shape[1] if names[0] == "rgb" else 0
        for block in self.blocks:
            x = block(x, ctx, c, n_visual)
        out = {}
        for name, part in zip(names, x.split([tk.shape[1] for tk in toks], dim=1)):
            y = getattr(self, f"{name}_head")(part, c)
            if name == "rgb":
                g, p = cfg.rgb_size // cfg.patch_size, cfg.patch_size
                y = y.view(b, g, g, p, p, -1).permute(0, 5, 1, 3, 2, 4).reshape(b, -1, cfg.rgb_size, cfg.rgb_size)
            elif name == "audio":
                y = y.reshape(b, cfg.audio_frames, -1).transpose(1, 2)
            else:
                y = y.mean(dim=1)  # average pooling over the reward token(s)
            out[name] = y
        return out

    # ---- stages ---------------------------------------------------------------------------
    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names per stage group (visual, audio, reward, shared_ffn, shared)."""
        groups: dict[str, list[str]] = {}
        for name, _ in self.named_parameters():
            groups.setdefault(parameter_group(name), []).append(name)
        return groups

    def trainable_parameter_names(self, stage: int, extra: tuple[str, ...] = ()) -> list[str]:
        """Names of the parameters stage ``stage`` trains (see :data:`STAGE_GROUPS`), plus those of the
        groups in ``extra`` (e.g. ``("shared",)``: stage 2 with unfrozen attention, an experiment)."""
        _check_stage(stage)
        unknown = sorted(set(extra) - {"shared", "visual", "audio", "reward", "shared_ffn"})
        if unknown:
            raise StageError(f"unknown parameter groups {unknown}; groups: shared, visual, audio, reward, shared_ffn")
        groups = (*STAGE_GROUPS[stage], *extra)
        if not self.config.visual:
            groups = tuple(g for g in groups if g != "visual")
        return [n for n, _ in self.named_parameters() if parameter_group(n) in groups]

    def set_stage(self, stage: int, extra: tuple[str, ...] = ()) -> list[str]:
        """Freeze everything stage ``stage`` (plus the groups in ``extra``) does not train
        (``requires_grad``); returns the trained names."""
        names = set(self.trainable_parameter_names(stage, extra))
        for n, prm in self.named_parameters():
            prm.requires_grad_(n in names)
        self.stage = stage
        return sorted(names)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As torch's, but a strict load of another layout raises :class:`LayoutMismatchError`."""
        if strict:
            own = {k: tuple(v.shape) for k, v in self.state_dict().items()}
            theirs = {k: tuple(v.shape) for k, v in state_dict.items()}
            missing, extra = sorted(own.keys() - theirs.keys()), sorted(theirs.keys() - own.keys())
            shapes = sorted(k for k in own.keys() & theirs.keys() if own[k] != theirs[k])
            if missing or extra or shapes:
                cfg = self.config
                raise LayoutMismatchError(
                    f"the weights do not fit this AV-CDiT (experts={cfg.experts}, reward_token={cfg.reward_token}, "
                    f"width={cfg.width}, depth={cfg.depth}): missing {missing[:3]}, unexpected {extra[:3]}, other "
                    f"shapes {shapes[:3]} ({len(missing)}/{len(extra)}/{len(shapes)} in all); build the model "
                    f"with the checkpoint's AVCDiTConfig")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
