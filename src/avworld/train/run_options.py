"""Options and checks every resumable training or applying command shares (tokenizers, world model,
separation, synthesis): one place for the run flags, the ``--threads`` check and the refusal to
write a new run over an old one."""

from __future__ import annotations

from pathlib import Path


def add_run_options(parser, bf16: bool = False) -> None:
    """--resume, --time-limit, --threads, --device, [--no-bf16], --no-tensorboard, --no-progress."""
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="stop after MINUTES of training with a checkpoint (continue with --resume); Ctrl-C and "
                             "SIGTERM stop the same way")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's choice, or OMP_NUM_THREADS)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if available)")
    if bf16:
        parser.add_argument("--no-bf16", action="store_true",
                            help="float32 on CUDA too (bf16 autocast is never used on CPU)")
    parser.add_argument("--no-tensorboard", action="store_true", help="CSV logs only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def set_threads(n: int | None, error: type[Exception] = ValueError) -> None:
    """``torch.set_num_threads(n)`` unless ``n`` is None; ``error`` (a ValueError subclass) when n < 1."""
    if n is None:
        return
    if int(n) < 1:
        raise error(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(int(n))


def has_checkpoints(out: str | Path) -> bool:
    """Whether run directory ``out`` holds a ``checkpoints/ckpt_*.pt``."""
    d = Path(out) / "checkpoints"
    return d.is_dir() and any(d.glob("ckpt_*.pt"))


def check_new_run(out: str | Path, resume: bool, error: type[Exception] = ValueError) -> None:
    """Refuse (``error``) to start a new run in a directory that already holds checkpoints: nothing
    written is overwritten; ``--resume`` continues it."""
    if not resume and has_checkpoints(out):
        raise error(f"{out} already holds checkpoints; add --resume to continue that run or pick another --out")
