"""`avworld separation train passive` and `eval passive` end to end on a tiny on-disk dataset."""

import json
import math

import numpy as np

from avworld.cli import main


def write_dataset(root, n_per_split=6):
    import h5py

    from avworld.data.separation import FIELDS, SEP_DATA_FORMAT, SEP_DATA_VERSION

    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    shards = []
    for split in ("train", "val", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
        rel = f"{split}/{split}-0000-000.h5"
        n = n_per_split
        mono = np.stack([0.05 * np.sin(2 * math.pi * (250 + 60 * i) * t) for i in range(n)]).astype(np.float32)
        tb = (mono[:, None] * np.array([0.8, 0.5])[None, :, None]).astype(np.float32)
        with h5py.File(root / rel, "w") as f:
            f["mixture"] = (tb + 0.02 * rng.standard_normal((n, 2, 16000))).astype(np.float32)
            f["target_binaural"], f["target_mono"], f["target_type"] = tb, mono, np.arange(n) % 2
            for name in FIELDS:
                if name not in f:
                    f[name] = np.zeros(n)
        shards.append({"path": rel, "split": split, "num_examples": n})
    (root / "manifest.json").write_text(json.dumps({"format": SEP_DATA_FORMAT, "version": SEP_DATA_VERSION,
                                                    "complete": True, "shards": shards,
                                                    "source_types": ["a", "b"]}))


def test_train_and_eval_passive(tmp_path, capsys):
    write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    rc = main(["separation", "train", "passive", "--data", str(tmp_path / "data"), "--out", str(run),
               "--no-progress", "--no-tensorboard", "--set", "train.channels=(4,8,8,8,8)",
               "--set", "train.steps=4", "--set", "train.batch_size=2", "--set", "train.checkpoint_every=2",
               "--set", "train.val_examples=2", "--threads", "1"])
    assert rc == 0
    assert json.loads((run / "config.json").read_text())["data"]["train_examples"] == 6
    rc = main(["separation", "eval", "passive", "--checkpoint", str(run), "--data", str(tmp_path / "data"),
               "--split", "test", "--out", str(tmp_path / "ev")])
    assert rc == 0
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["num_examples"] == 6 and set(m["aggregate"]) >= {"si_sdr", "si_sdri", "stft_distance", "loss"}
    assert "si_sdri" in capsys.readouterr().out


def test_bad_override_is_a_typed_error(tmp_path, capsys):
    write_dataset(tmp_path / "data")
    rc = main(["separation", "train", "passive", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "r"),
               "--set", "train.batchsize=2"])
    assert rc != 0
    assert "SeparationConfigError" in capsys.readouterr().err
