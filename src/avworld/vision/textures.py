"""Procedural surface textures, baked once per material into tileable images.

Every :class:`~avworld.geometry.materials.Material` names a texture kind from
:data:`~avworld.geometry.materials.TEXTURE_KINDS`. :func:`bake_texture` evaluates the
kind's pattern (hash-based value noise, planks, tiles, bricks, veins...) on a
``size`` x ``size`` grid covering :func:`texture_extent_m` metres; the pattern is
periodic over that extent, so the renderer can sample it with world coordinates
modulo the extent. ``texture_scale_m`` sets the pattern's feature size (tile, brick,
plank length, noise cell), ``texture_contrast`` its strength and ``secondary`` the
colour of grout / mortar / veins.

Everything is deterministic numpy (no per-pixel Python loops); baking 256 x 256
texels takes a few milliseconds per material.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avworld.geometry.materials import TEXTURE_KINDS, Material

#: Pattern periods (of ``texture_scale_m``) per baked texture image, per axis.
PERIODS = 8
#: Default baked texture size (texels per side, a power of two).
DEFAULT_TEXTURE_SIZE = 256

_U = np.uint32


def hash2(ix, iy, seed: int = 0) -> np.ndarray:
    """Deterministic integer hash of lattice coordinates -> float32 in [0, 1).

    Murmur3-style: the two coordinates are mixed in one after the other, then the
    state is avalanched, so nearby and symmetric inputs give unrelated values.
    """
    x = np.asarray(ix).astype(np.int64).astype(np.uint32)
    y = np.asarray(iy).astype(np.int64).astype(np.uint32)
    h = x ^ _U((int(seed) * 0x9E3779B1 + 0x85EBCA6B) & 0xFFFFFFFF)
    h *= _U(0xCC9E2D51)
    h ^= h >> _U(15)
    h ^= y
    h *= _U(0x1B873593)
    h ^= h >> _U(13)
    h *= _U(0x85EBCA6B)
    h ^= h >> _U(16)
    h *= _U(0xC2B2AE35)
    h ^= h >> _U(16)
    return (h >> _U(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def value_noise(x, y, period=None, seed: int = 0) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) on a unit lattice.

    ``period`` (int or (px, py)) makes it periodic: the lattice wraps every
    ``px`` cells in x and ``py`` in y.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    x1 = x0 + 1
    y1 = y0 + 1
    if period is not None:
        px, py = (period, period) if np.ndim(period) == 0 else period
        x0, x1 = x0 % int(px), x1 % int(px)
        y0, y1 = y0 % int(py), y1 % int(py)
    sx = fx * fx * (3 - 2 * fx)
    sy = fy * fy * (3 - 2 * fy)
    a = hash2(x0, y0, seed)
    b = hash2(x1, y0, seed)
    c = hash2(x0, y1, seed)
    d = hash2(x1, y1, seed)
    top = a + (b - a) * sx
    bot = c + (d - c) * sx
    return (top + (bot - top) * sy).astype(np.float32)


def fbm(x, y, octaves: int = 3, period=None, seed: int = 0, gain: float = 0.5) -> np.ndarray:
    """Fractal sum of ``octaves`` value-noise layers (frequency x2 each), in [0, 1)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    total = np.zeros(np.broadcast(x, y).shape, np.float32)
    amp, norm, freq = 1.0, 0.0, 1
    for o in range(octaves):
        per = None
        if period is not None:
            px, py = (period, period) if np.ndim(period) == 0 else period
            per = (int(px) * freq, int(py) * freq)
        total += np.float32(amp) * value_noise(x * freq, y * freq, per, seed + 1013 * o)
        norm += amp
        amp *= gain
        freq *= 2
    return total / np.float32(norm)


def texture_extent_m(material: Material) -> float:
    """Metres covered by one baked texture image (it repeats beyond that)."""
    return PERIODS * float(material.texture_scale_m)


def _seed_of(material: Material) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(material.name)) & 0xFFFF


