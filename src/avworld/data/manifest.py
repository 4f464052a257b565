"""The dataset manifest (``manifest.json``): config, scenes, split, shards, checksums, statistics.

::

    {"format": "avworld-avw-dataset", "version": 1, "name": ..., "config": {DatasetConfig},
     "config_hash": ..., "sim_config": {the SimConfig of every recording},
     "scenes": [{"index", "spec", "split"}], "splits": {"train": [scene indices], ...},
     "shards": [{"id", "path", "split", "scene_index", "scene", "trajectories", "status",
                 "sha256", "bytes", "chunk_checksums", "scene_hash", "source_position", "table", "stats"}],
     "complete": bool, "totals": {"all": {...}, "train": {...}, "val": {...}, "test": {...}}}

``status`` is ``pending`` until the shard's file is finished and checked. The manifest
is rewritten atomically after every finished shard.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from avworld.data.config import PATTERNS, DatasetConfig
from avworld.data.errors import IncompleteDatasetError, ManifestError, OrphanShardsError
from avworld.data.plan import SPLITS, scene_specs, scene_splits, shard_specs

MANIFEST_FORMAT = "avworld-avw-dataset"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: The file name of a finished shard (see :func:`~avworld.data.plan.shard_specs`).
SHARD_NAME = re.compile(r"^(train|val|test)-s\d{4,}-p\d{2,}\.h5$")


def new_manifest(config: DatasetConfig) -> dict:
    """The manifest of a dataset about to be built: every shard pending."""
    sim = config.trajectory.sim_config()
    split_of = {i: s for s, idx in scene_splits(config).items() for i in idx}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "name": config.name,
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "sim_config": json.loads(json.dumps(asdict(sim), default=float)),
        "scenes": [{"index": i, "spec": s, "split": split_of[i]} for i, s in enumerate(scene_specs(config))],
        "splits": scene_splits(config),
        "shards": [{**spec.to_dict(), "status": "pending"} for spec in shard_specs(config)],
        "complete": False,
        "totals": {},
        # what a shard's bytes depend on besides the config (the chunks' deflate streams)
        "software": _software(),
    }


def _software() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("avworld", "isal", "h5py", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def manifest_path(root: str | Path) -> Path:
    root = Path(root)
    return root if root.suffix == ".json" else root / MANIFEST_NAME


def orphan_shards(root: str | Path) -> list[Path]:
    """The shard files under ``root/shards`` (or directly in ``root``), sorted: the shards of a
    dataset, or orphans where ``root`` has no manifest."""
    root = Path(root)
    found = []
    for folder in (root / "shards", root):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if SHARD_NAME.match(p.name) and p.is_file()]
    return sorted(found)


def orphans_message(root: Path, orphans: list[Path]) -> str:
    """What a folder holding shards but no manifest is, and what to do."""
    where = "shards/" if orphans[0].parent == root / "shards" else "it"
    if where == "it" and (root.parent / MANIFEST_NAME).exists():
        return (f"{root} holds {len(orphans)} shard file(s) but no manifest: it looks like the shards/ folder of "
                f"the dataset {root.parent}; pass that folder instead")
    return (f"{root} has no {MANIFEST_NAME} but {where} holds {len(orphans)} orphan shard file(s) (e.g. "
            f"{orphans[0].name}): the shards of a dataset whose manifest was deleted or never written. Without "
            "the manifest their checksums and configuration cannot be checked, so they are not used; rebuild "
            f"the dataset with `avworld data make ... --out {root} --rebuild` (it deletes the orphans), or "
            "restore the manifest")


def load_manifest(root: str | Path) -> dict:
    """Read and check ``root/manifest.json`` (``root`` may also be the file itself); a folder
    holding shards but no manifest raises :class:`~avworld.data.errors.OrphanShardsError`."""
    path = manifest_path(root)
    if not path.exists():
        orphans = orphan_shards(path.parent)
        if orphans:
            raise OrphanShardsError(orphans_message(path.parent, orphans))
        raise ManifestError(f"{path} does not exist: {Path(root)} is not an AVW dataset; build one with "
                            "`avworld data make --preset avw-tiny --out DIR`")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc}); delete it and rerun `avworld data make` with "
                            "the same --out (finished shards are checked and kept only if they match)") from None
    if not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"{path} is not an AVW dataset manifest (format {m.get('format')!r}, expected "
                            f"{MANIFEST_FORMAT!r})")
    if m.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"{path} has manifest version {m.get('version')}; this avworld reads version "
                            f"{MANIFEST_VERSION}: regenerate the dataset with this version")
    return m


def save_manifest(root: str | Path, manifest: dict) -> Path:
    """Write the manifest atomically (a reader never sees half a file)."""
    path = manifest_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def config_of(manifest: dict) -> DatasetConfig:
    return DatasetConfig.from_dict(manifest["config"])


def _sum(shards: list[dict], step_s: float) -> dict:
    stats = [s["stats"] for s in shards if s.get("status") == "done"]
    frames = sum(s["frames"] for s in stats)
    trajs = sum(s["trajectories"] for s in stats)
    size = sum(s["bytes"] for s in stats)
    return {
        "shards": len(stats),
        "trajectories": trajs,
        "frames": frames,
        "hours": frames * step_s / 3600.0,
        "bytes": size,
        "bytes_per_frame": size / frames if frames else 0.0,
        "length_mean": frames / trajs if trajs else 0.0,
        "patterns": {p: sum(s["patterns"][p] for s in stats) for p in PATTERNS},
        "scenes": len({sh["scene_index"] for sh in shards if sh.get("status") == "done"}),
    }


def compute_totals(manifest: dict) -> dict:
    """Statistics over the finished shards: all, and per split."""
    step_s = float(manifest["sim_config"]["step_s"])
    shards = manifest["shards"]
    out = {"all": _sum(shards, step_s)}
    for split in SPLITS:
        out[split] = _sum([s for s in shards if s["split"] == split], step_s)
    return out


def require_complete(manifest: dict, root: str | Path) -> None:
    done = sum(s.get("status") == "done" for s in manifest["shards"])
    if done < len(manifest["shards"]):
        raise IncompleteDatasetError(
            f"dataset {root} is incomplete ({done} of {len(manifest['shards'])} shards built); rerun "
            f"`avworld data make` with the same --out to finish it (finished shards are kept), or open it "
            "with allow_incomplete=True to use the finished shards only"
        )
