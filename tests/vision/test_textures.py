import numpy as np
import pytest

from avworld.geometry.materials import BUILTIN_MATERIALS, TEXTURE_KINDS, Material
from avworld.vision.textures import (
    PERIODS,
    TextureAtlas,
    bake_texture,
    fbm,
    hash2,
    pattern,
    texture_extent_m,
    value_noise,
)


def test_hash_and_noise_deterministic_and_in_range():
    x = np.arange(-50, 50)
    h = hash2(x, 3 * x, 7)
    assert h.dtype == np.float32 and h.min() >= 0 and h.max() < 1
    np.testing.assert_array_equal(h, hash2(x, 3 * x, 7))
    assert not np.array_equal(h, hash2(x, 3 * x, 8))
    assert len(np.unique(h)) > 90
    xs = np.linspace(-3, 3, 200)
    n = value_noise(xs, xs * 0.5, seed=1)
    assert n.min() >= 0 and n.max() < 1 and n.std() > 0.05
    # continuous: neighbouring samples are close
    assert np.abs(np.diff(n)).max() < 0.2
    # periodic when asked
    np.testing.assert_allclose(value_noise(xs, xs, 4), value_noise(xs + 4, xs - 8, 4), atol=1e-6)
    np.testing.assert_allclose(fbm(xs, xs, 3, 4), fbm(xs + 4, xs, 3, 4), atol=1e-6)


def _material(kind, secondary=None):
    return Material("t_" + kind, (0.6, 0.5, 0.4), (0.1,) * 7, (0.1,) * 7, (30,) * 7, kind, 0.3, 0.3, secondary)


@pytest.mark.parametrize("kind", TEXTURE_KINDS)
def test_every_kind_bakes_tileable(kind):
    m = _material(kind, (0.9, 0.9, 0.9) if kind in ("tile", "brick", "marble") else None)
    img = bake_texture(m, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
    assert img.min() >= 0 and img.max() <= 1
    if kind == "plain":
        assert np.ptp(img, axis=(0, 1)).max() == 0
    else:
        assert img.std() > 0.005
    # the pattern repeats every PERIODS units
    su = np.linspace(0.013, 3.9, 37)
    sv = np.linspace(0.021, 5.3, 37)
    np.testing.assert_allclose(pattern(m, su, sv), pattern(m, su + PERIODS, sv - PERIODS), atol=2e-5)


def test_kinds_differ_and_builtins_bake():
    imgs = [bake_texture(_material(k), 32) for k in TEXTURE_KINDS]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert not np.allclose(imgs[i], imgs[j])
    for m in BUILTIN_MATERIALS.values():
        img = bake_texture(m, 32)
        # mean colour stays near the albedo
        assert np.abs(img.mean(axis=(0, 1)) - np.asarray(m.albedo)).max() < 0.25, m.name
    with pytest.raises(ValueError):
        bake_texture(_material("noise"), 100)


def test_atlas_layout():
    mats = [BUILTIN_MATERIALS["tile"], BUILTIN_MATERIALS["brick"]]
    at = TextureAtlas(mats, 32)
    assert at.texels.shape == (2 * 32 * 32 + 1, 3) and at.texels.dtype == np.uint8
    assert np.all(at.texels[at.miss_index] == 0)
    assert at.texel_m[1] == pytest.approx(texture_extent_m(mats[1]) / 32)
    # lookup wraps with the texture extent
    ext = texture_extent_m(mats[0])
    u = np.array([0.013, 0.37, 1.234])
    np.testing.assert_array_equal(at.lookup(0, u, u), at.lookup(0, u + ext, u - 2 * ext))
