"""Deterministic train/val/test splits of sound clips and of sound types.

The active audio-visual dynamic-separation paper (seed 002) evaluates two settings, both
in scenes unseen during training:

* **heard** sounds: the agent is tested on the same monaural clips it trained on (only
  the scenes are new) - :func:`split_clips` with ``protocol="heard"`` puts every clip in
  every split;
* **unheard** sounds: the long clips of every sound type are split into non-overlapping
  train / val / test sets in the ratio 18:3:4 (:data:`PAPER_RATIOS`), so test clips were
  never heard in training, though their *types* (speakers, instruments) were -
  ``protocol="unheard"`` (the default). The split is stratified per type: with 25 clips
  per type (the built-in bank's default) every type contributes exactly 18/3/4 clips.

:func:`split_types` splits the types themselves (e.g. speakers never heard at all during
training), a stricter protocol than the paper's.

Splits depend only on ``seed`` and the type names / clip counts, never on the order of
the types or on the other types present.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from avworld.sounds.registry import SoundError, SoundSource, seeded_rng

PAPER_RATIOS = (18, 3, 4)
PROTOCOLS = ("unheard", "heard")


def _split_names(ratios: Sequence[float], names: Sequence[str] | None) -> tuple[str, ...]:
    if names is not None:
        if len(names) != len(ratios) or len(set(names)) != len(names):
            raise SoundError(f"need one distinct split name per ratio, got names {names!r} for ratios {ratios!r}")
        return tuple(names)
    defaults = {2: ("train", "val"), 3: ("train", "val", "test")}
    return defaults.get(len(ratios), tuple(f"split{k}" for k in range(len(ratios))))


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """``n`` items shared out in proportion to ``ratios`` (largest remainder; the first split gets >= 1)."""
    r = np.asarray(ratios, dtype=float)
    if r.ndim != 1 or r.size < 1 or not np.all(np.isfinite(r)) or np.any(r < 0) or r.sum() <= 0:
        raise SoundError(f"ratios must be non-negative numbers with a positive sum, e.g. (18, 3, 4); got {ratios!r}")
    exact = n * r / r.sum()
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    if n > 0 and counts[0] == 0 and r[0] > 0:  # never leave training without a clip of a type
        donor = int(np.argmax(counts))
        counts[donor] -= 1
        counts[0] += 1
    return counts.tolist()


def split_clips(source: SoundSource, ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0,
                types: Sequence[str] | None = None, protocol: str = "unheard",
                split_names: Sequence[str] | None = None) -> dict[str, list[tuple[str, int]]]:
    """``{"train": [(type, clip index), ...], "val": [...], "test": [...]}`` over ``types`` (default: all).

    ``protocol="unheard"``: each type's clips are shuffled (seeded by ``seed`` and the type
    name) and cut in proportion to ``ratios``; every clip lands in exactly one split.
    ``protocol="heard"``: every split holds every clip (train and test share clips).
    """
    if protocol not in PROTOCOLS:
        raise SoundError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    names = _split_names(ratios, split_names)
    split_counts(1, ratios)  # validates the ratios
    out: dict[str, list[tuple[str, int]]] = {s: [] for s in names}
    for name in source.names() if types is None else types:
        source.get(name)  # unknown names raise UnknownSoundError
        n = source.num_clips(name)
        if protocol == "heard":
            for s in names:
                out[s] += [(name, i) for i in range(n)]
            continue
        order = seeded_rng(seed, name, "split").permutation(n)
        start = 0
        for s, c in zip(names, split_counts(n, ratios)):
            out[s] += [(name, int(i)) for i in sorted(order[start : start + c])]
            start += c
    return out


def split_types(types: Sequence[str], ratios: Sequence[float] = PAPER_RATIOS, seed: int = 0,
                split_names: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Type names shared out into disjoint splits (types unheard in training), in proportion to ``ratios``.

    The assignment depends only on ``seed`` and the set of names (not their order).
    """
    names = _split_names(ratios, split_names)
    uniq = sorted(set(types))
    if len(uniq) != len(types):
        raise SoundError("type names must be distinct")
    keys = np.array([seeded_rng(seed, t, "type_split").random() for t in uniq])
    ordered = [uniq[i] for i in np.argsort(keys, kind="stable")]
    out, start = {}, 0
    for s, c in zip(names, split_counts(len(ordered), ratios)):
        out[s] = sorted(ordered[start : start + c])
        start += c
    return out