def pattern(material: Material, su, sv, seed: int | None = None) -> np.ndarray:
    """Linear RGB (..., 3) of ``material`` at pattern coordinates ``(su, sv)``.

    Coordinates are in units of ``texture_scale_m``; the result is periodic with
    period :data:`PERIODS` in both. ``su`` runs horizontally, ``sv`` vertically on
    walls (so bricks and planks lie horizontally).
    """
    su = np.asarray(su, dtype=np.float64)
    sv = np.asarray(sv, dtype=np.float64)
    su, sv = np.broadcast_arrays(su, sv)
    kind = material.texture
    if kind not in TEXTURE_KINDS:
        raise ValueError(f"unknown texture kind {kind!r}; known: {TEXTURE_KINDS}")
    seed = _seed_of(material) if seed is None else int(seed)
    c = float(material.texture_contrast)
    alb = np.asarray(material.albedo, dtype=np.float32)
    sec = None if material.secondary is None else np.asarray(material.secondary, dtype=np.float32)
    P = PERIODS
    shape = su.shape

    def mod(gain):
        return alb * (1.0 + np.asarray(gain, np.float32)[..., None])

    if kind == "plain" or (c == 0.0 and kind in ("noise", "carpet", "fabric", "grass")):
        col = np.broadcast_to(alb, shape + (3,))
    elif kind == "noise":
        n = fbm(su, sv, 3, P, seed)
        col = mod(2.0 * c * (n - 0.5))
    elif kind == "carpet":
        n = fbm(su, sv, 2, P, seed)
        grain = hash2(np.floor(su * 16) % (16 * P), np.floor(sv * 16) % (16 * P), seed + 7)  # 16 tufts per cell
        col = mod(c * (1.4 * (n - 0.5) + 0.9 * (grain - 0.5)))
    elif kind == "fabric":
        weave = 0.5 * (np.sin(2 * np.pi * su * 4) * np.sin(2 * np.pi * sv * 4))
        n = fbm(su * 0.5, sv * 0.5, 2, P // 2, seed)
        col = mod(c * (0.8 * weave + 1.2 * (n - 0.5)))
    elif kind == "grass":
        n = fbm(su, sv, 3, P, seed)
        blades = value_noise(su * 16, sv * 3, (16 * P, 3 * P), seed + 3)
        g = c * (1.6 * (n - 0.5) + 1.0 * (blades - 0.5))
        dry = np.clip(fbm(su * 0.25, sv * 0.25, 2, P // 4, seed + 5) - 0.45, 0, 1)[..., None] * 1.5
        base = alb * (1 - dry) + np.array([0.55, 0.50, 0.25], np.float32) * dry
        col = base * (1.0 + g[..., None])
    elif kind == "wood":
        rows_per = 4  # planks a quarter of texture_scale_m wide, 2 x texture_scale_m long
        row = np.floor(sv * rows_per)
        offset = hash2(row % (P * rows_per), 0, seed + 11) * 2.0
        board = np.floor((su + offset) / 2.0)
        nboards = P // 2
        tint = hash2(board % nboards, row % (P * rows_per), seed + 13) - 0.5
        warp = fbm(su * 0.5, sv * rows_per, 2, (P // 2, P * rows_per), seed + 17)
        grain = np.sin(2 * np.pi * (sv * rows_per * 6 + 2.5 * warp + tint * 3))
        fr = sv * rows_per - row
        fu = (su + offset) / 2.0 - board
        gap = (fr < 0.04) | (fu < 0.008)
        g = c * (1.2 * tint + 0.35 * grain)
        col = mod(g) * np.where(gap, 0.45, 1.0).astype(np.float32)[..., None]
    elif kind == "tile":
        tu = np.floor(su)
        tv = np.floor(sv)
        fu = su - tu
        fv = sv - tv
        w = 0.035
        grout = (fu < w) | (fu > 1 - w) | (fv < w) | (fv > 1 - w)
        tint = hash2(tu % P, tv % P, seed + 19) - 0.5
        n = fbm(su * 2, sv * 2, 2, 2 * P, seed + 23)
        body = mod(c * (0.35 * tint + 0.3 * (n - 0.5)))
        gcol = sec if sec is not None else alb * (1.0 - c)
        col = np.where(grout[..., None], gcol, body)
    elif kind == "brick":
        rows_per = 3  # bricks texture_scale_m long, a third of it high
        row = np.floor(sv * rows_per)
        shift = 0.5 * (row % 2)
        bu = np.floor(su + shift)
        fu = su + shift - bu
        fv = sv * rows_per - row
        mortar = (fu < 0.03) | (fv < 0.09)
        tint = hash2(bu % P, row % (P * rows_per), seed + 29) - 0.5
        n = fbm(su * 4, sv * 4, 2, 4 * P, seed + 31)
        body = mod(c * (1.0 * tint + 0.6 * (n - 0.5)))
        mcol = sec if sec is not None else alb * 0.5 + 0.4
        col = np.where(mortar[..., None], mcol, body)
    elif kind == "marble":
        turb = fbm(su, sv, 4, P, seed + 37)
        t = np.abs(np.sin(2 * np.pi * (su * 0.5 + sv * 0.25) + 7.0 * turb))
        vein = ((1.0 - t) ** 6 * min(1.0, 2.5 * c)).astype(np.float32)[..., None]
        cloud = fbm(su * 0.5, sv * 0.5, 2, P // 2, seed + 41)
        base = mod(0.4 * c * (cloud - 0.5))
        vcol = sec if sec is not None else alb * 0.5
        col = base * (1 - vein) + vcol * vein
    else:  # pragma: no cover - guarded above
        raise AssertionError(kind)
    return np.clip(np.asarray(col, np.float32), 0.0, 1.0)


def linear_to_srgb(x) -> np.ndarray:
    """Gamma-encode linear values in [0, 1] with the 1/2.2 power law."""
    return np.power(np.clip(np.asarray(x, np.float64), 0.0, 1.0), 1.0 / 2.2)


@lru_cache(maxsize=256)
def _bake_cached(material: Material, size: int) -> np.ndarray:
    t = (np.arange(size, dtype=np.float64) + 0.5) * (PERIODS / size)
    su, sv = np.meshgrid(t, t)  # image[iv, iu]
    img = pattern(material, su, sv)
    img.setflags(write=False)
    return img


@lru_cache(maxsize=256)
def _srgb_cached(material: Material, size: int) -> np.ndarray:
    """(size * size, 3) sRGB uint8 texels of one material (the atlas's rows for it)."""
    out = np.round(linear_to_srgb(_bake_cached(material, size).reshape(-1, 3)) * 255.0).astype(np.uint8)
    out.setflags(write=False)
    return out


def bake_texture(material: Material, size: int = DEFAULT_TEXTURE_SIZE) -> np.ndarray:
    """(size, size, 3) float32 linear RGB image of one texture period, indexed ``[iv, iu]``.

    Texel ``(iv, iu)`` covers pattern coordinates around ``((iu + .5), (iv + .5)) *
    PERIODS / size`` (units of ``texture_scale_m``). Cached per material.
    """
    if size < 8 or size & (size - 1):
        raise ValueError(f"texture size must be a power of two >= 8, got {size}")
    return _bake_cached(material, int(size))


class TextureAtlas:
    """All materials' baked textures as one flat sRGB uint8 table.

    ``texels`` (M * size * size + 1, 3) uint8; material ``m``'s texel ``(iv, iu)``
    lives at row ``m * size * size + iv * size + iu``; the last row is black (used
    for rays that hit nothing). ``texel_m[m]`` is the texel edge length in metres.
    """

    def __init__(self, materials, size: int = DEFAULT_TEXTURE_SIZE) -> None:
        if size < 8 or size & (size - 1):
            raise ValueError(f"texture size must be a power of two >= 8, got {size}")
        self.size = int(size)
        self.shift = self.size.bit_length() - 1
        self.materials = tuple(materials)
        # per material, cached: houses share their palette, so a new scene mostly re-uses these
        imgs = [_srgb_cached(m, self.size) for m in self.materials]
        self.texels = np.concatenate(imgs + [np.zeros((1, 3), np.uint8)])
        self.texels.setflags(write=False)
        self.texel_m = np.array([texture_extent_m(m) / self.size for m in self.materials], np.float64)
        self.miss_index = len(self.texels) - 1

    def base(self, material_index) -> np.ndarray:
        """First texel row of each material."""
        return np.asarray(material_index, np.int64) * (self.size * self.size)

    def lookup(self, material_index, u_m, v_m) -> np.ndarray:
        """sRGB uint8 (..., 3) of material(s) at planar world coordinates (metres)."""
        mi = np.asarray(material_index, np.int64)
        iu = np.floor(np.asarray(u_m, np.float64) / self.texel_m[mi]).astype(np.int64) & (self.size - 1)
        iv = np.floor(np.asarray(v_m, np.float64) / self.texel_m[mi]).astype(np.int64) & (self.size - 1)
        return self.texels[self.base(mi) + (iv << self.shift) + iu]
