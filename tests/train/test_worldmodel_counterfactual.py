"""Counterfactual (what-if) evaluation: the simulator renders actions the data did not take."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.data.counterfactual import WHAT_IFS  # noqa: E402
from avworld.data.latent_reader import AVWLatents  # noqa: E402
from avworld.data.reader import AVWDataset  # noqa: E402
from avworld.train.worldmodel_apply import evaluate  # noqa: E402
from avworld.train.worldmodel_counterfactual import ROWS, what_if_batch  # noqa: E402
from avworld.train.worldmodel_generate import eval_items  # noqa: E402

from .worldmodel_fixtures import make_latent_data  # noqa: E402
from .worldmodel_gen_fixtures import fake_tokenizers, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def root(tok_data, tmp_path_factory):
    return make_latent_data(tok_data, tmp_path_factory.mktemp("wmcf") / "data")


def test_what_if_batch_starts_at_the_recorded_frame_and_takes_another_action(root):
    lat, pix = AVWLatents(root, "lat", split="test"), AVWDataset(root, split="test")
    items = eval_items(lat, 4, 3, max_items=3)
    batch = what_if_batch(lat, pix, items, 4, 3, worlds={})
    assert batch["frames"].shape == batch["factual_frames"].shape == (3, 4, 32, 32, 3)
    assert np.array_equal(batch["frames"][:, 0], batch["factual_frames"][:, 0])   # same frame t
    assert np.array_equal(batch["clips"][:, 0], batch["factual_clips"][:, 0])
    for j, (i, t) in enumerate(items):
        stored = pix.small(i)["action"][t]
        assert int(WHAT_IFS[str(batch["what_if"][j])]) != int(stored)            # another first action
        if batch["what_if"][j] != "forward":                                        # a turn stays in place
            assert np.allclose(batch["action"][j, :, :2], 0, atol=1e-6)
        np.testing.assert_array_equal(batch["context_rgb"][j], lat.frames(i, "rgb", slice(t - 3, t + 1)))


def test_eval_with_counterfactual_adds_what_if_tables(root, one_torch_thread):
    res = evaluate(tiny_model(), fake_tokenizers(), root, "lat", deltas=(1, 2), modes=("fixed", "rollout"),
                   steps=2, max_items=3, counterfactual=True)
    for mode in ("what-if fixed", "what-if rollout"):
        table = res["tables"][mode][2]
        assert list(table) == list(ROWS)
        assert table["world model"]["n"] == 3 and "ssim" in table["world model"]
        # the recorded future is scored against the what-if render: it is no perfect prediction
        assert table["factual future"]["ssim"]["mean"] < 1.0
    assert sum(res["config"]["what_ifs"].values()) == 3
    assert "fixed" in res["tables"] and "what-if" in " ".join(res["notes"])
