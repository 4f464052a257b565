"""Every relative link in the repository's Markdown resolves to a file inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown_files():
    skip = {".venv", "runs", "build", ".git", ".pytest_cache", ".ruff_cache"}
    for path in ROOT.rglob("*.md"):
        rel = path.relative_to(ROOT)
        if not (set(rel.parts[:-1]) & skip) and not any(p.endswith(".egg-info") for p in rel.parts):
            yield path


def test_relative_links_stay_inside_the_repository_and_exist():
    bad = []
    for md in _markdown_files():
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # URLs and in-page anchors
            path = (md.parent / target.split("#")[0]).resolve()
            if ROOT not in path.parents and path != ROOT:
                bad.append(f"{md.relative_to(ROOT)}: {target} points outside the repository")
            elif not path.exists():
                bad.append(f"{md.relative_to(ROOT)}: {target} does not exist")
    assert not bad, "\n".join(bad)
