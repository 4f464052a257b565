"""The JSON-lines episode file both task families use: a header line, then one episode per line.

:func:`read_episode_file` checks the header's format and version and every line, and raises the
caller's typed error naming the file, the line and the command that makes such a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def read_episode_file(path: str | Path, fmt: str, version: int, what: str, make_cmd: str,
                      from_dict: Callable[[dict, str], object], error: type[Exception]) -> tuple[dict, list]:
    """(header, episodes) of ``path``. ``from_dict(d, where)`` builds one episode (with
    ``episode_id``); ``error`` is raised for a missing or empty file, another format or version,
    a line that is not a JSON object and a duplicate ``episode_id``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"episode file {path} does not exist; create one with `{make_cmd}`")
    lines = path.read_text().splitlines()
    if not lines:
        raise error(f"{path} is empty; create it with `{make_cmd}`")
    try:
        header = json.loads(lines[0])
    except json.JSONDecodeError as exc:
        raise error(f"{path}:1: header is not JSON ({exc.msg})") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise error(f"{path}: not an {what} episode file (header format must be {fmt!r}); create one "
                    f"with `{make_cmd}`")
    if header.get("version") != version:
        raise error(f"{path}: episode file version {header.get('version')!r}, this avworld reads version "
                    f"{version}; regenerate it with `{make_cmd}`")
    episodes, seen = [], set()
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{n}: episode line is not JSON ({exc.msg})") from None
        if not isinstance(d, dict):
            raise error(f"{path}:{n}: an episode must be a JSON object")
        ep = from_dict(d, f"{path}:{n} (episode {d.get('episode_id')!r})")
        if ep.episode_id in seen:
            raise error(f"{path}:{n}: duplicate episode_id {ep.episode_id!r}")
        seen.add(ep.episode_id)
        episodes.append(ep)
    return header, episodes
