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


class SpectraCache:
    """The training magnitudes of every example, computed on first use and kept in memory as float16
    (80 K values, 160 kB per example: 0.65 GB for 4000), so later epochs skip the HDF5 reads and STFTs."""

    KEYS = ("mixture", "target_binaural", "target_mono")

    def __init__(self, data) -> None:
        self.data = data
        self.store: dict[str, torch.Tensor | None] = {k: None for k in self.KEYS}
        self.types = torch.zeros(len(data), dtype=torch.long)
        self.done = torch.zeros(len(data), dtype=torch.bool)

    def get(self, indices, device="cpu") -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        todo = torch.unique(idx[~self.done[idx]])
        if len(todo):
            s = spectra(self.data.get(todo.numpy()))
            for k in self.KEYS:
                if self.store[k] is None:
                    self.store[k] = torch.zeros(len(self.data), *s[k].shape[1:], dtype=torch.float16)
                self.store[k][todo] = s[k].half()
            self.types[todo] = s["target_type"]
            self.done[todo] = True
        out = {k: self.store[k][idx].float().to(device) for k in self.KEYS}
        out["target_type"] = self.types[idx].to(device)
        return out
