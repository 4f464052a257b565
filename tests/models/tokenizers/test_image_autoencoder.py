"""Image autoencoder: shapes, seeding, typed errors, the posterior, latent scale, GAN plumbing, overfit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.models.tokenizers import (  # noqa: E402
    DiagonalGaussian,
    ImageAutoencoder,
    ImageAutoencoderConfig,
    ImageAutoencoderError,
    ImageChannelError,
    ImageDtypeError,
    ImageLossConfig,
    ImageSizeError,
    LatentShapeError,
)

TINY = ImageAutoencoderConfig(image_size=32, base_width=8, norm_groups=4)


def _uint8(b: int, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (b, size, size, 3), dtype=np.uint8)


def _pattern(size: int = 32) -> np.ndarray:
    """Four fixed images: sines of 1..4 periods in red/green, an 8 px checkerboard in blue."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = []
    for k in range(4):
        r = 127 + 120 * np.sin(2 * np.pi * xx * (k + 1) / size)
        g = 127 + 120 * np.cos(2 * np.pi * yy * (k + 1) / size)
        b = ((xx // 8 + yy // 8 + k) % 2) * 200 + 20
        out.append(np.stack([r, g, b], -1))
    return np.stack(out).astype(np.uint8)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kind", ["numpy_uint8", "torch_uint8", "float"])
def test_round_trip_shapes_and_dtypes(batch, kind, one_torch_thread):
    model = ImageAutoencoder(TINY)
    x = _uint8(batch)
    images = {"numpy_uint8": x, "torch_uint8": torch.from_numpy(x),
              "float": torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1}[kind]
    with torch.no_grad():
        post = model.encode(images)
        assert isinstance(post, DiagonalGaussian)
        assert post.mean.shape == post.logvar.shape == (batch, 4, 4, 4) and post.mean.dtype == torch.float32
        assert post.sample().shape == (batch, 4, 4, 4) and post.kl().shape == (batch,)
        y = model.decode(post.mode())
    assert y.shape == (batch, 3, 32, 32) and y.dtype == torch.float32
    u = ImageAutoencoder.to_uint8(y)
    assert u.shape == (batch, 32, 32, 3) and u.dtype == torch.uint8
    loss, logs = model({"image": images})
    assert loss.dim() == 0 and torch.isfinite(loss) and logs["loss"] == pytest.approx(float(loss.detach()))
    assert set(logs) == {"loss", "l1", "ms_ssim", "kl", "psnr"}


def test_default_config_is_8x_with_4_latent_channels():
    cfg = ImageAutoencoderConfig()
    assert cfg.downsample == 8 and cfg.latent_shape == (4, 8, 8) and cfg.widths == (64, 128, 128, 256)
    model = ImageAutoencoder(ImageAutoencoderConfig(image_size=64, base_width=8, norm_groups=4))
    with torch.no_grad():
        assert model.encode(_uint8(2, 64)).mean.shape == (2, 4, 8, 8)


def test_uint8_float_uint8_is_lossless():
    x = torch.from_numpy(_uint8(2))
    f = ImageAutoencoder(TINY).prepare_images(x)
    assert float(f.min()) >= -1.0 and float(f.max()) <= 1.0
    assert torch.equal(ImageAutoencoder.to_uint8(f), x)


def test_config_from_json_like_values_and_validation():
    cfg = ImageAutoencoderConfig(width_mult=[1, 2], image_size=16, loss={"kl": 0.0, "ms_ssim": 0.5})
    assert cfg.width_mult == (1, 2) and cfg.loss == ImageLossConfig(kl=0.0, ms_ssim=0.5) and cfg.downsample == 2
    with pytest.raises(ImageSizeError, match="multiple of the total down-sampling 8.*pick e.g. 64"):
        ImageAutoencoderConfig(image_size=60)
    with pytest.raises(ImageSizeError, match="11 px"):
        ImageAutoencoderConfig(image_size=8)
    ImageAutoencoderConfig(image_size=8, loss=ImageLossConfig(ms_ssim=0.0))
    with pytest.raises(ImageSizeError, match="disc_layers"):
        ImageAutoencoderConfig(image_size=16, loss=ImageLossConfig(gan=0.1))
    with pytest.raises(ImageAutoencoderError, match="width_mult"):
        ImageAutoencoderConfig(width_mult=())
    assert ImageAutoencoder(ImageAutoencoderConfig(image_size=16, base_width=12, norm_groups=32)) is not None


def test_same_seed_same_weights_and_global_rng_untouched(one_torch_thread):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = ImageAutoencoder(TINY, seed=7), ImageAutoencoder(TINY, seed=7), ImageAutoencoder(TINY, seed=8)
    assert torch.equal(torch.rand(3), expected)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    x = _uint8(3)
    with torch.no_grad():
        ya, yb, yc = (m.decode(m.encode(x).mode()) for m in (a, b, c))
    assert ya.numpy().tobytes() == yb.numpy().tobytes() and not torch.equal(ya, yc)
    # the loss samples the posterior with the global RNG: same seed, same loss
    torch.manual_seed(5)
    l1 = a({"image": x})[1]["loss"]
    torch.manual_seed(5)
    assert a({"image": x})[1]["loss"] == l1


def test_untrained_output_depends_on_the_input(one_torch_thread):
    model = ImageAutoencoder(TINY)
    with torch.no_grad():
        y = model.decode(model.encode(_uint8(2)).mode())
    assert (y[0] - y[1]).abs().mean() > 0.1 * y.abs().mean()


def test_typed_errors_for_bad_input():
    model = ImageAutoencoder(TINY)
    with pytest.raises(ImageSizeError, match=r"64 x 64 px.*built for 32 x 32.*image_size=64"):
        model.encode(_uint8(1, 64))
    with pytest.raises(ImageChannelError, match="channels-first"):
        model.encode(torch.from_numpy(_uint8(1)).permute(0, 3, 1, 2).contiguous())
    with pytest.raises(ImageChannelError, match="channels-last"):
        model.encode(torch.zeros(1, 32, 32, 3))
    with pytest.raises(ImageChannelError, match=r"images\[None\]"):
        model.encode(_uint8(1)[0])
    with pytest.raises(ImageDtypeError, match=r"\[-1, 1\].*x / 127.5 - 1"):
        model.encode(torch.full((1, 3, 32, 32), 255.0))
    with pytest.raises(ImageDtypeError, match="NaN"):
        model.encode(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(ImageDtypeError, match="uint8"):
        model.encode(_uint8(1).astype(np.float32))
    with pytest.raises(ImageDtypeError, match="dtype torch.int64"):
        model.encode(torch.zeros(1, 3, 32, 32, dtype=torch.int64))
    with pytest.raises(LatentShapeError, match=r"\(batch, 4, 4, 4\)"):
        model.decode(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ImageAutoencoderError, match="'image'"):
        model({"images": _uint8(1)})
    model.encode(torch.full((1, 3, 32, 32), 1.005))  # rounding slack of [-1.01, 1.01] is accepted
    assert all(issubclass(e, ImageAutoencoderError) and issubclass(e, ValueError)
               for e in (ImageSizeError, ImageChannelError, ImageDtypeError, LatentShapeError))


def test_kl_of_a_standard_normal_posterior_is_zero():
    z = torch.zeros(2, 4, 4, 4)
    assert torch.equal(DiagonalGaussian(z, z).kl(), torch.zeros(2))
    kl = DiagonalGaussian(torch.ones(1, 4, 4, 4), z).kl()  # mean 1: 0.5 per element
    assert torch.allclose(kl, torch.tensor([32.0]))
    post = DiagonalGaussian(z, torch.full_like(z, 100.0))
    assert float(post.logvar.max()) == 20.0  # clamped as SD
    eps = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(DiagonalGaussian(z, z).sample(torch.Generator().manual_seed(0)), eps)


def test_latent_scale_round_trip_and_state_dict(one_torch_thread):
    model = ImageAutoencoder(TINY)
    model.set_latent_scale(0.25)
    x = _uint8(2)
    with torch.no_grad():
        z = model.encode_latents(x)
        assert torch.allclose(z, 0.25 * model.encode(x).mode())
        assert torch.allclose(model.decode_latents(z), model.decode(model.encode(x).mode()), atol=1e-6)
        assert model.encode_latents(x, sample=True).shape == z.shape
    assert float(model.state_dict()["latent_scale"]) == 0.25
    other = ImageAutoencoder(TINY)
    other.load_state_dict(model.state_dict())
    assert float(other.latent_scale) == 0.25
    with pytest.raises(ImageAutoencoderError, match="positive"):
        model.set_latent_scale(0.0)


def test_measure_latent_scale_is_one_over_the_std_of_the_means(one_torch_thread):
    model = ImageAutoencoder(TINY)
    x = _uint8(5)
    with torch.no_grad():
        means = model.encode(x).mean.double()
    expected = 1.0 / float(means.std(unbiased=False))
    assert model.measure_latent_scale(x) == pytest.approx(expected, rel=1e-6)
    assert model.measure_latent_scale(x, batch_size=2) == pytest.approx(expected, rel=1e-6)
    batches = [{"image": torch.from_numpy(x[:3])}, x[3:]]
    assert model.measure_latent_scale(batches) == pytest.approx(expected, rel=1e-6)
    model.set_latent_scale(expected)
    with torch.no_grad():
        z = torch.cat([model.encode_latents(x[i:i + 1]) for i in range(5)])
    assert float(z.double().std(unbiased=False)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ImageAutoencoderError, match="no images"):
        model.measure_latent_scale([])


def test_no_discriminator_without_gan():
    model = ImageAutoencoder(TINY)
    assert model.discriminator is None
    assert model.discriminator_loss({"image": _uint8(1)}, step=10) is None
    assert len(list(model.autoencoder_parameters())) == len(list(model.parameters()))


def test_discriminator_loss_trains_only_the_discriminator(one_torch_thread):
    cfg = ImageAutoencoderConfig(image_size=32, base_width=8, norm_groups=4,
                                 loss=ImageLossConfig(gan=0.5, gan_start=3, disc_width=8, disc_layers=2))
    model = ImageAutoencoder(cfg)
    disc = {id(p) for p in model.discriminator.parameters()}
    ae = list(model.autoencoder_parameters())
    assert disc and not disc & {id(p) for p in ae} and len(ae) + len(disc) == len(list(model.parameters()))
    x = {"image": _uint8(1)}
    assert model.discriminator_loss(x, step=2) is None
    assert "gan_g" not in model(x, step=2)[1]
    loss, logs = model.discriminator_loss(x, step=3)
    assert torch.isfinite(loss) and {"gan_d", "d_real", "d_fake"} <= set(logs)
    loss.backward()
    assert all(p.grad is None for p in ae)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.parameters())
    model.zero_grad(set_to_none=True)
    loss, logs = model(x, step=3)  # generator term: reaches the decoder, not the discriminator
    assert "gan_g" in logs
    loss.backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_tiny_model_overfits_four_patterns(one_torch_thread):
    x = _pattern()
    model = ImageAutoencoder(TINY, seed=0)
    opt = torch.optim.Adam(model.autoencoder_parameters(), lr=1e-3)

    def recon_psnr() -> float:
        with torch.no_grad():
            y = ImageAutoencoder.to_uint8(model.decode(model.encode(x).mode())).double()
        return float((10 * torch.log10(255.0 ** 2 / (y - torch.from_numpy(x)).square().mean((1, 2, 3)))).mean())

    before = recon_psnr()
    torch.manual_seed(0)
    for step in range(200):
        loss, logs = model({"image": x}, step=step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = recon_psnr()
    assert after > 22.0 and after - before > 10.0  # measured: 8.1 -> 27.0 dB
    assert logs["ms_ssim"] > 0.95
