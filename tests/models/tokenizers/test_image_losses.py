"""Image autoencoder losses: torch MS-SSIM against the numpy reference, scale clipping, the patch GAN."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.eval import image_metrics as ref  # noqa: E402
from avworld.models.tokenizers import ImageLossConfig, ImageLossError, PatchDiscriminator, ms_ssim  # noqa: E402
from avworld.models.tokenizers.image_losses import (  # noqa: E402
    MS_SSIM_WEIGHTS,
    hinge_d_loss,
    hinge_g_loss,
    min_discriminator_size,
    psnr,
    usable_scales,
)


def _pair(size: int, n: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.random((n, size, size, 3))
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0.0, 1.0)
    return a, b


def _chw(x: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype).permute(0, 3, 1, 2)


@pytest.mark.parametrize("size", [64, 48, 37, 32, 16, 11])
def test_ms_ssim_matches_the_numpy_reference(size):
    a, b = _pair(size)
    n = usable_scales(size, size, 3)
    w = np.asarray(MS_SSIM_WEIGHTS[:n]) / sum(MS_SSIM_WEIGHTS[:n])
    expected = ref.ms_ssim(b, a, weights=w) if n > 1 else ref.ssim(b, a)
    got64 = ms_ssim(_chw(b, torch.float64), _chw(a, torch.float64), scales=3).numpy()
    got32 = ms_ssim(_chw(b), _chw(a), scales=3).numpy()
    np.testing.assert_allclose(got64, expected, atol=1e-10)
    np.testing.assert_allclose(got32, expected, atol=1e-4)  # measured: < 3e-7


def test_ms_ssim_five_scales_match_the_reference_at_176_px():
    a, b = _pair(176, n=1)
    w = np.asarray(MS_SSIM_WEIGHTS) / sum(MS_SSIM_WEIGHTS)  # they sum to 0.9999: renormalised too
    np.testing.assert_allclose(ms_ssim(_chw(b, torch.float64), _chw(a, torch.float64), scales=5).numpy(),
                               ref.ms_ssim(b, a, weights=w), atol=1e-10)


def test_scales_are_clipped_so_the_coarsest_keeps_the_window():
    assert [usable_scales(s, s, 3) for s in (11, 21, 22, 43, 44, 64, 128)] == [1, 1, 2, 2, 3, 3, 3]
    assert usable_scales(176, 176, 5) == 5 and usable_scales(175, 200, 5) == 4
    with pytest.raises(ImageLossError, match="at least 11 x 11"):
        ms_ssim(torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10))
    with pytest.raises(ImageLossError, match="same shape"):
        ms_ssim(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 16))


def test_ms_ssim_is_one_for_identical_images_and_has_gradients():
    a, b = _pair(32, n=2)
    x = _chw(b).requires_grad_(True)
    y = _chw(a)
    assert torch.allclose(ms_ssim(y, y), torch.ones(2))
    val = ms_ssim(x, y).sum()
    val.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # following the gradient raises the similarity
    with torch.no_grad():
        assert ms_ssim(x + 0.05 * x.grad / x.grad.abs().max(), y).sum() > val


def test_ms_ssim_gradient_stays_finite_for_anticorrelated_images():
    y = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    x = (1.0 - y).requires_grad_(True)  # contrast-structure terms < 0, clamped
    ms_ssim(x, y).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_loss_config_validation():
    with pytest.raises(ImageLossError, match=">= 0"):
        ImageLossConfig(kl=-1.0)
    with pytest.raises(ImageLossError, match="ms_ssim_scales"):
        ImageLossConfig(ms_ssim_scales=6)
    with pytest.raises(ImageLossError, match="disc_layers"):
        ImageLossConfig(disc_layers=0)
    assert issubclass(ImageLossError, ValueError)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_patch_discriminator_shapes_and_batch_of_one(layers):
    size = min_discriminator_size(layers)
    d = PatchDiscriminator(3, width=8, layers=layers)
    out = d(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1, 1, 1)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert d(torch.randn(2, 3, 64, 64)).shape[:2] == (2, 1)


def test_hinge_losses_and_psnr():
    assert float(hinge_d_loss(torch.full((2, 1, 3, 3), 2.0), torch.full((2, 1, 3, 3), -2.0))) == 0.0
    assert float(hinge_d_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))) == 2.0
    assert float(hinge_g_loss(torch.full((1, 1, 2, 2), 0.5))) == -0.5
    x = torch.full((2, 3, 8, 8), 0.5)
    np.testing.assert_allclose(psnr(x + 0.1, x).numpy(), [20.0, 20.0], rtol=1e-5)
