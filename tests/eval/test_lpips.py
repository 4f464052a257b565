"""LPIPS-alex from local weights: equals an independent numpy computation of the reference formula."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.eval.lpips import (  # noqa: E402
    CHANNELS,
    SCALE,
    SHIFT,
    AlexLPIPS,
    LPIPSWeightsError,
    load_lpips,
    lpips_distance,
)

CONVS = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1),
         (10, 256, 256, 3, 1, 1))


def reference_state(seed=0) -> dict:
    """Random weights in the reference layout: torchvision's alexnet.features + LPIPS' lin layers."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for idx, i, o, k, _, _ in CONVS:
        state[f"features.{idx}.weight"] = torch.randn(o, i, k, k, generator=g) * (2.0 / (i * k * k)) ** 0.5
        state[f"features.{idx}.bias"] = torch.randn(o, generator=g) * 0.1
    state["classifier.1.weight"] = torch.zeros(4, 4)  # ignored
    for j, c in enumerate(CHANNELS):
        state[f"lin{j}.model.1.weight"] = torch.rand(1, c, 1, 1, generator=g)
    return state


def _conv(x, w, b, stride, pad):  # x (C, H, W); im2col in float64
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("chwij,ocij->ohw", win, w) + b[:, None, None]


def _pool(x):
    win = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2]
    return win.max(axis=(-1, -2))


def numpy_lpips(state, a, b) -> float:
    """The reference formula, written independently (numpy, float64) for one pair of uint8 images."""
    def feats(img):
        x = img.transpose(2, 0, 1).astype(np.float64) / 127.5 - 1.0
        x = (x - np.array(SHIFT)[:, None, None]) / np.array(SCALE)[:, None, None]
        out = []
        for n, (idx, _, _, _, s, p) in enumerate(CONVS):
            if n in (1, 2):
                x = _pool(x)
            x = np.maximum(_conv(x, state[f"features.{idx}.weight"].double().numpy(),
                                 state[f"features.{idx}.bias"].double().numpy(), s, p), 0)
            out.append(x)
        return out
    total = 0.0
    for j, (fa, fb) in enumerate(zip(feats(a), feats(b))):
        na = fa / (np.sqrt((fa ** 2).sum(0, keepdims=True)) + 1e-10)
        nb = fb / (np.sqrt((fb ** 2).sum(0, keepdims=True)) + 1e-10)
        w = state[f"lin{j}.model.1.weight"].double().numpy()[0, :, 0, 0]
        total += float((w[:, None, None] * (na - nb) ** 2).sum(0).mean())
    return total


def test_lpips_equals_the_reference_formula_in_numpy(tmp_path, one_torch_thread):
    state = reference_state()
    backbone = {k: v for k, v in state.items() if not k.startswith("lin")}
    linear = {k: v for k, v in state.items() if k.startswith("lin")}
    torch.save(backbone, tmp_path / "alexnet.pth")
    torch.save(linear, tmp_path / "alex.pth")
    net = load_lpips(f"{tmp_path / 'alexnet.pth'},{tmp_path / 'alex.pth'}")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    got = lpips_distance(net, a, b)
    want = np.array([numpy_lpips(state, x, y) for x, y in zip(a, b)])
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert np.all(got > 0)
    np.testing.assert_allclose(lpips_distance(net, a, a), 0.0, atol=1e-7)       # identical images
    np.testing.assert_allclose(lpips_distance(net, b, a), got, rtol=1e-5)      # symmetric
    torch.save(state, tmp_path / "merged.pth")                                  # one merged file works too
    np.testing.assert_allclose(lpips_distance(load_lpips(str(tmp_path / "merged.pth")), a, b), got, rtol=1e-6)


def test_bad_weights_are_typed_errors(tmp_path):
    state = reference_state()
    with pytest.raises(LPIPSWeightsError, match="no such file"):
        load_lpips(str(tmp_path / "none.pth"))
    torch.save({k: v for k, v in state.items() if not k.startswith("lin")}, tmp_path / "backbone.pth")
    with pytest.raises(LPIPSWeightsError, match="lin0.model.1.weight"):
        load_lpips(str(tmp_path / "backbone.pth"))
    state["features.3.weight"] = torch.zeros(10, 64, 5, 5)
    torch.save(state, tmp_path / "vgg.pth")
    with pytest.raises(LPIPSWeightsError, match="not AlexNet"):
        load_lpips(str(tmp_path / "vgg.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(LPIPSWeightsError, match="not a readable"):
        load_lpips(str(tmp_path / "junk.pth"))
    with pytest.raises(ValueError, match="one shape"):
        lpips_distance(AlexLPIPS().eval(), np.zeros((1, 8, 8, 3), np.uint8), np.zeros((1, 9, 8, 3), np.uint8))
