"""f^P pretraining: loss falls, resume is exact, the frozen model loads; static data reading."""

import math

import numpy as np
import pytest
import torch

from avworld.train.separation_config import SeparationConfigError, resolve_passive
from avworld.train.separation_data import ArrayData
from avworld.train.separation_passive import evaluate_passive, load_passive, train_passive


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    mono = np.stack([0.05 * np.sin(2 * math.pi * (200 + 97 * (i % 5)) * t) for i in range(n)]).astype(np.float32)
    tb = (mono[:, None] * np.array([0.8, 0.5])[None, :, None]).astype(np.float32)
    mix = (tb + 0.02 * rng.standard_normal((n, 2, 16000))).astype(np.float32)
    return ArrayData({"mixture": mix, "target_binaural": tb, "target_mono": mono,
                      "target_type": np.arange(n) % 3}, num_types=3)


def _cfg(**kw):
    base = ["train.channels=(4,8,8,8,8)", "train.batch_size=4", "train.lr=3e-3", "train.checkpoint_every=3",
            "train.log_every=1", "train.val_examples=4"]
    return resolve_passive("cpu", base + [f"train.{k}={v}" for k, v in kw.items()])


def test_presets_and_overrides():
    assert resolve_passive("gpu").channels == (64, 128, 256, 512, 512)
    assert resolve_passive("cpu").channels == (32, 64, 128, 256, 256)
    with pytest.raises(SeparationConfigError, match="did you mean 'steps'"):
        resolve_passive("cpu", ["train.stpes=3"])
    with pytest.raises(SeparationConfigError, match="preset"):
        resolve_passive("tpu")


def test_resume_is_exact(tmp_path):
    data = _data()
    full = train_passive(_cfg(steps=6), data, data, tmp_path / "a", progress=False, tensorboard=False)
    assert full["step"] == 6 and full["val"]["val/si_sdri"] == full["val"]["val/si_sdri"]
    train_passive(_cfg(steps=3), data, data, tmp_path / "b", progress=False, tensorboard=False)
    import json

    with pytest.raises(SeparationConfigError, match="another config"):
        train_passive(_cfg(steps=6, lr=1e-3), data, data, tmp_path / "b", resume=True, progress=False,
                      tensorboard=False)
    resumed = train_passive(_cfg(steps=6), data, data, tmp_path / "b", resume=True, progress=False,
                            tensorboard=False)
    assert resumed["step"] == 6
    a, b = load_passive(tmp_path / "a"), load_passive(tmp_path / "b")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert all(not p.requires_grad for p in a.parameters()) and not a.training
    assert json.loads((tmp_path / "a" / "config.json").read_text())["phase"] == "passive"


def test_refuses_to_overwrite_a_run(tmp_path):
    data = _data()
    train_passive(_cfg(steps=3), data, None, tmp_path, progress=False, tensorboard=False)
    with pytest.raises(SeparationConfigError, match="--resume"):
        train_passive(_cfg(steps=3), data, None, tmp_path, progress=False, tensorboard=False)


def test_training_lowers_the_loss_and_raises_si_sdr(tmp_path):
    data = _data()
    train_passive(_cfg(steps=60, lr=1e-2, checkpoint_every=60), data, None, tmp_path, progress=False,
                  tensorboard=False)
    trained = load_passive(tmp_path)
    torch.manual_seed(0)
    from avworld.models.separation import PassiveConfig, PassiveSeparator

    fresh = PassiveSeparator(PassiveConfig(channels=(4, 8, 8, 8, 8), num_types=3))
    before, after = evaluate_passive(fresh, data), evaluate_passive(trained, data)
    assert after["loss"].mean() < 0.5 * before["loss"].mean()
    assert after["si_sdr"].mean() > before["si_sdr"].mean()
    # the mixture's SI-SDR is the same for both (it does not depend on the model)
    assert np.allclose(after["si_sdr_mixture"], before["si_sdr_mixture"])


def test_static_data_reader_returns_batches_in_request_order(tmp_path):
    import json

    import h5py

    from avworld.data.separation import FIELDS as ALL_FIELDS
    from avworld.data.separation import SEP_DATA_FORMAT, SEP_DATA_VERSION
    from avworld.train.separation_data import StaticSeparationData

    shards = []
    for s, n in enumerate((3, 4)):
        rel = f"train/train-{s:04d}-000.h5"
        (tmp_path / "train").mkdir(exist_ok=True)
        with h5py.File(tmp_path / rel, "w") as f:
            base = 10 * s
            f["mixture"] = np.full((n, 2, 16000), 0, np.float32) + (base + np.arange(n))[:, None, None]
            f["target_binaural"] = np.zeros((n, 2, 16000), np.float32)
            f["target_mono"] = np.zeros((n, 16000), np.float32)
            f["target_type"] = base + np.arange(n)
            for name in ALL_FIELDS:  # the reader reads every field of an example
                if name not in f:
                    f[name] = np.zeros(n)
        shards.append({"path": rel, "split": "train", "num_examples": n})
    (tmp_path / "manifest.json").write_text(json.dumps({"format": SEP_DATA_FORMAT, "version": SEP_DATA_VERSION,
                                                        "complete": True, "shards": shards,
                                                        "source_types": ["a", "b"]}))
    d = StaticSeparationData(tmp_path, "train")
    assert len(d) == 7 and d.num_types == 2
    got = d.get(np.array([5, 0, 3, 5, 2]))
    assert got["target_type"].tolist() == [12, 0, 10, 12, 2]
    assert got["mixture"][:, 0, 0].tolist() == [12, 0, 10, 12, 2]


def test_spectra_cache_matches_the_direct_computation():
    from avworld.train.separation_data import SpectraCache, spectra

    data = _data(6)
    cache = SpectraCache(data)
    idx = np.array([4, 1, 4, 0])
    first, again, direct = cache.get(idx), cache.get(idx), spectra(data.get(idx))
    assert int(cache.done.sum()) == 3
    for k in ("mixture", "target_binaural", "target_mono"):
        assert torch.equal(first[k], again[k])
        assert torch.allclose(first[k], direct[k], rtol=1e-3, atol=1e-4)
    assert torch.equal(first["target_type"], direct["target_type"])
