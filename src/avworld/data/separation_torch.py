"""A torch ``Dataset`` over the static separation dataset (imports torch; load it lazily).

>>> ds = SeparationTorchDataset("/work/data/sep-small", split="train")
>>> ex = ds[0]   # float32 tensors mixture (2, 16000), target_binaural (2, 16000), target_mono (16000,);
...              # target_type a long tensor ()
>>> loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=1)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from avworld.data.separation_reader import SeparationData

#: the fields a training example needs (the others: ``fields=FIELDS``)
TRAIN_FIELDS = ("mixture", "target_binaural", "target_mono", "target_type")


class SeparationTorchDataset(Dataset):
    """Examples of one split as torch tensors (float32 audio, int64 type indices)."""

    def __init__(self, root, split: str = "train", fields: tuple[str, ...] = TRAIN_FIELDS) -> None:
        self.data = SeparationData(root, split)
        self.fields = tuple(fields)
        self.source_types = self.data.source_types

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        ex = self.data[i]
        out = {}
        for name in self.fields:
            v = torch.as_tensor(np.array(ex[name]))  # a copy: h5py's arrays are the reader's
            out[name] = v.long() if name in ("target_type", "source_types", "num_sources") else v
        return out
