"""The world model shipped in the package: loads by name, is small, decodes with the shipped tokenizers."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from avworld.models.worldmodel.generate import fixed_step  # noqa: E402
from avworld.train.tokenizer_apply import identity_of  # noqa: E402
from avworld.train.tokenizer_checkpoint import load_tokenizer  # noqa: E402
from avworld.train.worldmodel_checkpoint import (  # noqa: E402
    SHIPPED,
    SHIPPED_DIR,
    WorldModelCheckpointError,
    load_worldmodel,
)


def test_shipped_world_model_loads_by_name_and_matches_the_shipped_tokenizers(one_torch_thread):
    path = SHIPPED_DIR / SHIPPED["cpu-tiny"]
    assert path.is_file(), f"{path} missing: the package must ship its cpu-tiny world model"
    assert path.stat().st_size < 8e6
    model = load_worldmodel("cpu-tiny")
    info = model.checkpoint_info
    assert info["exported"]["half"] is True and model.stage == 3 and info["stages"] == [1, 2, 3]
    assert model.config.experts and model.config.visual
    # its latents were made by the shipped tokenizers, so its predictions decode with them
    recorded = info["latents"]["identity"]
    for kind in ("image", "audio"):
        assert recorded[kind]["sha256"] == identity_of(load_tokenizer(kind))["sha256"], kind
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    ctx = {"rgb": torch.randn(2, 4, cfg.rgb_channels, cfg.rgb_size, cfg.rgb_size, generator=g),
           "audio": torch.randn(2, 4, cfg.audio_dim, cfg.audio_frames, generator=g)}
    out = fixed_step(model, ctx, 4, torch.zeros(2, 3), steps=2, seed=0)
    assert out["rgb"].shape == (2, 4, 8, 8) and out["audio"].shape == (2, 64, 20) and out["reward"].shape == (2,)
    assert torch.isfinite(out["rgb"]).all()


def test_an_unknown_name_or_missing_file_is_a_typed_error(tmp_path):
    with pytest.raises(WorldModelCheckpointError, match="no such world-model checkpoint.*'cpu-tiny'"):
        load_worldmodel(str(tmp_path / "nope.pt"))
