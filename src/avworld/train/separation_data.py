"""Batches of the static separation dataset for pretraining f^P (torch tensors of spectrograms).

:class:`StaticSeparationData` reads ``avworld separation data make`` output (``mixture``
(n, 2, 16000), ``target_binaural`` (n, 2, 16000), ``target_mono`` (n, 16000), ``target_type``
(n,)) lazily through the dataset's own reader, one batch at a time.
:class:`ArrayData` holds the same fields in memory (tests, small experiments). Both return
:func:`spectra` of a batch: the magnitudes f^P learns from and the phases the metrics need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avworld.models.separation.spectrogram import magnitudes, phases

FIELDS = ("mixture", "target_binaural", "target_mono", "target_type")


class ArrayData:
    """In-memory examples: ``{field: array}`` with the :data:`FIELDS`; ``num_types`` sound types."""

    def __init__(self, arrays: dict, num_types: int) -> None:
        self.arrays = {k: np.asarray(arrays[k]) for k in FIELDS}
        self.num_types = int(num_types)

    def __len__(self) -> int:
        return len(self.arrays["target_type"])

    def get(self, indices) -> dict[str, np.ndarray]:
        idx = np.asarray(indices)
        return {k: v[idx] for k, v in self.arrays.items()}


class StaticSeparationData:
    """One split of an on-disk static dataset, read with :class:`avworld.data.separation_reader.SeparationData`
    (its format and completeness checks); ``get`` reads the four fields f^P needs."""

    def __init__(self, root: str | Path, split: str, allow_incomplete: bool = False) -> None:
        from avworld.data.separation_reader import SeparationData

        self.data = SeparationData(root, split, allow_incomplete=allow_incomplete)
        self.num_types = len(self.data.source_types)

    def __len__(self) -> int:
        return len(self.data)

    def get(self, indices) -> dict[str, np.ndarray]:
        return self.data.batch([int(i) for i in indices], FIELDS)

    def close(self) -> None:
        self.data.close()


def spectra(batch: dict[str, np.ndarray], device="cpu") -> dict[str, torch.Tensor]:
    """A batch of waveforms -> mixture / target binaural / target mono magnitudes (32 x 32 x 16C),
    the target mono phase (1, 512, 32), the waveforms and the types, as tensors on ``device``."""
    mix = torch.as_tensor(batch["mixture"], dtype=torch.float32, device=device)
    tb = torch.as_tensor(batch["target_binaural"], dtype=torch.float32, device=device)
    tm = torch.as_tensor(batch["target_mono"], dtype=torch.float32, device=device).unsqueeze(1)
    return {"mixture": magnitudes(mix), "target_binaural": magnitudes(tb), "target_mono": magnitudes(tm),
            "mono_phase": phases(tm), "mixture_wave": mix, "mono_wave": tm,
            "target_type": torch.as_tensor(batch["target_type"], dtype=torch.long, device=device)}
