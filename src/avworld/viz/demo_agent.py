"""Which trained agent ``avworld demo`` shows, and why it shows none.

The two ``audiogoal-small`` checkpoints ship inside the package
(``avworld/checkpoints/audiogoal-small/{avnav,agsa}.pt``, package data), so the demo finds
them from any working directory, in an editable install and in an installed wheel alike.
Showing one needs torch (the ``torch`` extra); without it the demo runs the baselines and
says so.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

#: where the shipped checkpoints live: inside the installed package
SHIPPED_DIR = Path(str(files("avworld"))) / "checkpoints" / "audiogoal-small"
#: the shipped checkpoints by name. AV-Nav first: the better of the two on the unseen ``audiogoal-small``
#: test episodes (SPL 0.432 against AGSA's 0.342 at 2M steps, docs/results.md)
SHIPPED_CHECKPOINTS = {"avnav": SHIPPED_DIR / "avnav.pt", "agsa": SHIPPED_DIR / "agsa.pt"}
DEFAULT_CHECKPOINTS = tuple(SHIPPED_CHECKPOINTS.values())
AGENT_TITLES = {"avnav": "AV-Nav, the SoundSpaces baseline",
                "agsa": "AGSA, audio-guided fusion with stereo-aware attention"}


class DemoAgentError(ValueError):
    """The ``--checkpoint`` given to the demo cannot be shown (missing file, no torch, unreadable)."""


def default_checkpoint() -> Path | None:
    """The shipped checkpoint the demo shows when none is given: AV-Nav's, else AGSA's, else None."""
    return next((p for p in DEFAULT_CHECKPOINTS if p.is_file()), None)


def resolve_checkpoint(name_or_path: str) -> Path:
    """A shipped checkpoint's name (``avnav``, ``agsa``) or a path, as a path to an existing file."""
    path = SHIPPED_CHECKPOINTS.get(name_or_path, Path(name_or_path))
    if not path.is_file():
        shipped = ", ".join(SHIPPED_CHECKPOINTS)
        raise DemoAgentError(f"checkpoint {name_or_path!r}: no such file; pass a .pt file written by `avworld train "
                             f"nav`, a shipped agent's name ({shipped}), or '' for no learned agent")
    return path


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True)
class DemoAgentChoice:
    """The learned agent the demo shows (``checkpoint`` None: none) and a sentence saying which, or why none."""

    checkpoint: str | None
    message: str


def describe_checkpoint(path: Path) -> str:
    """``avnav agent (AV-Nav ...) from PATH, trained 2,001,600 steps; grid motion, audiodepth observations``."""
    from avworld.train.checkpoint import load_checkpoint

    ck = load_checkpoint(path)  # CheckpointError (a ValueError) names a corrupt or foreign file
    agent = str(ck.get("agent", "?"))
    env = ck.get("run_info", {}).get("env", {})
    text = f"{agent} agent ({AGENT_TITLES[agent]})" if agent in AGENT_TITLES else f"{agent} agent"
    text += f" from {path}"
    if "global_step" in ck:
        text += f", trained {int(ck['global_step']):,} steps"
    details = [f"{env['motion']} motion" if "motion" in env else "", f"{env['observations']} observations"
               if "observations" in env else ""]
    details = [d for d in details if d]
    return text + (f"; {', '.join(details)}" if details else "")


def choose_demo_agent(checkpoint: str | None) -> DemoAgentChoice:
    """What the demo shows for ``--checkpoint``: None = the shipped default, '' = none, else a name or path.

    An explicit checkpoint that cannot be shown is an error (:class:`DemoAgentError`); the
    default falls back to the baselines alone, with the reason in the message.
    """
    if checkpoint == "":
        return DemoAgentChoice(None, "learned agent: none (--checkpoint '' leaves it out)")
    if checkpoint is None:
        path = default_checkpoint()
        if path is None:
            return DemoAgentChoice(None, f"learned agent: none: no shipped checkpoint in {SHIPPED_DIR} (this "
                                         "install lacks the package data); pass --checkpoint PATH")
        if not torch_available():
            return DemoAgentChoice(None, f"learned agent: none: the shipped checkpoint {path.name} needs torch; "
                                         "install avworld[torch] to see it")
    else:
        path = resolve_checkpoint(checkpoint)
        if not torch_available():
            raise DemoAgentError(f"showing the checkpoint {path} needs torch; install avworld[torch] or run the "
                                 "demo with --checkpoint ''")
    return DemoAgentChoice(str(path), f"learned agent: {describe_checkpoint(path)}")
