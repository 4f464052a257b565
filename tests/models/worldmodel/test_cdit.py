"""AV-CDiT: shapes, adaLN-zero identity, expert routing (hooks), seeding, presets, typed errors."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from avworld.models.worldmodel import (  # noqa: E402
    AVCDiT,
    AVCDiTConfig,
    ContextLengthError,
    LatentMismatchError,
    LayoutMismatchError,
    OffsetRangeError,
    UnknownPresetError,
    WorldModelError,
    avcdit_config,
)
from tests.models.worldmodel.helpers import TINY, batch, randomize  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_output_shapes_and_zero_init_heads():
    model = AVCDiT(TINY)
    x, t, kw = batch()
    out = model(x, t, **kw)
    assert out["rgb"].shape == (3, 8, 8, 8) and out["audio"].shape == (3, 16, 6) and out["reward"].shape == (3, 2)
    assert all(torch.all(v == 0) for v in out.values())  # zero heads: eps = 0, v = 0 before training
    rgb_only = AVCDiT(dataclasses.replace(TINY, learn_sigma=False, patch_size=1))(
        {"rgb": x["rgb"]}, t, **{**kw, "context": {"rgb": kw["context"]["rgb"]}})
    assert set(rgb_only) == {"rgb"} and rgb_only["rgb"].shape == (3, 4, 8, 8)


def test_patchify_and_unpatchify_keep_latents_in_place():
    """Identity adaptor + identity head through the (untrained, identity) blocks returns the input."""
    cfg = dataclasses.replace(TINY, learn_sigma=False, width=16, heads=4)  # 4*2*2 = 16 patch values
    model = AVCDiT(cfg)
    with torch.no_grad():
        model.rgb_in.weight.copy_(torch.eye(16).view(16, 2, 2, 4).permute(0, 3, 1, 2))  # token = (p, p, C) patch
        model.rgb_pos.zero_()
        model.rgb_head.linear.weight.copy_(torch.eye(16))
        model.audio_in.weight.copy_(torch.eye(16))  # 2 frames x 8 dims per token
        model.audio_pos.zero_()
        model.audio_head.linear.weight.copy_(torch.eye(16))
    model.rgb_head.norm = model.audio_head.norm = torch.nn.Identity()
    x, t, kw = batch(cfg)
    out = model({"rgb": x["rgb"], "audio": x["audio"]}, t, **kw)
    torch.testing.assert_close(out["rgb"], x["rgb"])
    torch.testing.assert_close(out["audio"], x["audio"])


def test_untrained_block_is_identity_on_the_residual_stream():
    model = AVCDiT(TINY)
    g = torch.Generator().manual_seed(0)
    x, ctx, c = (torch.randn(2, 29, 32, generator=g), torch.randn(2, 28, 32, generator=g),
                 torch.randn(2, 32, generator=g))
    for block in model.blocks:
        torch.testing.assert_close(block(x, ctx, c, 16), x, rtol=0, atol=0)
    randomize(model)  # the identity comes from adaLN-zero, not from a dead block
    assert not torch.allclose(model.blocks[0](x, ctx, c, 16), x)


def _rows_seen(model, x, t, kw):
    seen = {}

    def hook(name):
        return lambda mod, args, out: seen.__setitem__(name, seen.get(name, 0) + args[0].shape[0] * args[0].shape[1])

    handles = [getattr(b, n).register_forward_hook(hook(f"{i}.{n}")) for i, b in enumerate(model.blocks)
               for n in ("ffn_visual", "ffn_audio") if hasattr(b, n)]
    model(x, t, **kw)
    for h in handles:
        h.remove()
    return seen


def test_expert_routing_counts_rows_per_expert():
    model = randomize(AVCDiT(TINY))
    x, t, kw = batch()
    n_vis, n_aud = TINY.visual_tokens, TINY.audio_tokens  # 16 visual, 3 audio tokens (+1 reward)
    seen = _rows_seen(model, x, t, kw)
    for i in range(TINY.depth):
        assert seen[f"{i}.ffn_visual"] == 3 * n_vis
        assert seen[f"{i}.ffn_audio"] == 3 * (n_aud + 1)  # audio tokens AND the reward token
    # no visual token in the sequence: the visual expert is never called, and vice versa
    seen = _rows_seen(model, {"audio": x["audio"], "reward": x["reward"]}, t, kw)
    assert not any("visual" in k for k in seen) and seen["0.ffn_audio"] == 3 * (n_aud + 1)
    seen = _rows_seen(model, {"rgb": x["rgb"]}, t, kw)
    assert not any("audio" in k for k in seen) and seen["0.ffn_visual"] == 3 * n_vis


def test_expert_outputs_depend_only_on_their_tokens():
    """Swapping the audio expert changes only the audio/reward outputs of the FFN residual."""
    model = randomize(AVCDiT(TINY))
    block = model.blocks[0]
    g = torch.Generator().manual_seed(3)
    x, ctx = torch.randn(2, 20, 32, generator=g), torch.randn(2, 28, 32, generator=g)
    c = torch.randn(2, 32, generator=g)
    before = block(x, ctx, c, 16)
    with torch.no_grad():
        for p in block.ffn_audio.parameters():
            p.add_(1.0)
    after = block(x, ctx, c, 16)
    torch.testing.assert_close(after[:, :16], before[:, :16])
    assert not torch.allclose(after[:, 16:], before[:, 16:])


def test_shared_ffn_ablation_has_no_experts():
    model = AVCDiT(dataclasses.replace(TINY, experts=False))
    assert all(hasattr(b, "ffn") and not hasattr(b, "ffn_audio") for b in model.blocks)
    x, t, kw = batch()
    assert model(x, t, **kw)["audio"].shape == (3, 16, 6)


def test_seeded_construction_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = AVCDiT(TINY, seed=5), AVCDiT(TINY, seed=5), AVCDiT(TINY, seed=6)
    torch.testing.assert_close(torch.rand(3), expected)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["rgb_pos"], sc["rgb_pos"])


def test_presets():
    assert (avcdit_config("S").depth, avcdit_config("S").width, avcdit_config("B").width) == (12, 384, 768)
    tiny = avcdit_config("cpu-tiny")
    assert tiny.visual_tokens == 16 and tiny.audio_tokens == 20 and avcdit_config("cpu-tiny", depth=2).depth == 2
    with pytest.raises(UnknownPresetError, match="cpu-tiny"):
        avcdit_config("XL")


@pytest.mark.parametrize("bad", [dict(patch_size=3), dict(audio_patch=7), dict(heads=5), dict(width=0),
                                 dict(reward_tokens=0)])
def test_bad_config(bad):
    with pytest.raises(WorldModelError):
        AVCDiTConfig(**{**dataclasses.asdict(TINY), **bad})


def test_typed_input_errors():
    model = AVCDiT(TINY)
    x, t, kw = batch()
    short = batch(k=3)[2]["context"]
    with pytest.raises(ContextLengthError, match="k=4"):
        model(x, t, **{**kw, "context": short})
    with pytest.raises(ContextLengthError, match="k=4"):
        model(x, t, **{**kw, "context": {"rgb": kw["context"]["rgb"][:, 0]}})
    other = batch(dataclasses.replace(TINY, rgb_channels=8, rgb_size=4))[0]["rgb"]  # another tokenizer's latents
    with pytest.raises(LatentMismatchError, match="rgb_channels=4, rgb_size=8"):
        model({**x, "rgb": other}, t, **kw)
    with pytest.raises(LatentMismatchError, match="audio_dim=8"):
        model({**x, "audio": torch.randn(3, 64, 6)}, t, **kw)
    with pytest.raises(LatentMismatchError, match="rgb_channels"):
        model(x, t, **{**kw, "context": {**kw["context"], "rgb": torch.randn(3, 4, 3, 8, 8)}})
    with pytest.raises(OffsetRangeError, match=r"\[-16, 16\]"):
        model(x, t, **{**kw, "offset": torch.tensor([0, 17, 1])})
    with pytest.raises(WorldModelError, match="integer"):
        model(x, t, **{**kw, "offset": torch.zeros(3)})
    with pytest.raises(WorldModelError, match="reward"):
        AVCDiT(dataclasses.replace(TINY, reward_token=False))(x, t, **kw)
    with pytest.raises(WorldModelError, match="subset"):
        model({"depth": x["rgb"]}, t, **kw)


def test_state_dict_of_another_layout():
    state = AVCDiT(dataclasses.replace(TINY, experts=False)).state_dict()
    with pytest.raises(LayoutMismatchError, match="experts=True.*ffn_audio"):
        AVCDiT(TINY).load_state_dict(state)
    with pytest.raises(LayoutMismatchError, match="shapes.*rgb_in.weight"):
        AVCDiT(TINY).load_state_dict(AVCDiT(dataclasses.replace(TINY, patch_size=1)).state_dict())
    model = AVCDiT(TINY, seed=1)
    model.load_state_dict(AVCDiT(TINY, seed=2).state_dict())
    assert torch.equal(model.rgb_pos, AVCDiT(TINY, seed=2).rgb_pos)
