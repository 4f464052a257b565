"""Tokenizer evaluation tables and the self-contained HTML report."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from avworld.eval.tokenizer_baselines import bicubic_roundtrip, linear_resample_roundtrip, mulaw_roundtrip
from avworld.eval.tokenizer_report import (
    CAP_DB,
    AudioSection,
    ImageSection,
    ReportError,
    audio_metrics_table,
    format_metrics_table,
    image_metrics_table,
    ms_ssim_scales,
    summarize,
    write_html_report,
)

SR = 16_000


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    base = 120 + 60 * np.sin(xx[None, :, :, None] / rng.uniform(4, 12, (5, 1, 1, 1)))
    return np.clip(base + rng.normal(0, 10, (5, 64, 64, 3)), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def clips():
    rng = np.random.default_rng(1)
    n = 2400
    src = rng.standard_normal((5, n)) * 0.05
    left, right = src, 0.5 * np.roll(src, 8, axis=-1)  # right ear 6 dB quieter, 0.5 ms later
    return np.stack([left, right], axis=1).astype(np.float32)


def test_summarize_mean_ci_and_seed():
    v = np.arange(100, dtype=float)
    s = summarize(v, seed=3)
    assert s["mean"] == pytest.approx(49.5) and s["n"] == 100
    assert s["ci95"][0] < 49.5 < s["ci95"][1]
    assert s == summarize(v, seed=3)  # seeded
    assert summarize([1.0, np.nan, 3.0])["n"] == 2  # undefined items are left out and counted
    empty = summarize([np.nan])
    assert empty["n"] == 0 and np.isnan(empty["mean"])
    assert summarize([2.0]) == {"mean": 2.0, "ci95": [2.0, 2.0], "n": 1}


def test_ms_ssim_scales_by_size():
    assert ms_ssim_scales(64, 64) == 3 and ms_ssim_scales(128, 128) == 3
    assert ms_ssim_scales(176, 200) == 5 and ms_ssim_scales(32, 32) == 0


def test_image_table_ideal_for_identical_and_ordered_for_degraded(frames):
    t = image_metrics_table(frames, {"copy": frames.copy(), "bicubic": bicubic_roundtrip(frames, 256),
                                     "finer": bicubic_roundtrip(frames, 4 * 16 * 16)})
    assert t["copy"]["psnr"]["mean"] == CAP_DB and t["copy"]["ssim"]["mean"] == pytest.approx(1.0)
    assert t["copy"]["ms_ssim"]["mean"] == pytest.approx(1.0) and t["copy"]["ms_ssim_scales"] == 3
    for m in ("psnr", "ssim", "ms_ssim"):
        assert t["copy"][m]["mean"] > t["finer"][m]["mean"] > t["bicubic"][m]["mean"]
    assert t["bicubic"]["n"] == 5 and t["bicubic"]["psnr"]["n"] == 5
    text = format_metrics_table(t)
    assert "bicubic" in text and "psnr (dB)" in text and "ms_ssim" in text


def test_image_table_errors(frames):
    with pytest.raises(ReportError, match="uint8"):
        image_metrics_table(frames, {"bad": frames.astype(np.float32)})
    with pytest.raises(ReportError, match="shape|uint8"):
        image_metrics_table(frames, {"bad": frames[:3]})
    with pytest.raises(ReportError, match="dict"):
        image_metrics_table(frames, [frames])


def test_audio_table_ideal_for_identical_and_ordered_for_degraded(clips):
    t = audio_metrics_table(clips, {"copy": clips.copy(), "mulaw": mulaw_roundtrip(clips, 2560),
                                    "linear": linear_resample_roundtrip(clips, 1280)})
    c = t["copy"]
    assert c["lsd"]["mean"] == 0 and c["mr_stft"]["mean"] == 0 and c["si_sdr"]["mean"] == CAP_DB
    assert c["spectral_ssim"]["mean"] == pytest.approx(1.0)
    for m in ("ild_error", "itd_error", "ipd_error"):
        assert c[m]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert set(c["ild_error_bands"]) == {"125", "250", "500", "1000", "2000", "4000", "8000"}
    for m in ("lsd", "mr_stft"):
        assert 0 < t["mulaw"][m]["mean"] < t["linear"][m]["mean"]
    for m in ("spectral_ssim", "si_sdr"):
        assert c[m]["mean"] > t["mulaw"][m]["mean"] > t["linear"][m]["mean"]
    assert c["n"] == c["n_total"] == 5


def test_audio_mask_selects_and_counts(clips):
    mask = np.array([True, False, True, False, False])
    noisy = clips + np.random.default_rng(2).normal(0, 0.01, clips.shape).astype(np.float32)
    t = audio_metrics_table(clips, {"noisy": noisy}, mask=mask)
    assert t["noisy"]["n"] == 2 and t["noisy"]["n_total"] == 5 and t["noisy"]["lsd"]["n"] == 2
    sub = audio_metrics_table(clips[mask], {"noisy": noisy[mask]})
    assert t["noisy"]["lsd"]["mean"] == pytest.approx(sub["noisy"]["lsd"]["mean"])
    with pytest.raises(ReportError, match="no clip"):
        audio_metrics_table(clips, {"noisy": noisy}, mask=np.zeros(5, bool))
    with pytest.raises(ReportError, match="boolean"):
        audio_metrics_table(clips, {"noisy": noisy}, mask=[1, 0, 1, 0, 0])
    with pytest.raises(ReportError, match="clip length"):
        audio_metrics_table(clips, {"short": clips[..., :2000]})


def _write(out, frames, clips, notes=("a note",)):
    recs = {"linear": linear_resample_roundtrip(clips, 1280), "mu-law 8 bit": mulaw_roundtrip(clips, 2560)}
    it = image_metrics_table(frames, {"bicubic 9x9": bicubic_roundtrip(frames, 256)})
    at = audio_metrics_table(clips, recs)
    return write_html_report(
        out, "tokenizer eval <test>",
        image_section=ImageSection(frames[:3], {"bicubic 9x9": bicubic_roundtrip(frames[:3], 256)}),
        audio_section=AudioSection(clips[:2], {k: v[:2] for k, v in recs.items()}, sample_rate=SR,
                                   captions=["clip A", "clip B"]),
        image_table=it, audio_table=at, notes=notes,
    ), it, at


def test_html_report_is_self_contained(tmp_path, frames, clips):
    index, it, at = _write(tmp_path / "rep", frames, clips)
    assert index == tmp_path / "rep" / "index.html"
    doc = index.read_text()
    assert "tokenizer eval &lt;test&gt;" in doc and "LPIPS and FAD are not computed" in doc
    refs = re.findall(r'(?:src|href)="([^"]+)"', doc)
    assert refs and not [r for r in refs if "://" in r or r.startswith("/")]
    for r in refs:
        assert (index.parent / r).is_file(), r
    assert doc.count("<audio ") == 2 * 3  # 2 clips x (original + 2 reconstructions)
    assert doc.count("_spec.png") == 2 * 3
    assert len([r for r in refs if r.startswith("images/")]) == 3 * 2
    from PIL import Image

    shown = Image.open(index.parent / "images" / "ex0_original.png")
    assert shown.size == (128, 128)  # 64 px frames upscaled 2x, nearest neighbour
    assert np.array_equal(np.asarray(shown)[::2, ::2], frames[0])
    import soundfile as sf

    wav, sr = sf.read(index.parent / "audio" / "clip0_original.wav")
    assert sr == SR and wav.shape == (2400, 2)
    assert np.abs(wav).max() == pytest.approx(10 ** (-1 / 20), abs=1e-3)  # the original's peak at -1 dBFS
    data = json.loads((index.parent / "metrics.json").read_text())
    assert data["image"] == json.loads(json.dumps(it)) and data["notes"] == ["a note"]
    assert data["audio"]["linear"]["lsd"]["mean"] == pytest.approx(at["linear"]["lsd"]["mean"])


def test_html_report_is_deterministic(tmp_path, frames, clips):
    def digest(root: Path) -> dict:
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    _write(tmp_path / "a", frames, clips)
    _write(tmp_path / "b", frames, clips)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_html_report_with_tables_only_and_nan_cells(tmp_path, clips):
    silent = np.zeros_like(clips)
    t = audio_metrics_table(silent, {"copy": silent.copy()})  # SI-SDR, ITD, IPD undefined
    index = write_html_report(tmp_path / "t", "silent", audio_table=t)
    data = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert data["audio"]["copy"]["si_sdr"]["mean"] is None and data["audio"]["copy"]["si_sdr"]["n"] == 0
    assert "<audio" not in index.read_text()


def test_html_report_errors(tmp_path, frames):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="not a directory"):
        write_html_report(tmp_path / "file", "x")
    with pytest.raises(ReportError, match="same items"):
        write_html_report(tmp_path / "r", "x", image_section=ImageSection(frames, {"b": frames[:2]}))


def test_modules_import_without_torch_or_matplotlib():
    import subprocess
    import sys

    code = ("import sys, avworld.eval.tokenizer_report, avworld.eval.tokenizer_baselines; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_tables_are_computed_in_chunks_with_the_same_result(frames, clips):
    from avworld.eval import audio_metrics as am
    from avworld.eval import image_metrics as im
    from avworld.eval.tokenizer_report import chunked

    rec = bicubic_roundtrip(frames, 256)
    np.testing.assert_array_equal(chunked(im.ssim, rec, frames, chunk=2), im.ssim(rec, frames))
    lin = linear_resample_roundtrip(clips, 1280)
    np.testing.assert_array_equal(chunked(am.ild_error, lin, clips, chunk=2), am.ild_error(lin, clips))
    with pytest.raises(am.AudioMetricError, match="NaN"):
        audio_metrics_table(clips, {"nan": np.full_like(clips, np.nan)})
