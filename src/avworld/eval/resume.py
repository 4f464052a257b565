"""Evaluations that survive an interruption: per-episode rows written as they finish, resumed on rerun.

An evaluation with an output folder keeps two files there:

* ``episodes.csv``: one row per finished (agent, episode), appended and flushed as each
  episode ends (the columns of :func:`avworld.eval.nav_metrics.write_episodes_csv`);
* ``eval_progress.json``: what identifies the evaluation (checkpoint, episode file and its
  hash, seed, options) and, per agent, how many episodes are done and the agent's random
  state after the last of them. It is replaced atomically after each row.

Rerunning the same command reads both, keeps the finished rows and continues with the next
episode from the saved agent state. Every episode ``k`` is run with the env seeded by
``seed + k`` and the agent's generator continues where it stood, so the resumed evaluation
gives the same rows, aggregate and statistics as an uninterrupted one. The identity also holds a
fingerprint of avworld's source code, so rows of other code are never mixed with new ones. A
rerun with other options or code (another seed, checkpoint, episode file, or an updated avworld)
starts over and says so; the earlier evaluation's files are moved into ``previous-N/`` first,
never overwritten. A smaller ``--num`` restarts an agent that went past it (its saved random
state is that of its last episode).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
from pathlib import Path

from avworld.eval.nav_metrics import METRICS

CSV_NAME, PROGRESS_NAME = "episodes.csv", "eval_progress.json"
COLUMNS = ["agent", "episode_id", *METRICS]


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (identifies an episode file in :class:`EpisodeLog`)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over avworld's Python sources (paths and bytes): changes with any change of the code."""
    import avworld

    root = Path(avworld.__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


#: files of one evaluation in its output folder, moved aside together when it starts over
RESULT_FILES = (CSV_NAME, PROGRESS_NAME, "metrics.json")


class EpisodeLog:
    """The finished episodes of one evaluation in ``out_dir`` (see the module docstring).

    ``identity`` is a JSON-able dict of everything that determines the rows (``--num`` aside).
    After construction ``rows[agent]`` holds the finished rows of a resumed evaluation and
    ``states[agent]`` the agent's saved state; ``note`` says whether it resumed or started over.
    """

    def __init__(self, out_dir: str | Path, identity: dict) -> None:
        self.out = Path(out_dir)
        self.identity = json.loads(json.dumps({**identity, "avworld_code": code_fingerprint()}))  # as read back
        self.rows: dict[str, list[dict]] = {}
        self.states: dict[str, object] = {}
        self.note = ""
        self.out.mkdir(parents=True, exist_ok=True)
        self._load()
        self._rewrite_csv()

    def _move_aside(self) -> Path:
        """Move the earlier evaluation's files into a new ``previous-N`` folder; returns it."""
        n = 1
        while (self.out / f"previous-{n}").exists():
            n += 1
        dest = self.out / f"previous-{n}"
        dest.mkdir()
        for name in RESULT_FILES:
            if (self.out / name).exists():
                os.replace(self.out / name, dest / name)
        return dest

    @property
    def csv_path(self) -> Path:
        return self.out / CSV_NAME

    @property
    def progress_path(self) -> Path:
        return self.out / PROGRESS_NAME

    def _load(self) -> None:
        if not self.progress_path.is_file():
            return
        try:
            saved = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            self.note = f"{self.progress_path} is unreadable; starting the evaluation over"
            return
        if saved.get("identity") != self.identity:
            old = saved.get("identity") or {}
            diff = sorted(k for k in set(old) | set(self.identity) if old.get(k) != self.identity.get(k))
            kept = self._move_aside()
            self.note = (f"{self.out} holds an evaluation with other options ({', '.join(diff)}); "
                         f"starting over (its files moved to {kept})")
            return
        done = {a: int(v.get("done", 0)) for a, v in saved.get("agents", {}).items()}
        rows = _read_rows(self.csv_path, set(done))
        for agent, n in done.items():
            if len(rows.get(agent, [])) < n:  # the CSV lost rows the progress file counts: redo this agent
                continue
            self.rows[agent] = rows[agent][:n]  # drops a row written just before an interruption
            self.states[agent] = saved["agents"][agent].get("state")
        total = sum(len(r) for r in self.rows.values())
        if total:
            self.note = f"resuming: {total} finished episode(s) read from {self.csv_path}"

    def _rewrite_csv(self) -> None:
        tmp = self.csv_path.with_name(self.csv_path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for agent, rows in self.rows.items():
                for m in rows:
                    w.writerow([agent, *(m[k] for k in COLUMNS[1:])])
        os.replace(tmp, self.csv_path)
        self._write_progress()

    def _write_progress(self) -> None:
        data = {"identity": self.identity,
                "agents": {a: {"done": len(r), "state": self.states.get(a)} for a, r in self.rows.items()}}
        tmp = self.progress_path.with_name(self.progress_path.name + ".tmp")
        tmp.write_text(json.dumps(data) + "\n")
        os.replace(tmp, self.progress_path)

    def resume(self, agent: str, num: int, say=None) -> list[dict]:
        """The finished rows of ``agent`` to continue from, for an evaluation of ``num`` episodes.

        A saved run that went past ``num`` episodes (a smaller ``--num`` now) holds the agent's state after
        its last episode only, so that agent starts over (``say`` gets a note).
        """
        rows = self.rows.get(agent, [])
        if len(rows) > num:
            if say is not None:
                say(f"{self.out} holds {len(rows)} episodes of {agent}, more than the {num} asked for; "
                    "starting that agent over")
            self.rows.pop(agent)
            self.states.pop(agent, None)
            self._rewrite_csv()
            return []
        return list(rows)

    def add(self, agent: str, metrics: dict, state) -> None:
        """Record one finished episode of ``agent`` (its metrics row) and the agent's state after it."""
        with open(self.csv_path, "a", newline="") as f:
            csv.writer(f).writerow([agent, *(metrics[k] for k in COLUMNS[1:])])
            f.flush()
        self.rows.setdefault(agent, []).append(dict(metrics))
        self.states[agent] = state
        self._write_progress()


def _read_rows(path: Path, agents: set[str]) -> dict[str, list[dict]]:
    """Rows per agent of an ``episodes.csv``; reading stops at the first incomplete row (an interrupted write)."""
    out: dict[str, list[dict]] = {}
    if not path.is_file():
        return out
    with open(path, newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != COLUMNS:
            return out
        for row in reader:
            if len(row) != len(COLUMNS) or row[0] not in agents:
                break
            try:
                m = {"episode_id": row[1], **{k: float(v) for k, v in zip(METRICS, row[2:])}}
            except ValueError:
                break
            out.setdefault(row[0], []).append(m)
    return out
