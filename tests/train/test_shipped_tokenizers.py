"""The tokenizers shipped in the package: load with one call, keep left and right apart, beat the
same-size baselines on frames of procedural houses they never saw."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.data import AVWDataset  # noqa: E402
from avworld.data.generate import build_dataset  # noqa: E402
from avworld.eval import audio_metrics as am  # noqa: E402
from avworld.eval import image_metrics as im  # noqa: E402
from avworld.eval.tokenizer_baselines import bicubic_roundtrip  # noqa: E402
from avworld.train.tokenizer_checkpoint import SHIPPED, SHIPPED_DIR, load_tokenizer  # noqa: E402
from tests.data.conftest import tiny_config  # noqa: E402


@pytest.fixture(scope="module")
def frames64(tmp_path_factory):
    """Frames and clips of 3 tiny houses (seed 11, not the shipped models' training seed) at 64 px."""
    root = tmp_path_factory.mktemp("ship") / "d"
    cfg = replace(tiny_config(depth=False, image_size=64, max_frames=12), seed=11)
    build_dataset(root, cfg, workers=1)
    data = AVWDataset(root)
    trajs = [data.trajectory(i) for i in range(len(data.trajectories))]
    return np.concatenate([t["rgb"] for t in trajs]), np.concatenate([t["audio"] for t in trajs]).astype(np.float32)


def test_shipped_files_exist_are_small_and_load_by_kind():
    for kind, name in SHIPPED.items():
        path = SHIPPED_DIR / name
        assert path.is_file(), f"{path} missing: the package must ship its {kind} tokenizer"
        assert path.stat().st_size < 8e6
        model = load_tokenizer(kind)
        info = model.checkpoint_info
        assert info["kind"] == kind and info["exported"]["half"] is True
        assert info["data"]["name"] and info["data"]["frames"]["train"] > 10_000  # the data recipe is recorded
        assert info["train_config"]["steps"] == info["step"]
        assert float(model.latent_scale) == pytest.approx(info["latent_scale"]) and info["latent_scale"] != 1.0


def test_shipped_image_autoencoder_beats_bicubic_at_the_same_latent_size(frames64, one_torch_thread):
    rgb, _ = frames64
    ae = load_tokenizer("image")
    with torch.no_grad():
        rec = ae.to_uint8(ae.decode_latents(ae.encode_latents(torch.from_numpy(rgb)))).numpy()
    values = ae.config.latent_channels * ae.config.latent_size ** 2
    ours, bicubic = im.psnr(rec, rgb).mean(), im.psnr(bicubic_roundtrip(rgb, values), rgb).mean()
    assert ours > bicubic + 0.5, (ours, bicubic)
    assert im.ssim(rec, rgb).mean() > im.ssim(bicubic_roundtrip(rgb, values), rgb).mean()


def _ild(x: np.ndarray) -> np.ndarray:
    return 10 * np.log10((x[:, 0] ** 2).sum(-1) / (x[:, 1] ** 2).sum(-1))


def test_shipped_codec_keeps_left_and_right_apart(frames64, one_torch_thread):
    _, audio = frames64
    codec = load_tokenizer("audio")
    ild = _ild(audio)
    left, right = audio[ild > 3.0], audio[ild < -3.0]  # clips of unseen houses with the source to one side
    assert len(left) >= 4 and len(right) >= 4
    for clips, sign in ((left, 1.0), (right, -1.0)):
        x = torch.from_numpy(clips)
        with torch.no_grad():
            dec, swapped = codec.reconstruct(x).numpy(), codec.reconstruct(x.flip(1)).numpy()
        assert np.all(sign * _ild(dec) > 0), _ild(dec)  # every clip stays on its side
        assert sign * _ild(dec).mean() > 0.5 * sign * _ild(clips).mean()
        assert np.all(sign * _ild(swapped) < 0)
        # swapping the input channels swaps the output channels, within the codec's own error
        err = np.abs(dec - clips).mean()
        assert np.abs(swapped[:, ::-1] - dec).mean() < 2 * err
    with torch.no_grad():
        rec = codec.reconstruct(torch.from_numpy(audio)).numpy()
    assert np.nanmean(am.ild_error(rec, audio)) < np.nanmean(np.abs(am.ild(audio)))  # better than no ILD at all
