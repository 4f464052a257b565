"""Graceful stop of a training run on SIGINT (Ctrl-C) or SIGTERM (``kill``, batch schedulers).

While a :class:`StopRequest` is active, the first such signal only sets a flag: the trainer
finishes the update it is in, writes a checkpoint and returns, so ``--resume`` continues
from that update and nothing already computed is lost. A second signal aborts at once
(``KeyboardInterrupt``), losing the work since the last checkpoint, for when waiting for
the update to finish is not wanted.

Handlers can only be installed in the main thread of the main interpreter; elsewhere (a
trainer driven from a worker thread) the request stays inactive and signals keep their
usual effect. The previous handlers come back when the block ends.
"""

from __future__ import annotations

import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager: ``requested`` turns true at the first SIGINT / SIGTERM inside the block."""

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self.announce = announce
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested:  # the second signal: stop now
            self.restore()
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice: training aborted "
                                    "without a final checkpoint; --resume continues from the last one")
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        if self.announce:  # the one line a Ctrl-C prints (the CLIs add nothing after a SIGINT stop)
            what = "interrupted" if signum == signal.SIGINT else f"{self.signal_name} received"
            print(f"{what}; finishing the update in progress and writing a checkpoint: rerun the same command "
                  "with --resume to continue (press Ctrl-C again to abort at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            try:
                for s in SIGNALS:
                    self._previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main interpreter
                self.restore()
        return self

    def restore(self) -> None:
        for s, handler in self._previous.items():
            # None: the previous handler was installed from C and cannot be put back from Python
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self.restore()
