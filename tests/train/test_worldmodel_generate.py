"""World-model generation: rollout feeds predictions back, seeded determinism, typed errors, decoding."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from avworld.data.latent_reader import AVWLatents  # noqa: E402
from avworld.data.poses import compose  # noqa: E402
from avworld.data.reader import AVWDataset  # noqa: E402
from avworld.models.worldmodel import ContextLengthError, OffsetRangeError  # noqa: E402
from avworld.models.worldmodel.generate import GenerationError, fixed_step, rollout  # noqa: E402
from avworld.train.worldmodel_checkpoint import TokenizerIdentityError  # noqa: E402
from avworld.train.worldmodel_generate import (  # noqa: E402
    check_latents,
    check_tokenizers,
    eval_items,
    generate,
    item_batch,
)

from .worldmodel_fixtures import OTHER_IDENTITY, make_latent_data  # noqa: E402
from .worldmodel_gen_fixtures import fake_tokenizers, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def root(tok_data, tmp_path_factory):
    return make_latent_data(tok_data, tmp_path_factory.mktemp("wmgen") / "data")


def _ctx(b=2, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"rgb": torch.randn(b, k, 4, 4, 4, generator=g), "audio": torch.randn(b, k, 3, 20, generator=g)}


def test_rollout_feeds_each_prediction_back_into_the_context(one_torch_thread):
    model = tiny_model()
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args, kw: seen.append({n: x.clone() for n, x in
                                                                            kw["context"].items()}), with_kwargs=True)
    ctx = _ctx()
    out = rollout(model, ctx, torch.zeros(2, 3, 3), steps=2, seed=1)
    hook.remove()
    assert out["rgb"].shape == (2, 3, 4, 4, 4) and out["audio"].shape == (2, 3, 3, 20)
    assert out["reward"].shape == out["reward_cum"].shape == (2, 3)
    assert torch.allclose(out["reward_cum"], out["reward"].cumsum(1))
    assert len(seen) == 6  # 3 steps x 2 denoising steps
    first, second, third = seen[0], seen[2], seen[4]
    for n in ("rgb", "audio"):
        assert torch.equal(first[n], ctx[n])
        assert torch.equal(second[n][:, :3], ctx[n][:, 1:])  # oldest dropped
        assert torch.equal(second[n][:, 3], out[n][:, 0])  # the first prediction is the newest context frame
        assert torch.equal(third[n][:, 2:], out[n][:, :2])
    assert not torch.equal(out["rgb"][:, 0], out["rgb"][:, 1])


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_same_seed_same_prediction_other_seed_another(sampler, one_torch_thread):
    model, ctx, act = tiny_model(), _ctx(), torch.tensor([[0.25, 0.0, 0.0], [0.0, 0.0, 0.5]])
    a = fixed_step(model, ctx, 3, act, sampler=sampler, steps=3, seed=5)
    b = fixed_step(model, ctx, 3, act, sampler=sampler, steps=3, seed=5)
    c = fixed_step(model, ctx, 3, act, sampler=sampler, steps=3, seed=6)
    assert set(a) == {"rgb", "audio", "reward"} and a["reward"].shape == (2,)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["rgb"], c["rgb"])
    r1, r2 = (rollout(model, ctx, act[:, None].repeat(1, 2, 1), sampler=sampler, steps=2, seed=3) for _ in range(2))
    assert all(torch.equal(r1[k], r2[k]) for k in r1)


def test_stage1_model_predicts_images_from_image_context_only(one_torch_thread):
    model = tiny_model(stage=1)
    out = fixed_step(model, {"rgb": _ctx()["rgb"]}, 1, torch.zeros(2, 3), steps=2)
    assert set(out) == {"rgb"}


def test_typed_errors(one_torch_thread):
    model, ctx = tiny_model(max_offset=4), _ctx()
    with pytest.raises(OffsetRangeError, match=r"outside 1 \.\. 4.*max_offset=4"):
        fixed_step(model, ctx, 5, torch.zeros(2, 3), steps=2)
    with pytest.raises(OffsetRangeError):
        fixed_step(model, ctx, 0, torch.zeros(2, 3), steps=2)
    with pytest.raises(OffsetRangeError, match="outside 1 .. 16"):
        fixed_step(tiny_model(), ctx, 17, torch.zeros(2, 3), steps=2)
    short = {n: x[:, :2] for n, x in ctx.items()}
    with pytest.raises(ContextLengthError, match="k=4"):
        fixed_step(model, short, 1, torch.zeros(2, 3), steps=2)
    with pytest.raises(ContextLengthError, match="k=4"):
        rollout(model, short, torch.zeros(2, 2, 3), steps=2)
    with pytest.raises(GenerationError, match="sampler"):
        fixed_step(model, ctx, 1, torch.zeros(2, 3), sampler="euler")
    with pytest.raises(GenerationError, match="lacks audio"):
        fixed_step(model, {"rgb": ctx["rgb"]}, 1, torch.zeros(2, 3))
    with pytest.raises(GenerationError, match=r"\(B, n >= 1, 3\)"):
        rollout(model, ctx, torch.zeros(2, 3))


def test_tokenizer_identity_is_checked(root):
    model = tiny_model()
    model.checkpoint_info = {"latents": {"name": "lat", "identity": AVWLatents(root, "lat").latent_manifest[
        "identity"]}, "path": "x.pt"}
    check_tokenizers(model, fake_tokenizers())
    check_latents(model, root, "lat")
    with pytest.raises(TokenizerIdentityError, match="image tokenizer.*cccccccccccc.*--image"):
        check_tokenizers(model, fake_tokenizers(OTHER_IDENTITY))
    with pytest.raises(TokenizerIdentityError):
        check_latents(model, root, "other")


def test_items_batch_and_decoded_generation(root, one_torch_thread):
    lat, pix = AVWLatents(root, "lat", split="test"), AVWDataset(root, split="test")
    items = eval_items(lat, 4, 3, max_items=3)
    assert len(items) == 3 and all(t >= 3 and t + 3 < lat.trajectories[i].length for i, t in items)
    batch = item_batch(lat, pix, items, 4, 3)
    assert batch["context_rgb"].shape == (3, 4, 4, 4, 4) and batch["true_audio"].shape == (3, 3, 3, 20)
    assert batch["frames"].shape == (3, 4, 32, 32, 3) and batch["frames"].dtype == np.uint8
    assert batch["clips"].shape == (3, 4, 2, 2400)
    for j in range(3):  # composing the per-step actions gives the aggregated action t -> t + 3
        acc = batch["step_action"][j, 0].astype(np.float64)
        for s in range(1, 3):
            acc = compose(acc, batch["step_action"][j, s])
        np.testing.assert_allclose(acc, batch["action"][j, 2], atol=1e-5)
    model = tiny_model()
    for mode in ("fixed", "rollout"):
        res = generate(model, batch, mode, [1, 3], steps=2, seed=0, tokenizers=fake_tokenizers())
        assert sorted(res) == [1, 3]
        assert res[3]["frames"].shape == (3, 32, 32, 3) and res[3]["frames"].dtype == np.uint8
        assert res[3]["clips"].shape == (3, 2, 2400) and res[3]["reward"].shape == (3,)
    with pytest.raises(GenerationError, match="deltas"):
        generate(model, batch, "fixed", [0, 17])
    with pytest.raises(GenerationError, match="no trajectory"):
        eval_items(lat, 4, 400)
