"""`avworld tokenizer encode|eval` with tiny trained tokenizers; image training end to end; line of sight."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.data import AVWDataset  # noqa: E402
from avworld.data.latent_loaders import LatentCDiTDataset  # noqa: E402
from avworld.data.loaders import CDiTDataset  # noqa: E402
from avworld.data.visibility import line_of_sight  # noqa: E402
from avworld.train.tokenizer_checkpoint import load_tokenizer  # noqa: E402

COMMON = ["--no-progress", "--no-tensorboard", "--threads", "1", "--set", "train.batch_size=4",
          "--set", "train.val_frames=8", "--set", "train.scale_frames=32", "--set", "train.warmup_steps=1",
          "--set", "train.steps=2"]


@pytest.fixture(scope="module")
def tokenizers(tok_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("toks")
    torch.set_num_threads(1)
    assert main(["tokenizer", "train", "image", "--data", str(tok_data), "--out", str(out / "img"), *COMMON,
                 "--set", "model.image_size=32", "--set", "model.base_width=8", "--set", "model.width_mult=(1,1,2,2)",
                 "--set", "model.norm_groups=4"]) == 0
    assert main(["tokenizer", "train", "audio", "--data", str(tok_data), "--out", str(out / "aud"), *COMMON,
                 "--set", "model.base_width=4", "--set", "model.latent_dim=8",
                 "--set", "model.loss.fft_sizes=(256,64)"]) == 0
    return out / "img", out / "aud"


def test_trained_image_autoencoder_stores_its_latent_scale(tokenizers, tok_data):
    ae = load_tokenizer(tokenizers[0], kind="image")
    scale = ae.checkpoint_info["latent_scale"]
    assert scale > 0 and float(ae.latent_scale) == pytest.approx(scale)
    frames = AVWDataset(tok_data, "train").trajectory(0)["rgb"][:8]
    z = ae.encode_latents(torch.from_numpy(frames))
    assert z.shape == (8, 4, 4, 4)
    codec = load_tokenizer(tokenizers[1], kind="audio")
    assert codec.checkpoint_info["latent_scale"] > 0 and codec.config.input_gain > 1


def test_encode_writes_the_latents_the_loader_serves_and_resumes(tokenizers, tok_data, capsys):
    img, aud = tokenizers
    args = ["tokenizer", "encode", "--data", str(tok_data), "--image", str(img), "--audio", str(aud), "--name", "t",
            "--no-progress", "--threads", "1", "--batch-size", "5"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["frames_encoded"] > 0 and first["skipped"] == 0
    assert main(args) == 0  # nothing left to do: every file is complete
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["frames_encoded"] == 0 and again["skipped"] == first["encoded"]
    lat, raw = LatentCDiTDataset(tok_data, "t", "val"), CDiTDataset(tok_data, "val")
    ae, codec = load_tokenizer(img), load_tokenizer(aud)
    for idx in (0, len(raw) - 1):
        a, b = lat[idx], raw[idx]
        assert torch.equal(a["goal_action"], b["goal_action"]) and torch.equal(a["goal_offset"], b["goal_offset"])
        with torch.no_grad():
            want_rgb = ae.encode_latents(b["context_rgb"].float() / 127.5 - 1)
            want_audio = codec.encode_latents(b["goal_audio"].float())
        assert torch.allclose(a["context_rgb_latent"], want_rgb, atol=2e-3 * float(want_rgb.abs().max()) + 1e-3)
        assert torch.allclose(a["goal_audio_latent"], want_audio, atol=2e-3 * float(want_audio.abs().max()) + 1e-3)


def test_encode_refuses_the_wrong_kind_and_resumes_after_ctrl_c(tokenizers, tok_data, capsys, monkeypatch):
    import os
    import signal

    import h5py

    from avworld.train import tokenizer_apply

    img, aud = tokenizers
    assert main(["tokenizer", "encode", "--data", str(tok_data), "--image", str(aud), "--no-progress"]) == 2
    assert "TokenizerKindError" in capsys.readouterr().err
    real = tokenizer_apply.image_encoder

    def ctrl_c_on_second_batch(model):
        enc, calls = real(model), []

        def encode(frames):
            calls.append(len(frames))
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, taken by the command's handler
            return enc(frames)
        return encode
    args = ["tokenizer", "encode", "--data", str(tok_data), "--image", str(img), "--name", "u", "--no-progress",
            "--batch-size", "5", "--threads", "1"]
    monkeypatch.setattr(tokenizer_apply, "image_encoder", ctrl_c_on_second_batch)
    assert main(args) == 130
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted; rerun the same command to resume")
    assert "Traceback" not in captured.err
    monkeypatch.setattr(tokenizer_apply, "image_encoder", real)
    assert main(args) == 0
    assert main([a if a != "u" else "w" for a in args]) == 0  # the same encode, never interrupted
    files = sorted((tok_data / "latents" / "u").glob("*.h5"))
    assert files and len(files) == len(list((tok_data / "latents" / "w").glob("*.h5")))
    for f in files:
        with h5py.File(f) as a, h5py.File(tok_data / "latents" / "w" / f.name) as b:
            assert np.array_equal(a["rgb"][:], b["rgb"][:])


def test_eval_reports_tokenizers_and_baselines(tokenizers, tok_data, tmp_path, capsys):
    img, aud = tokenizers
    out = tmp_path / "report"
    assert main(["tokenizer", "eval", "--data", str(tok_data), "--image", str(img), "--audio", str(aud),
                 "--out", str(out), "--threads", "1", "--items", "2"]) == 0
    text = capsys.readouterr().out
    assert "bicubic (64 values)" in text and "mu-law 8 bit" in text and "line of sight" in text
    res = json.loads((out / "results.json").read_text())["results"]
    assert set(res["image"]["table"]) == {"tokenizer", "copy", "bicubic (64 values)"}
    assert res["image"]["table"]["copy"]["psnr"]["mean"] == 100.0
    assert res["image"]["table"]["tokenizer"]["psnr"]["mean"] < 100.0
    assert 0.0 <= res["audio"]["line_of_sight_fraction"] <= 1.0
    assert (out / "index.html").is_file() and (out / "metrics.json").is_file()


def test_line_of_sight_matches_a_direct_ray_test(tok_data):
    from avworld.geometry.raycast import RayCaster
    from avworld.geometry.spec import load_scene_spec

    data = AVWDataset(tok_data, "train")
    los = line_of_sight(data)
    assert los.shape == (data.num_frames,) and los.dtype == bool
    ear_height = data.config.trajectory.sim_config().camera.height_m
    start = 0
    for i, traj in enumerate(data.trajectories):
        rec = data.shards[traj.shard]
        scene = load_scene_spec(rec["scene"])
        floor = float(scene.vertices[:, 2].min())  # procedural houses: one flat floor at the lowest vertex
        src = np.asarray(rec["source_position"], float)
        pose = data.small(i)["pose"]
        ears = np.column_stack([pose[:, :2], np.full(len(pose), floor + ear_height)])
        seg = ears - src
        length = np.linalg.norm(seg, axis=1)
        hits = RayCaster(scene).cast(np.repeat(src[None], len(pose), 0), seg / length[:, None])
        expect = np.asarray(hits.distance) >= length - 1e-3  # first surface beyond the ears: nothing between
        assert np.array_equal(los[start:start + traj.length], expect), i
        start += traj.length
