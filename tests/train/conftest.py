"""A tiny AVW dataset (32x32 frames) shared by the tokenizer tests of this folder."""

from __future__ import annotations

from dataclasses import replace

import pytest

from avworld.data.generate import build_dataset
from tests.data.conftest import tiny_config


@pytest.fixture(scope="session")
def tok_data(tmp_path_factory):
    """Root of a 3-scene dataset (train / val / test one scene each), 32x32 frames, <= 16 frames per trajectory."""
    root = tmp_path_factory.mktemp("tok") / "tiny"
    build_dataset(root, replace(tiny_config(depth=False, image_size=32, max_frames=16), num_scenes=3), workers=1)
    return root
