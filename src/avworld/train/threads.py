"""How many threads torch's CPU inference gets (evaluation): the cores actually free, not all of them.

torch starts as many intra-op threads as the machine has cores. When other processes already
keep those cores busy (training runs, other evaluations), its threads wait on each other and a
small policy's inference gets several times slower (an 8-episode evaluation took 145 s instead
of 25 s with one thread, with identical results). :func:`inference_threads` therefore picks
the cores this process may use minus the 1-minute load average, at least one; an explicit
``--threads N`` or ``OMP_NUM_THREADS`` wins.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Usable cores minus the 1-minute load average (rounded), at least 1."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows: no load average
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def inference_threads(requested: int | None = None) -> int:
    """``requested`` if given (>= 1), else ``OMP_NUM_THREADS`` if set, else :func:`free_cores`."""
    if requested is not None:
        if requested < 1:
            from avworld.train.config import TrainConfigError

            raise TrainConfigError(f"--threads {requested}: must be >= 1 (or leave it out: the free cores)")
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    return free_cores()


def set_inference_threads(requested: int | None = None) -> int:
    """Apply :func:`inference_threads` to torch; returns the number set."""
    import torch

    n = inference_threads(requested)
    torch.set_num_threads(n)
    return n
