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


class IncompleteDatasetError(DataError):
    """The dataset's generation has not finished: some shards are still missing."""
