"""Every benchmark script answers ``--help`` (argparse expands its help strings only then: a stray
``%`` in one breaks it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted(p for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py")
                 if not p.name.startswith("_"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script):
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=script.parents[1])
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.startswith("usage:"), out.stdout[:300]
