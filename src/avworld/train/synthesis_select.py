"""Checkpoint selection of π-AVAS training on a validation folder (``avworld synthesis train --val-data``).

The refiner sees one source placement per house, so its gated stack can fit that placement: on the
default data the magnitude distance of new placements rises with the training steps (docs/results.md).
A validation folder made like the training data but with another ``--seed`` (other source positions,
poses and sounds in the same houses; ``avworld synthesis data --seed 1 --placements 2``) measures that
without touching the test placements. At step 0 (the starting weights, e.g. the least-squares ear
matrices of ``train.init_ears``) and at every periodic checkpoint, the MAG of the validation folder's held-out
clips is computed exactly as ``avworld synthesis eval --max-examples`` does (the same clips, solver,
NFE, start and phase); the best weights so far are kept in ``best.pt`` (ties keep the earlier step),
with their step and score. A validation folder with the training data's seed and houses would hold the
test placements and is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avworld.data.synthesis import SampleRateMismatchError, SynthesisDataError, load_split, manifest_config


class ValidationSelector:
    """MAG on up to ``examples`` held-out clips of ``val_dir``; keeps the best weights in ``out/best.pt``.

    ``header``: the run's configs (stored in ``best.pt`` with the validation folder's config and the
    example count). ``resume``: continue from the best of an existing ``best.pt``, which must come from
    the same run settings and validation clips; otherwise an earlier ``best.pt`` is replaced at step 0.
    """

    def __init__(self, val_dir, sample_rate_hz: int, clip_samples: int, out: Path, header: dict, start: str = "refine",
                 examples: int = 96, solver: str = "euler", nfe: int = 4, device: str = "cpu",
                 resume: bool = False) -> None:
        from avworld.eval.synthesis_eval import _subset
        from avworld.train.synthesis import SynthesisCheckpointError, load

        if examples < 1:
            raise SynthesisDataError(f"validation examples must be >= 1, got {examples}")
        val_cfg = manifest_config(val_dir)
        train_cfg = header["data_config"]
        if all(val_cfg.get(k) == train_cfg.get(k) for k in ("seed", "house_seed", "num_envs", "num_rooms")):
            raise SynthesisDataError(f"{val_dir} has the training data's seed and houses, so its held-out clips are "
                                     "the test placements; make the validation folder with another --seed "
                                     "(`avworld synthesis data --seed 1 --placements 2`)")
        full = load_split(val_dir, "test")
        if int(full["sample_rate_hz"]) != int(sample_rate_hz):
            raise SampleRateMismatchError(f"{val_dir} is at {int(full['sample_rate_hz'])} Hz, the training data at "
                                          f"{int(sample_rate_hz)} Hz; make both at the same rate")
        if full["x_tx"].shape[1] != int(clip_samples):
            raise SynthesisDataError(f"{val_dir} has clips of {full['x_tx'].shape[1]} samples, the training data "
                                     f"{int(clip_samples)}; make both with the same --clip-s")
        sel = _subset(len(full["x_tx"]), examples)  # the clips `avworld synthesis eval --max-examples` scores
        self.data = {k: full[k][sel] for k in ("x_tx", "x_sim", "x_rx", "poses", "source")}
        self.header = {**header, "val_config": val_cfg, "val_examples": int(len(sel))}
        self.path, self.start, self.solver, self.nfe, self.device = Path(out) / "best.pt", start, solver, nfe, device
        self.best, self.best_step = float("inf"), -1
        if resume and self.path.exists():  # a resumed run continues from the best it had seen
            ck = load(self.path)
            for k, v in self.header.items():
                if ck.get(k) != v:
                    raise SynthesisCheckpointError(f"{self.path}: its {k} differs from this run's; resume with the "
                                                   "same settings, --val-data and --val-examples")
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

    def update(self, model, step: int) -> float:
        """Score the weights of ``step``; write ``best.pt`` when they beat every earlier step."""
        from avworld.train.synthesis import save

        mag = self.score(model)
        if mag < self.best:
            self.best, self.best_step = mag, int(step)
            save(self.path, {**self.header, "model": model.state_dict(), "step": int(step), "val_mag": mag})
        return mag
