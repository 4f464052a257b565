"""Reading the static separation dataset (numpy + h5py; no torch).

>>> data = SeparationData("/work/data/sep-small", split="train")
>>> ex = data[0]     # mixture (2, 16000), target_binaural (2, 16000), target_mono (16000,), target_type ...
>>> data.source_types[ex["target_type"]]
'speaker_017'
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avworld.data.separation import FIELDS, SEP_DATA_FORMAT, SEP_DATA_VERSION, SeparationDataError
from avworld.tasks.separation_episodes import SPLITS


class SeparationData:
    """The examples of one split of a dataset built by ``avworld separation data make``.

    ``data[i]`` is a dict of numpy arrays (the fields of :data:`~avworld.data.separation.FIELDS`);
    :meth:`batch` reads several at once. HDF5 files are opened on first use and kept open
    (per process: a torch DataLoader worker opens its own after the fork).
    """

    def __init__(self, root: str | Path, split: str = "train", allow_incomplete: bool = False) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise SeparationDataError(f"unknown split {split!r}; choose one of {SPLITS}")
        mpath = self.root / "manifest.json"
        if not mpath.is_file():
            raise SeparationDataError(f"{self.root} has no manifest.json; build the dataset with "
                                      "`avworld separation data make --out DIR`")
        m = json.loads(mpath.read_text())
        if m.get("format") != SEP_DATA_FORMAT or m.get("version") != SEP_DATA_VERSION:
            raise SeparationDataError(f"{mpath}: not a static separation dataset of version {SEP_DATA_VERSION} "
                                      f"(format {m.get('format')!r}, version {m.get('version')!r})")
        if not m.get("complete") and not allow_incomplete:
            raise SeparationDataError(f"{self.root} is incomplete (its build was interrupted or still runs); rerun "
                                      "the same `avworld separation data make` to finish it, or pass "
                                      "allow_incomplete=True to read the shards written so far")
        self.manifest = m
        self.split = split
        #: the dynamic sound types; ``target_type`` and ``source_types`` index this list
        self.source_types: tuple[str, ...] = tuple(m["source_types"])
        self.shards = [s for s in m["shards"] if s["split"] == split]
        counts = np.array([s["num_examples"] for s in self.shards], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])
        self._files: dict[int, object] = {}

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, i: int) -> tuple[int, int]:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"example {i} out of range: split {self.split!r} has {n} examples")
        i %= n
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        return s, i - int(self._starts[s])

    def _file(self, s: int):
        import h5py

        f = self._files.get(s)
        if f is None:
            path = self.root / self.shards[s]["path"]
            try:
                f = self._files[s] = h5py.File(path, "r")
            except OSError as exc:
                raise SeparationDataError(f"cannot read shard {path} ({exc}); rebuild the dataset with the same "
                                          "`avworld separation data make` command") from None
        return f

    def __getitem__(self, i: int) -> dict:
        s, j = self._locate(int(i))
        f = self._file(s)
        return {name: f[name][j] for name in FIELDS}

    def batch(self, indices, fields: tuple[str, ...] = FIELDS) -> dict:
        """Stacked fields of several examples (in the given order); one read per shard and field."""
        where = [self._locate(int(i)) for i in indices]
        out: dict[str, np.ndarray] = {}
        for s in sorted({s for s, _ in where}):
            pos = [k for k, (t, _) in enumerate(where) if t == s]
            local = np.array([where[k][1] for k in pos])
            uniq, inverse = np.unique(local, return_inverse=True)  # h5py reads increasing indices
            f = self._file(s)
            for name in fields:
                rows = f[name][uniq.tolist()][inverse]
                if name not in out:
                    out[name] = np.empty((len(where),) + rows.shape[1:], rows.dtype)
                out[name][pos] = rows
        return out

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def __getstate__(self) -> dict:  # open HDF5 handles do not pickle; reopen in the new process
        d = self.__dict__.copy()
        d["_files"] = {}
        return d

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
