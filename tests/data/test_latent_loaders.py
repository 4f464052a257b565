"""LatentCDiTDataset serves CDiTDataset's samples with latents in place of frames."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.data.latent_loaders import LatentCDiTDataset  # noqa: E402
from avworld.data.latents import encode_dataset  # noqa: E402
from avworld.data.loaders import CDiTDataset, TrajectoryBlockSampler  # noqa: E402

from .latent_fakes import IDENTITY, fake_audio_encoder, fake_image_encoder  # noqa: E402

SAME = ("traj", "t", "goal_offset", "goal_action", "goal_reward", "context_pose")


@pytest.fixture(scope="module")
def root(tiny_dataset, tmp_path_factory):
    dst = tmp_path_factory.mktemp("latent-loaders") / "data"
    shutil.copytree(tiny_dataset[0], dst)
    encode_dataset(dst, "lat", fake_image_encoder, fake_audio_encoder, IDENTITY, batch_size=5)
    encode_dataset(dst, "img", fake_image_encoder, None, {"image": IDENTITY["image"]}, batch_size=5)
    return dst


def _encoded(s):
    """What the latents of a CDiTDataset sample's frames must be: the encoders through float16."""
    f16 = lambda x: torch.from_numpy(x.astype(np.float16).astype(np.float32))  # noqa: E731
    rgb = lambda x: fake_image_encoder(x.permute(0, 2, 3, 1).numpy())  # noqa: E731
    return {"context_rgb_latent": f16(rgb(s["context_rgb"])), "goal_rgb_latent": f16(rgb(s["goal_rgb"])),
            "context_audio_latent": f16(fake_audio_encoder(s["context_audio"].numpy())),
            "goal_audio_latent": f16(fake_audio_encoder(s["goal_audio"].numpy()))}


@pytest.mark.parametrize("cache", [0, 4])
def test_same_samples_as_cdit_with_the_encoders_latents(root, cache):
    kw = {"split": "train", "context": 3, "window": 5, "num_goals": 3, "seed": 7}
    ref = CDiTDataset(root, **kw)
    lat = LatentCDiTDataset(root, "lat", cache_trajectories=cache, **kw)
    assert len(lat) == len(ref)
    for epoch in (0, 1):
        ref.set_epoch(epoch)
        lat.set_epoch(epoch)
        for idx in range(0, len(ref), 2):
            a, b = ref[idx], lat[idx]
            assert set(b) == set(SAME) | {"context_rgb_latent", "goal_rgb_latent", "context_audio_latent",
                                          "goal_audio_latent"}
            for key in SAME:
                assert torch.equal(a[key], b[key]), key
            for key, want in _encoded(a).items():
                assert b[key].dtype == torch.float32 and torch.equal(b[key], want), key
    s = lat[0]
    assert s["context_rgb_latent"].shape == (3, 4, 6, 6) and s["goal_audio_latent"].shape == (3, 3, 20)


def test_image_only_latents_have_no_audio_keys(root):
    s = LatentCDiTDataset(root, "img", split="val")[0]
    assert "context_rgb_latent" in s and not any("audio" in k for k in s)
    assert s["goal_rgb_latent"].shape == (4, 4, 6, 6)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_with_the_block_sampler(root, workers):
    ds = LatentCDiTDataset(root, "lat", split="test", context=2, window=4, num_goals=2, cache_trajectories=4)
    ref = pickle.loads(pickle.dumps(ds))  # picklable, without open files
    ds[0], ds[len(ds) - 1]  # files open in this process: forked workers must open their own
    assert ds.data._lat_files
    sampler = TrajectoryBlockSampler(ds, block=2, streams=max(1, workers), batch_size=4, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=sampler, num_workers=workers)
    seen = []
    for batch in loader:
        for j in range(len(batch["traj"])):
            seen.append((int(batch["traj"][j]), int(batch["t"][j])))
            want = ref[ref._cum[seen[-1][0]] + seen[-1][1] - 1]  # context=2: item idx of (traj, t)
            assert torch.equal(batch["goal_offset"][j], want["goal_offset"])
            assert torch.equal(batch["goal_rgb_latent"][j], want["goal_rgb_latent"])
            assert torch.equal(batch["context_audio_latent"][j], want["context_audio_latent"])
    assert sorted(seen) == sorted(tuple(ds.locate(i)) for i in range(len(ds)))
