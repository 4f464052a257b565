"""PSNR / SSIM / MS-SSIM: closed forms, torchmetrics as the reference, typed errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from avworld.eval.image_metrics import MS_SSIM_WEIGHTS, ImageMetricError, ms_ssim, psnr, ssim
from avworld.eval.nav_metrics import MetricError

TOL = 1e-5  # agreement with torchmetrics (float64 on both sides)


def _pair(shape, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    target = rng.random(shape)
    preds = np.clip(target + noise * rng.standard_normal(shape), 0.0, 1.0)
    return preds, target


def test_identical_images_give_the_ideal_values():
    a, _ = _pair((3, 180, 176, 3))
    assert np.all(np.isinf(psnr(a, a)))
    assert np.allclose(psnr(a, a, max_db=100.0), 100.0)
    np.testing.assert_allclose(ssim(a, a), 1.0, atol=1e-12)
    np.testing.assert_allclose(ms_ssim(a, a), 1.0, atol=1e-12)


def test_constant_offset_gives_the_closed_form_psnr():
    target = np.full((2, 16, 16, 3), 0.5)
    np.testing.assert_allclose(psnr(target + 0.1, target), 20.0, atol=1e-9)  # MSE 0.01
    t8 = np.full((1, 16, 16, 1), 100, np.uint8)
    np.testing.assert_allclose(psnr(t8 + np.uint8(10), t8), 20 * np.log10(255 / 10), atol=1e-9)


def test_uint8_and_float_inputs_agree_and_a_single_image_is_a_batch_of_one():
    p, t = _pair((1, 32, 32, 3))
    p8, t8 = np.round(p * 255).astype(np.uint8), np.round(t * 255).astype(np.uint8)
    np.testing.assert_allclose(ssim(p8, t8), ssim(p8 / 255.0, t8 / 255.0), atol=1e-12)
    np.testing.assert_allclose(ssim(p8[0], t8[0]), ssim(p8, t8), atol=1e-12)
    assert psnr(p, t).shape == (1,)


def test_ssim_decreases_with_noise():
    _, t = _pair((1, 48, 48, 3))
    values = [ssim(_pair((1, 48, 48, 3), noise=s)[0], t)[0] for s in (0.02, 0.1, 0.3)]
    assert values[0] > values[1] > values[2]


@pytest.fixture(scope="module")
def tm():
    pytest.importorskip("torch")
    return pytest.importorskip("torchmetrics.functional.image")


def _t(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


@pytest.mark.parametrize("shape", [(3, 180, 190, 3), (1, 176, 176, 1), (2, 200, 181, 4)])
def test_matches_torchmetrics(tm, shape):
    p, t = _pair(shape, seed=len(shape) + shape[0])
    ref_ssim = tm.structural_similarity_index_measure(_t(p), _t(t), data_range=1.0, reduction="none").numpy()
    ref_ms = tm.multiscale_structural_similarity_index_measure(_t(p), _t(t), data_range=1.0, reduction="none").numpy()
    ref_psnr = tm.peak_signal_noise_ratio(_t(p), _t(t), data_range=1.0, reduction="none", dim=(1, 2, 3)).numpy()
    np.testing.assert_allclose(ssim(p, t), ref_ssim, atol=TOL)
    np.testing.assert_allclose(ms_ssim(p, t), ref_ms, atol=TOL)
    np.testing.assert_allclose(psnr(p, t), ref_psnr, atol=TOL)


def test_ms_ssim_with_fewer_scales_matches_torchmetrics(tm):
    p, t = _pair((3, 64, 64, 3), seed=7)
    w = MS_SSIM_WEIGHTS[:3]
    ref = tm.multiscale_structural_similarity_index_measure(_t(p), _t(t), data_range=1.0, reduction="none", betas=w)
    np.testing.assert_allclose(ms_ssim(p, t, weights=w), ref.numpy(), atol=TOL)


@pytest.mark.parametrize(
    ("preds", "target", "words"),
    [
        (np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 17, 3)), "differ in shape"),
        (np.zeros((16, 16)), np.zeros((16, 16)), "(N, H, W, C)"),
        (np.zeros((2, 3, 16, 16)), np.zeros((2, 3, 16, 16)), "channels-first"),
        (np.full((1, 16, 16, 3), 2.0), np.zeros((1, 16, 16, 3)), "outside [0, 1]"),
        (np.zeros((1, 16, 16, 3), np.int16), np.zeros((1, 16, 16, 3), np.int16), "dtype int16"),
        (np.full((1, 16, 16, 3), np.nan), np.zeros((1, 16, 16, 3)), "NaN"),
    ],
)
def test_bad_inputs_raise_typed_errors_with_the_fix(preds, target, words):
    with pytest.raises(ImageMetricError) as err:
        psnr(preds, target)
    assert words in str(err.value)
    assert isinstance(err.value, MetricError) and isinstance(err.value, ValueError)


def test_images_too_small_for_ms_ssim_name_the_fix():
    p, t = _pair((1, 128, 128, 3))
    with pytest.raises(ImageMetricError, match=r"at least 176 x 176.*MS_SSIM_WEIGHTS\[:4\]"):
        ms_ssim(p, t)
    with pytest.raises(ImageMetricError, match="11 x 11"):
        ssim(p[:, :8, :8], t[:, :8, :8])


def test_metrics_import_without_torch():
    code = (
        "import sys\n"
        "import avworld.eval.image_metrics, avworld.eval.audio_metrics\n"
        "assert 'torch' not in sys.modules, 'a metric module imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
