"""Training logs: CSV (``metrics.csv``), TensorBoard (``tb/``) and a rich progress line.

Only the main process (rank 0) logs. On resume, rows logged after the checkpoint's update
are dropped from the CSV so that the file never holds an update twice.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path


class RunLogger:
    """``log(step, {name: value})`` to every enabled sink; ``close()`` at the end."""

    def __init__(self, out_dir: str | Path | None, total_steps: int, tensorboard: bool = True, progress: bool = True,
                 start_step: int = 0, resume_update: int | None = None, title: str = "train") -> None:
        self.out = Path(out_dir) if out_dir is not None else None
        self._writer = None
        self._csv_path = None
        self._fields: list[str] | None = None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            self._csv_path = self.out / "metrics.csv"
            if resume_update is not None and self._csv_path.exists():
                self._truncate_csv(resume_update)
            elif self._csv_path.exists():
                self._csv_path.unlink()
            if self._csv_path.exists():
                with open(self._csv_path, newline="") as f:
                    self._fields = next(csv.reader(f), None)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self._writer = SummaryWriter(str(self.out / "tb"), purge_step=start_step or None)
                except ImportError:  # tensorboard is optional
                    self._writer = None
        self._progress = None
        if progress:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                      TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
                                      TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[stats]}"))
            self._progress.start()
            self._task = self._progress.add_task(title, total=total_steps, completed=start_step, stats="")
        self._t0 = time.perf_counter()

    def _truncate_csv(self, update: int) -> None:
        with open(self._csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys()) if rows else None
        keep = [r for r in rows if int(float(r.get("update", 0))) <= update]
        if fields is None:
            self._csv_path.unlink()
            return
        with open(self._csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(keep)

    def log(self, step: int, values: dict[str, float]) -> None:
        if self._writer is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._writer.add_scalar(k, v, step)
        if self._csv_path is not None:
            row = {"step": step, **values}
            if self._fields is None or set(row) - set(self._fields):
                self._rewrite_header(list(row))
            with open(self._csv_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._fields, restval="").writerow(row)
        if self._progress is not None:
            shown = [("R", "episode/return"), ("succ", "episode/success"), ("SPL", "episode/spl"),
                     ("ω", "rollout/omega_mean"), ("fps", "perf/steps_per_s")]
            stats = "  ".join(f"{name} {values[k]:.3g}" for name, k in shown
                              if k in values and math.isfinite(values[k]))
            self._progress.update(self._task, completed=step, stats=stats)

    def _rewrite_header(self, new_fields: list[str]) -> None:
        old = self._fields or []
        fields = old + [k for k in new_fields if k not in old]
        rows = []
        if self._csv_path.exists() and old:
            with open(self._csv_path, newline="") as f:
                rows = list(csv.DictReader(f))
        with open(self._csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, restval="")
            w.writeheader()
            w.writerows(rows)
        self._fields = fields

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._progress is not None:
            self._progress.stop()
