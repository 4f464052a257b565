"""RIR cache: memory and disk, keyed by scene hash and quantized positions."""

from __future__ import annotations

import pickle

import numpy as np

from avworld.acoustics.cache import RIRCache
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.synthesis import mono_rir
from avworld.geometry.builder import box_room


def _engine():
    return AcousticEngine(box_room((5.0, 4.0, 2.7)), AcousticConfig(max_rir_s=0.5))


def test_memory_cache_never_simulates_twice():
    cache = RIRCache(_engine())
    a = cache.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    b = cache.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    c = cache.get((1.0, 1.0, 1.5), (3.002, 2.0, 1.5))  # same 1 cm cell
    assert a is b is c
    assert cache.simulations == 1 and cache.hits == 2
    cache.get((1.0, 1.0, 1.5), (3.5, 2.0, 1.5))
    assert cache.simulations == 2 and len(cache) == 2


def test_lru_bound():
    cache = RIRCache(_engine(), max_items=3)
    for x in (1.0, 1.5, 2.0, 2.5, 3.0):
        cache.get((0.5, 0.5, 1.5), (x, 3.0, 1.5))
    assert len(cache) == 3


def test_disk_cache_roundtrip_and_identical_audio(tmp_path):
    first = RIRCache(_engine(), directory=tmp_path)
    a = first.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    second = RIRCache(_engine(), directory=tmp_path)  # a new process would see the same files
    b = second.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    assert second.simulations == 0 and second.disk_hits == 1
    assert mono_rir(a).tobytes() == mono_rir(b).tobytes()
    # another scene never reads these entries
    other = RIRCache(AcousticEngine(box_room((6.0, 4.0, 2.7))), directory=tmp_path)
    other.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    assert other.simulations == 1


def test_corrupt_disk_entry_is_recomputed(tmp_path):
    cache = RIRCache(_engine(), directory=tmp_path)
    cache.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    (path,) = list(tmp_path.rglob("*.npz"))
    path.write_bytes(b"garbage")
    fresh = RIRCache(_engine(), directory=tmp_path)
    srir = fresh.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    assert fresh.simulations == 1 and np.isfinite(srir.gain).all()


def test_engine_and_cache_pickle():
    cache = RIRCache(_engine())
    cache.get((1.0, 1.0, 1.5), (3.0, 2.0, 1.5))
    clone = pickle.loads(pickle.dumps(cache))
    assert len(clone) == 1
    r = clone.get((1.0, 1.0, 1.5), (2.0, 3.0, 1.5))  # the clone's engine simulates (Embree rebuilt)
    assert clone.simulations == 2 and r.gain.shape[1] == 7


def test_cached_result_depends_on_the_key_alone():
    """Whichever position of a 1 cm cell is asked for first, the cell's RIR is the same bytes."""
    src = (1.0, 1.0, 1.5)
    first, second = (3.0032, 2.0, 1.5), (2.9968, 2.0, 1.5)  # same cell, 6.4 mm apart
    a, b = RIRCache(_engine()), RIRCache(_engine())
    ra, rb = a.get(src, first), b.get(src, second)
    assert a.key(src, first) == b.key(src, second)
    assert mono_rir(ra).tobytes() == mono_rir(rb).tobytes()
    assert np.array_equal(ra.listener, rb.listener)
