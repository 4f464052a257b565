"""The HTML report of `avworld separation eval active --out`: files, links, audio that is what was scored."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avworld.eval.separation_eval import evaluate, separate_episode
from avworld.eval.separation_metrics import waveforms
from avworld.eval.separation_report import write_separation_report
from avworld.models.separation import NoMemory, PassiveConfig, PassiveSeparator, phases
from avworld.tasks.separation_baselines import RandomMotion, rollout
from tests.train.separation_fakes import FakeSeparationEnvWithInfo


def _passive():
    torch.manual_seed(0)
    return PassiveSeparator(PassiveConfig(channels=(4, 8, 8, 8, 8), num_types=3)).eval()


def links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def check_links(out: Path) -> str:
    page = (out / "index.html").read_text()
    for rel in links(page):
        assert not rel.startswith(("/", "http")), rel  # relative links only
        assert (out / rel).is_file(), rel
    return page


def test_report_audio_is_what_the_metrics_scored(tmp_path):
    env = FakeSeparationEnvWithInfo(num_steps=4)
    passive, mem = _passive(), NoMemory()
    result = evaluate(env, RandomMotion(seed=1), passive, mem, 3, seed=5, keep=2)
    examples = result.pop("examples")
    assert len(examples) == 2
    result.update(agent="random", reward=None, memory="none", num_episodes=3)
    write_separation_report(tmp_path, result, examples)
    page = check_links(tmp_path)
    wavs = [r for r in links(page) if r.endswith(".wav")]
    pngs = [r for r in links(page) if r.endswith(".png")]
    assert len(wavs) == 6 and len(pngs) == 6  # mixture, estimate, target per episode; no map without a world
    assert "SI-SDR of the final estimates" in page and f"{result['aggregate']['si_sdr']['mean']:.3f}" in page
    index = json.loads((tmp_path / "report" / "episodes.json").read_text())
    assert [e["episode_id"] for e in index] == ["fake", "fake"]
    assert page.count("Episode fake (scene fake)") == 2
    pol = RandomMotion(seed=1)  # an independent replay: same seeds, same mixtures, same final estimates
    replay = [rollout(env, pol, seed=5 + k) for k in range(2)]
    for k, (entry, ep) in enumerate(zip(index, replay)):
        m = separate_episode(passive, mem, ep["audio"], ep["target_mono"], ep["target_type"])
        tgt = torch.as_tensor(ep["target_mono"]).unsqueeze(1)
        est = waveforms(m["estimates"], phases(tgt)).reshape(-1)  # the waveform SI-SDR was computed on
        gain, n = entry["gain"], 4 * 16000
        clips = {}
        for name in ("mixture", "estimate", "target"):
            data, sr = sf.read(tmp_path / entry["files"][name], dtype="float64", always_2d=True)
            assert sr == 16000 and data.shape == (n, 2 if name == "mixture" else 1)
            clips[name] = data.T / gain
        tol = 1.0 / 32768 / gain
        assert np.abs(clips["estimate"][0] - est).max() <= tol
        assert np.abs(clips["target"][0] - ep["target_mono"].reshape(-1)).max() <= tol
        assert np.abs(clips["mixture"] - np.concatenate(list(ep["audio"]), axis=-1)).max() <= tol
        assert max(np.abs(c).max() for c in clips.values()) * gain == pytest.approx(10 ** (-1 / 20), abs=1e-4)
        assert m["si_sdr"].mean() == pytest.approx(result["per_episode"][k]["si_sdr"])


def test_eval_active_writes_the_report_with_maps(tmp_path, capsys):
    from avworld.cli import main
    from tests.train.test_separation_cli import write_dataset

    write_dataset(tmp_path / "data", 4)
    rc = main(["separation", "train", "passive", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "p"),
               "--no-progress", "--no-tensorboard", "--set", "train.channels=(4,8,8,8,8)", "--set", "train.steps=1",
               "--set", "train.batch_size=2", "--set", "train.val_examples=0", "--threads", "1"])
    assert rc == 0
    eps = tmp_path / "eps.jsonl"
    assert main(["separation", "episodes", "make", "--split", "test", "--scenes", "1", "--per-scene", "3",
                 "--out", str(eps)]) == 0
    out = tmp_path / "ev"
    rc = main(["separation", "eval", "active", "--passive", str(tmp_path / "p"), "--episodes", str(eps),
               "--agent", "rotate", "--num", "3", "--report-episodes", "2", "--out", str(out), "--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "motion reward: none" in text and "report:" in text
    page = check_links(out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_episodes"] == 3 and metrics["reward"] is None and "examples" not in metrics
    shown = metrics["per_episode"][:2]
    for rec in shown:
        assert f"Episode {rec['episode_id']} (scene {rec['scene']})" in page
    assert metrics["per_episode"][2]["episode_id"] not in page
    assert sum(r.endswith("_map.png") for r in links(page)) == 2
    index = json.loads((out / "report" / "episodes.json").read_text())
    assert all(e["samples"] == 20 * 16000 for e in index)
    data, _ = sf.read(out / index[0]["files"]["mixture"])
    assert data.shape == (20 * 16000, 2)
