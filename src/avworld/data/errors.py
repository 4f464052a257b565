"""Typed errors of the dataset package; each message names the problem and the fix."""

from __future__ import annotations


class DataError(ValueError):
    """Base class of every dataset error (a ``ValueError``: the CLI prints it and exits 2)."""


class DatasetConfigError(DataError):
    """A dataset or trajectory configuration value is invalid."""


class TrajectorySamplingError(DataError):
    """No valid trajectory (or source position) could be drawn in a scene."""


class ManifestError(DataError):
    """A dataset directory has no usable manifest, or one built with another configuration."""


class CorruptShardError(DataError):
    """A shard file is missing, truncated, modified or unreadable."""


class CorruptChunkError(CorruptShardError):
    """A stored chunk of a field of a trajectory fails its checksum or cannot be read.

    ``shard`` (the file), ``trajectory`` (index in the dataset or split), ``field`` and ``frame``
    (within the trajectory) say where; all are optional so that the error can be rebuilt from
    its message alone (PyTorch's DataLoader re-raises a worker's error as ``type(message)``).
    """

    def __init__(self, message: str, *, shard: str | None = None, trajectory: int | None = None,
                 field: str | None = None, frame: int | None = None) -> None:
        super().__init__(message)
        self.shard, self.trajectory, self.field, self.frame = shard, trajectory, field, frame


class OrphanShardsError(ManifestError):
    """A folder holds shard files but no manifest (a build interrupted before its first shard
    was recorded, or a deleted manifest): the shards cannot be checked, so they are not used."""


class IncompleteDatasetError(DataError):
    """The dataset's generation has not finished: some shards are still missing."""
