"""The RWAVS-style folder loader on a small synthetic folder in the public dataset's layout."""

from __future__ import annotations

import json

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from avworld.data.synthesis import load_split  # noqa: E402
from avworld.data.synthesis_rwavs import RWAVSFolderError, convert, load_video  # noqa: E402
from avworld.data.synthesis_scenes import LengthMismatchError  # noqa: E402

SR = 16000


def _c2w(x, y, yaw):
    m = np.eye(4)
    m[:3, 3] = (x, y, 1.2)
    m[0, 2], m[1, 2] = np.cos(yaw), np.sin(yaw)  # the third column: the direction AV-NeRF reads as orientation
    return m.reshape(-1).tolist()


def make_video(root, name, seconds=6, sim=True, rate=SR, seed=0):
    rng = np.random.default_rng(seed)
    d = root / name
    (d / "frames").mkdir(parents=True)
    n = seconds * rate
    src = rng.uniform(-0.5, 0.5, n)
    # a recognisable recording: left = source, right = - source / 2
    sf.write(d / "source_syn_re.wav", src, rate, subtype="FLOAT")
    sf.write(d / "binaural_syn_re.wav", np.stack([src, -0.5 * src], 1), rate, subtype="FLOAT")
    if sim:
        sf.write(d / "binaural_sim.wav", np.stack([0.9 * src, -0.4 * src], 1), rate, subtype="FLOAT")
    for split, secs in (("train", (1, 2, 3)), ("val", (4, 6))):
        path = [{"camera_to_world": _c2w(s, -s, 0.3 * s), "file_path": f"frames/{s:05d}.png"} for s in secs]
        (d / f"transforms_scale_{split}.json").write_text(json.dumps({"camera_path": path}))
    return src


@pytest.fixture
def rwavs(tmp_path):
    root = tmp_path / "RWAVS"
    root.mkdir()
    srcs = {v: make_video(root, v, seed=i) for i, v in enumerate(("1", "2", "3"))}
    (root / "position.json").write_text(json.dumps({v: {"source_position": [0.1 * i, 0.2, -0.4]}
                                                    for i, v in enumerate(srcs)}))
    return root, srcs


def test_clips_poses_and_source_follow_the_layout(rwavs):
    root, srcs = rwavs
    v = load_video(root, "2", "train", sample_rate_hz=SR, clip_s=1.0)
    assert v["x_tx"].shape == (3, SR) and v["x_rx"].shape == (3, 2, SR)
    # key frame N.png = second N: its clip is [N - 0.5, N + 0.5) s
    for k, sec in enumerate((1, 2, 3)):
        seg = srcs["2"][int((sec - 0.5) * SR): int((sec + 0.5) * SR)]
        assert np.allclose(v["x_tx"][k], seg, atol=1e-6)
        assert np.allclose(v["x_rx"][k, 1], -0.5 * seg, atol=1e-6)
        assert np.allclose(v["x_sim"][k, 0], 0.9 * seg, atol=1e-6)
    assert np.allclose(v["poses"][:, :3], [[1, -1, 1.2], [2, -2, 1.2], [3, -3, 1.2]])
    assert np.allclose(v["poses"][:, 3], [0.3, 0.6, 0.9])
    assert np.allclose(v["source"], [0.1, 0.2, -0.4])
    val = load_video(root, "2", "val", sample_rate_hz=SR, clip_s=1.0)
    assert list(val["times"]) == [4]  # second 6 has no whole clip in a 6 s recording


def test_resampling_and_missing_files(rwavs, tmp_path):
    root, _ = rwavs
    v = load_video(root, "1", "train", sample_rate_hz=8000, clip_s=0.5)
    assert v["x_tx"].shape == (3, 4000)
    (root / "3" / "binaural_sim.wav").unlink()
    with pytest.raises(RWAVSFolderError, match="binaural_sim.wav"):
        load_video(root, "3", "train", sample_rate_hz=SR)
    z = load_video(root, "3", "train", sample_rate_hz=SR, allow_missing_sim=True)
    assert not z["x_sim"].any()
    with pytest.raises(RWAVSFolderError, match="no such video"):
        load_video(root, "9", "train", sample_rate_hz=SR)
    sf.write(root / "1" / "binaural_sim.wav", np.zeros((SR, 2)), SR)
    with pytest.raises(LengthMismatchError):
        load_video(root, "1", "train", sample_rate_hz=SR)


def test_convert_gives_the_seeds_split(rwavs, tmp_path):
    root, _ = rwavs
    out = tmp_path / "converted"
    convert(root, {"office": ["1", "2", "3"]}, out, sample_rate_hz=SR, clip_s=0.5)
    train, test = load_split(out, "train"), load_split(out, "test")
    # 3 train + 1 val key frame per video (second 6 has no whole clip in a 6 s recording)
    assert len(train["x_tx"]) == 4 and len(test["x_tx"]) == 8
    assert set(test["placement"]) == {1, 2}
    assert train["sample_rate_hz"] == SR
    with pytest.raises(RWAVSFolderError, match="at least 2 videos"):
        convert(root, {"office": ["1"]}, tmp_path / "x", sample_rate_hz=SR)
