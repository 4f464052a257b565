"""Checkpoint selection of π-AVAS training on a validation folder (``avworld synthesis train --val-data``).

The refiner sees one source placement per house, so its gated stack can fit that placement: on the
default data the magnitude distance of new placements rises with the training steps (docs/results.md).
A validation folder made like the training data but with another ``--seed`` (other source positions,
poses and sounds in the same houses; ``avworld synthesis data --seed 1 --placements 2``) measures that
without touching the test placements. At step 0 (the starting weights, e.g. the least-squares ear
matrices of ``train.init_ears``) and at every checkpoint, the MAG of the validation folder's held-out
clips is computed exactly as ``avworld synthesis eval`` does (the same solver, NFE, start and phase);
the best weights so far are kept in ``best.pt`` (ties keep the earlier step), with their step and score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avworld.data.synthesis import SampleRateMismatchError, SynthesisDataError, load_split


class ValidationSelector:
    """MAG on up to ``examples`` held-out clips of ``val_dir``; keeps the best weights in ``out/best.pt``."""

    def __init__(self, val_dir, train_split: dict, out: Path, start: str = "refine", examples: int = 96,
                 solver: str = "euler", nfe: int = 4, device: str = "cpu") -> None:
        if examples < 1:
            raise SynthesisDataError(f"validation examples must be >= 1, got {examples}")
        full = load_split(val_dir, "test")
        n = len(full["x_tx"])
        if n == 0:
            raise SynthesisDataError(f"{val_dir}: no held-out clips to validate on; make it with "
                                     "`avworld synthesis data --seed 1 --placements 2` (placements >= 2)")
        if int(full["sample_rate_hz"]) != int(train_split["sample_rate_hz"]):
            raise SampleRateMismatchError(f"{val_dir} is at {int(full['sample_rate_hz'])} Hz, the training data at "
                                          f"{int(train_split['sample_rate_hz'])} Hz; make both at the same rate")
        if full["x_tx"].shape[1] != train_split["x_tx"].shape[1]:
            raise SynthesisDataError(f"{val_dir} has clips of {full['x_tx'].shape[1]} samples, the training data "
                                     f"{train_split['x_tx'].shape[1]}; make both with the same --clip-s")
        sel = np.unique(np.linspace(0, n - 1, min(examples, n)).astype(int))
        self.data = {k: full[k][sel] for k in ("x_tx", "x_sim", "x_rx", "poses", "source")}
        self.sample_rate_hz = int(full["sample_rate_hz"])
        self.path, self.start, self.solver, self.nfe, self.device = Path(out) / "best.pt", start, solver, nfe, device
        self.best, self.best_step = float("inf"), -1
        if self.path.exists():  # a resumed run continues from the best it had seen
            from avworld.train.synthesis import load

            ck = load(self.path)
            self.best, self.best_step = float(ck["val_mag"]), int(ck["step"])

    def score(self, model) -> float:
        """Mean MAG of the validation clips (lower is better), as ``avworld synthesis eval`` computes it."""
        from avworld.eval.synthesis_eval import run_flow
        from avworld.eval.synthesis_metrics import mag_distance

        d = self.data
        pose = np.concatenate([d["poses"], d["source"]], axis=1)
        neural = self.start == "neural"
        was_training = model.training
        model.eval()
        y, _ = run_flow(model, d["x_tx"], np.zeros_like(d["x_sim"]) if neural else d["x_sim"], pose, self.solver,
                        self.nfe, device=self.device, domain=model.config.domain,
                        phase_from=d["x_tx"] if neural else None, power=model.config.mag_power)
        model.train(was_training)
        return float(np.mean(mag_distance(y, d["x_rx"])))

    def update(self, model, step: int, header: dict) -> float:
        """Score the weights of ``step``; write ``best.pt`` when they beat every earlier step."""
        from avworld.train.synthesis import save

        mag = self.score(model)
        if mag < self.best:
            self.best, self.best_step = mag, int(step)
            save(self.path, {**header, "model": model.state_dict(), "step": int(step), "val_mag": mag})
        return mag
