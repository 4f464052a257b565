"""World-model evaluation: baselines, Fréchet distance, perceptual-weights errors, the eval and generate CLIs."""

from __future__ import annotations

import csv
import json
import re
import subprocess

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.cli import main  # noqa: E402
from avworld.eval import worldmodel_eval as we  # noqa: E402
from tests.train.conftest import tok_data  # noqa: E402, F401 - the tiny dataset fixture
from tests.train.worldmodel_fixtures import make_latent_data  # noqa: E402
from tests.train.worldmodel_gen_fixtures import fake_tokenizers, save_tiny_checkpoint  # noqa: E402


def test_reward_baselines_are_train_means_per_delta_and_action():
    pose = np.zeros((4, 3))
    pose[:, 0] = [0.0, 0.25, 0.5, 0.5]  # forward, forward, stay
    base = we.reward_baselines([(np.array([1.0, 2.0, 3.0, 4.0]), pose)], [1, 2])
    assert base["delta"] == {1: pytest.approx(2.0), 2: pytest.approx((3 + 5) / 2)}  # 1,2,3 / (1+2),(2+3)
    assert base["bucket"][1] == {(1, 0, 0): pytest.approx(1.5), (0, 0, 0): pytest.approx(3.0)}
    mean, per = we.reward_baseline_predictions(base, 1, np.array([[0.25, 0, 0], [0, 0, 1.0]]))
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(per, [1.5, 2.0])  # an unseen bucket falls back to the per-Δ mean
    with pytest.raises(we.WorldModelEvalError, match="no reward baseline"):
        we.reward_baselines([(np.ones(2), np.zeros((2, 3)))], [4])


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    assert we.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert we.frechet_distance(a, a + [2.0, 0, 0]) == pytest.approx(4.0, rel=1e-6)
    assert we.fd_features("audio", np.ones((5, 3, 20))).shape == (5, 6)


def test_perceptual_metrics_need_local_weights(tmp_path):
    notes = we.check_perceptual_weights({})
    assert set(notes) == {"lpips", "dreamsim", "fid", "fad"} and all("not computed" in n for n in notes.values())
    with pytest.raises(we.MissingWeightsError, match="LPIPS needs.*local file"):
        we.check_perceptual_weights({"lpips": str(tmp_path / "none.pt")})
    (tmp_path / "w.pt").write_bytes(b"x")
    with pytest.raises(we.PerceptualMetricUnavailableError):
        we.check_perceptual_weights({"fad": str(tmp_path / "w.pt")})
    with pytest.raises(we.MissingWeightsError):  # LPIPS as BACKBONE,LINEAR: both must exist
        we.check_perceptual_weights({"lpips": f"{tmp_path / 'w.pt'},{tmp_path / 'none.pt'}"})
    assert "computed" in we.check_perceptual_weights({"lpips": str(tmp_path / "w.pt")})["lpips"]


def test_eval_with_lpips_weights_adds_an_lpips_column(run, tmp_path, fake_tok, one_torch_thread):
    from avworld.train.worldmodel_apply import evaluate
    from avworld.train.worldmodel_checkpoint import load_worldmodel
    from tests.eval.test_lpips import reference_state

    torch.save(reference_state(), tmp_path / "lpips.pth")
    root, ckpt = run
    res = evaluate(load_worldmodel(ckpt), fake_tokenizers(), root, "lat", deltas=(1,), modes=("fixed",), steps=2,
                   max_items=3, perceptual={"lpips": str(tmp_path / "lpips.pth")})
    table = res["tables"]["fixed"][1]
    assert table["world model"]["lpips"]["n"] == 3 and table["copy-last"]["lpips"]["mean"] >= 0
    assert "lpips" in table["tokenizer round-trip"] and "lpips" not in table["reward: train mean per Δ"]
    assert res["perceptual"]["lpips"].startswith("computed")


