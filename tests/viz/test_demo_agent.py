"""Which learned agent `avworld demo` shows: the shipped checkpoints travel with the package."""

from __future__ import annotations

import html
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest

import avworld
from avworld.viz import demo_agent
from avworld.viz.demo_agent import (
    SHIPPED_CHECKPOINTS,
    SHIPPED_DIR,
    DemoAgentError,
    choose_demo_agent,
    default_checkpoint,
    resolve_checkpoint,
)

PACKAGE = Path(avworld.__file__).resolve().parent


def test_the_shipped_checkpoints_are_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = default_checkpoint()
    assert shipped is not None and shipped.is_file() and shipped.name == "avnav.pt"
    assert shipped.resolve().is_relative_to(PACKAGE)  # inside the installed package, not the working directory
    assert resolve_checkpoint("agsa") == SHIPPED_CHECKPOINTS["agsa"] and SHIPPED_CHECKPOINTS["agsa"].is_file()


def test_the_shipped_checkpoints_are_package_data_of_the_wheel():
    """A regular `pip install .` copies only declared package data: every shipped file must match it."""
    pyproject = tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["avworld"]
    shipped = sorted(p.relative_to(PACKAGE).as_posix() for p in SHIPPED_DIR.glob("*.pt"))
    assert shipped == ["checkpoints/audiogoal-small/agsa.pt", "checkpoints/audiogoal-small/avnav.pt"]
    for rel in shipped:
        assert any(fnmatch(rel, pat) for pat in patterns), f"{rel} is not package data in pyproject.toml"


def test_the_demo_prefers_avnav_then_agsa(tmp_path, monkeypatch):
    avnav, agsa = tmp_path / "avnav.pt", tmp_path / "agsa.pt"
    monkeypatch.setattr(demo_agent, "DEFAULT_CHECKPOINTS", (avnav, agsa))
    assert default_checkpoint() is None
    agsa.write_bytes(b"x")
    assert default_checkpoint() == agsa
    avnav.write_bytes(b"x")
    assert default_checkpoint() == avnav


def test_no_learned_agent_says_why(tmp_path, monkeypatch):
    off = choose_demo_agent("")
    assert off.checkpoint is None and "none" in off.message and "--checkpoint ''" in off.message

    monkeypatch.setattr(demo_agent, "DEFAULT_CHECKPOINTS", (tmp_path / "avnav.pt",))
    missing = choose_demo_agent(None)
    assert missing.checkpoint is None and "no shipped checkpoint" in missing.message

    monkeypatch.undo()
    monkeypatch.setattr(demo_agent, "torch_available", lambda: False)
    no_torch = choose_demo_agent(None)
    assert no_torch.checkpoint is None and "avnav.pt needs torch" in no_torch.message
    with pytest.raises(DemoAgentError, match="needs torch"):  # an explicit request is not silently dropped
        choose_demo_agent("agsa")


def test_an_unknown_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(DemoAgentError, match="no such file.*avnav, agsa"):
        choose_demo_agent(str(tmp_path / "nope.pt"))


def test_the_demo_names_the_agent_file_and_training_steps():
    torch = pytest.importorskip("torch")
    choice = choose_demo_agent(None)
    assert choice.checkpoint == str(SHIPPED_CHECKPOINTS["avnav"])
    msg = choice.message
    assert msg.startswith("learned agent: avnav agent (AV-Nav") and str(SHIPPED_CHECKPOINTS["avnav"]) in msg
    # the step count the file itself records (993,600 for the AV-Nav retrained on 2026-12-08)
    steps = int(torch.load(SHIPPED_CHECKPOINTS["avnav"], map_location="cpu", weights_only=False)["global_step"])
    assert steps > 0 and f"trained {steps:,} steps" in msg and "grid motion" in msg
    assert "agsa agent (AGSA" in choose_demo_agent("agsa").message


def test_the_report_says_why_it_shows_no_learned_agent(tmp_path):
    from avworld.viz.nav_demo import DemoConfig, run_demo

    note = choose_demo_agent("").message
    cfg = DemoConfig(house_seed=1, rooms=2, episodes=1, agents=("oracle",), image_size=32, step_limit=40,
                     learned_note=note)
    page = run_demo(tmp_path, cfg).read_text()
    assert html.escape(note) in page and "learned.mp4" not in page
