"""Names given on the command line (agents, presets, observation sets, ...) checked when a command starts."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid names (difflib), or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=3, cutoff=0.5)
    return f"; did you mean {' or '.join(map(repr, close))}?" if close else ""


def check_choice(option: str, name: str, valid: Iterable[str], error: type[ValueError] = ValueError) -> str:
    """``name`` if it is one of ``valid``, else ``error`` naming the option, a suggestion and the valid names."""
    valid = sorted(valid)
    if name not in valid:
        raise error(f"{option} {name!r} is unknown{did_you_mean(name, valid)} (valid: {', '.join(valid)})")
    return name