@pytest.fixture(scope="module")
def run(tok_data, tmp_path_factory):  # noqa: F811
    root = make_latent_data(tok_data, tmp_path_factory.mktemp("wmeval") / "data")
    ckpt = save_tiny_checkpoint(tmp_path_factory.mktemp("wmckpt") / "ckpt.pt", root)
    return root, ckpt


@pytest.fixture
def fake_tok(monkeypatch):
    import avworld.train.worldmodel_generate as wg

    monkeypatch.setattr(wg, "load_tokenizers", lambda image, audio, device="cpu": fake_tokenizers())


def _links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_eval_cli_writes_tables_with_baselines_json_csv_and_html(run, tmp_path, capsys, fake_tok, one_torch_thread):
    root, ckpt = run
    out = tmp_path / "ev"
    argv = ["worldmodel", "eval", "--checkpoint", str(ckpt), "--data", str(root), "--latents", "lat",
            "--deltas", "1,2", "--max-items", "5", "--steps", "2", "--batch-size", "3", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "copy-last" in text and "reward: train mean per Δ" in text and we.FD_LABEL in text
    res = json.loads((out / "metrics.json").read_text())
    for mode in ("fixed", "rollout"):
        for d in ("1", "2"):
            table = res["tables"][mode][d]
            assert {"world model", "copy-last", "tokenizer round-trip", "reward: train mean per Δ",
                    "reward: train mean per Δ and action"} <= set(table)
            wm = table["world model"]
            assert wm["n"] == 5 and set(we.METRICS) - {"lpips"} <= set(wm) and "lpips" not in wm
            assert wm["psnr"]["ci95"][0] <= wm["psnr"]["mean"] <= wm["psnr"]["ci95"][1]
            assert "reward_mse" in table["reward: train mean per Δ"] and "psnr" in table["copy-last"]
            assert set(res["frechet"][mode][d]) == {"rgb world model", "rgb copy-last", "audio world model",
                                                    "audio copy-last"}
            rows = list(csv.DictReader(open(out / f"metrics_{mode}_d{d}.csv")))
            assert rows[0]["row"] == "world model" and float(rows[0]["psnr_mean"]) == pytest.approx(wm["psnr"]["mean"])
    assert all("not computed" in v for v in res["perceptual"].values())
    assert json.loads(json.dumps(res)) == res  # strict JSON round trip
    html = (out / "index.html").read_text()
    assert "not comparable to FID/FAD" in html and "not computed" in html
    assert all((out / p).exists() for p in _links(html))
    # same seed, same numbers
    assert main([*argv[:-1], str(tmp_path / "ev2")]) == 0
    assert json.loads((tmp_path / "ev2" / "metrics.json").read_text())["tables"] == res["tables"]
    # typed errors: missing perceptual weights, latents of other tokenizers
    assert main([*argv, "--lpips-weights", str(tmp_path / "missing.pt")]) == 2
    assert "MissingWeightsError" in capsys.readouterr().err
    assert main([*argv[:7], "other", *argv[8:]]) == 2
    assert "TokenizerIdentityError" in capsys.readouterr().err


def test_generate_cli_writes_side_by_side_mp4_with_sound_and_page(run, tmp_path, capsys, fake_tok, one_torch_thread):
    import imageio_ffmpeg

    root, ckpt = run
    out = tmp_path / "gen"
    assert main(["worldmodel", "generate", "--checkpoint", str(ckpt), "--data", str(root), "--latents", "lat",
                 "--horizon", "3", "--items", "1", "--steps", "2", "--out", str(out)]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(info["videos"]) == 1
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", info["videos"][0]],
                           capture_output=True, text=True).stderr
    assert re.search(r"Video: h264.*260x128", probe), probe  # 2 x (32 px x 4) + 4 px gap
    assert re.search(r"Audio: aac.*stereo", probe), probe
    html = (out / "index.html").read_text()
    links = _links(html)
    assert links and all((out / p).exists() for p in links)
