"""The passive separator f^P: U-Net shapes, the ratio mask, Eq. 1 and the overfit check."""

import math

import pytest
import torch

from avworld.models.separation import PassiveConfig, PassiveSeparator, UNet, UNetError, magnitudes, passive_loss

TINY = PassiveConfig(channels=(8, 16, 16, 16, 16), num_types=4)


def test_unet_shapes_and_levels():
    net = UNet(33, 32, (8, 16, 32, 32, 32))
    assert net(torch.randn(2, 33, 32, 32)).shape == (2, 32, 32, 32)
    assert len(net.downs) == 5 and len(net.ups) + 1 == 5  # five convs and five transposed convs
    with pytest.raises(UNetError):
        UNet(3, 3, (8, 16, 32))
    with pytest.raises(UNetError, match="32 x 32"):
        net(torch.randn(1, 33, 16, 16))


def test_full_width_is_the_seeds():
    sep = PassiveSeparator(PassiveConfig())
    widths = [d[0].out_channels for d in sep.binaural.downs]
    assert widths == [64, 128, 256, 512, 512]
    assert isinstance(sep.binaural.downs[1][2], torch.nn.LeakyReLU) and sep.binaural.downs[1][2].negative_slope == 0.2


def test_mask_bounds_the_binaural_estimate_and_type_is_an_input():
    torch.manual_seed(0)
    sep = PassiveSeparator(TINY).eval()
    mix = magnitudes(torch.randn(2, 2, 16000) * 0.1)
    out = sep(mix, torch.tensor([0, 0]))
    assert out.binaural.shape == (2, 32, 32, 32) and out.mono.shape == (2, 16, 32, 32)
    assert torch.all(out.mask >= 0) and torch.all(out.mask <= 1)
    assert torch.all(out.binaural <= mix + 1e-6) and torch.all(out.mono >= 0)
    other = sep(mix, torch.tensor([3, 3]))
    assert not torch.allclose(other.mono, out.mono)


def test_eq1_is_the_sum_of_element_mean_l1_terms():
    sep = PassiveSeparator(TINY)
    out = sep(magnitudes(torch.randn(1, 2, 16000) * 0.1), torch.tensor([1]))
    tb, tm = torch.rand(1, 32, 32, 32), torch.rand(1, 16, 32, 32)
    loss, logs = passive_loss(out, tb, tm)
    expect = (out.binaural - tb).abs().mean() + (out.mono - tm).abs().mean()
    assert loss.item() == pytest.approx(expect.item())
    assert set(logs) == {"loss/binaural", "loss/mono"}


def _mixtures(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(16000) / 16000
    target_mono = torch.stack([0.05 * torch.sin(2 * math.pi * (200 + 150 * i) * t) for i in range(n)])
    gains = torch.tensor([0.8, 0.5])
    target_bin = target_mono[:, None] * gains[None, :, None]
    noise = 0.02 * torch.randn(n, 2, 16000, generator=g)
    return target_bin + noise, target_bin, target_mono


def test_a_tiny_separator_overfits_a_few_mixtures():
    torch.manual_seed(0)
    mix, tb, tm = _mixtures(4)
    mix_m, tb_m, tm_m = magnitudes(mix), magnitudes(tb), magnitudes(tm[:, None])
    types = torch.tensor([0, 1, 2, 3])
    sep = PassiveSeparator(TINY)
    opt = torch.optim.Adam(sep.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss, _ = passive_loss(sep(mix_m, types), tb_m, tm_m)
        first = loss.item() if first is None else first
        if loss.item() < first / 10:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 10, (first, loss.item())
