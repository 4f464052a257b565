"""Spatial-RIR cache in memory and on disk.

Keys are (scene content hash, engine-config hash, source and listener positions
quantized to ``config.position_quantum_m``), so a dataset build or a training run never
simulates the same pair twice, across processes too when a ``directory`` is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from avworld.acoustics.spatial_rir import AcousticEngine, SpatialRIR

_FIELDS = ("delay_s", "gain", "doa", "order", "tail", "source", "listener")


class RIRCache:
    """LRU memory cache (``max_items``) backed by an optional directory of ``.npz`` files."""

    def __init__(self, engine: AcousticEngine, max_items: int = 10_000, directory: str | os.PathLike | None = None):
        self.engine = engine
        self.max_items = int(max_items)
        self.directory = Path(directory) if directory is not None else None
        cfg = json.dumps(asdict(engine.config), sort_keys=True).encode()
        self.namespace = f"{engine.scene.content_hash}-{hashlib.sha256(cfg).hexdigest()[:12]}"
        self._mem: OrderedDict[tuple, SpatialRIR] = OrderedDict()
        self.hits = self.disk_hits = self.simulations = 0

    def key(self, source, listener) -> tuple:
        q = self.engine.config.position_quantum_m
        s = np.round(np.asarray(source, float) / q).astype(np.int64)
        ll = np.round(np.asarray(listener, float) / q).astype(np.int64)
        return tuple(s.tolist()) + tuple(ll.tolist())

    def _path(self, key: tuple) -> Path:
        name = "_".join(str(v) for v in key)
        return self.directory / self.namespace / f"{name}.npz"

    def get(self, source, listener) -> SpatialRIR:
        key = self.key(source, listener)
        srir = self._mem.get(key)
        if srir is not None:
            self._mem.move_to_end(key)
            self.hits += 1
            return srir
        srir = self._load(key) if self.directory is not None else None
        if srir is not None:
            self.disk_hits += 1
        else:
            # Simulate at the key's cell centres, not the exact positions: the result is then a
            # function of the key alone, so outputs never depend on which position of a cell
            # happened to be asked for first (same seed, same bytes, whatever ran before).
            q = self.engine.config.position_quantum_m
            k = np.asarray(key, dtype=float) * q
            srir = self.engine.spatial_rir(k[:3], k[3:])
            self.simulations += 1
            if self.directory is not None:
                self._save(key, srir)
        self._mem[key] = srir
        if len(self._mem) > self.max_items:
            self._mem.popitem(last=False)
        return srir

    def __len__(self) -> int:
        return len(self._mem)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._mem.values())

    def _save(self, key: tuple, srir: SpatialRIR) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        tail_dir = np.zeros((0,), np.float32) if srir.tail_dir is None else srir.tail_dir  # empty: isotropic
        np.savez(tmp, **{f: getattr(srir, f) for f in _FIELDS}, tail_dir=tail_dir,
                 meta=np.array([srir.tail_bin_s, srir.sample_rate_hz, srir.noise_seed, srir.late_order],
                                       dtype=np.float64))
        os.replace(tmp, path)  # atomic: readers never see half a file

    def _load(self, key: tuple) -> SpatialRIR | None:
        path = self._path(key)
        if not path.exists():
            return None
        try:
            with np.load(path) as z:
                arrays = {f: z[f] for f in _FIELDS}
                tail_dir = z["tail_dir"]
                bin_s, rate, seed, order = z["meta"]
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)  # a corrupt entry is simply recomputed
            return None
        return SpatialRIR(tail_bin_s=float(bin_s), sample_rate_hz=int(rate), noise_seed=int(seed),
                          tail_dir=tail_dir if tail_dir.size else None, late_order=int(order), **arrays)
