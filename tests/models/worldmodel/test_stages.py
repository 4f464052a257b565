"""Stagewise training (seed §4.2): exactly the listed groups train; stage loss masks."""

from __future__ import annotations

import dataclasses
import re

import pytest

torch = pytest.importorskip("torch")

from avworld.models.worldmodel import AVCDiT, GaussianDiffusion, StageError, stage_spec  # noqa: E402
from tests.models.worldmodel.helpers import TINY, batch, randomize  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AUDIO = r"^(audio_in|audio_pos|audio_head|reward_in|reward_pos|reward_head)\b|^blocks\.\d\.ffn_audio\."
VISUAL = r"^(rgb_in|rgb_pos|rgb_head)\b|^blocks\.\d\.ffn_visual\."


def _trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_stage_1_trains_all_but_audio_and_reward():
    model = AVCDiT(TINY)
    names = set(model.set_stage(1))
    assert names == _trainable(model) == set(model.trainable_parameter_names(1))
    everything = {n for n, _ in model.named_parameters()}
    assert names == {n for n in everything if not re.search(AUDIO, n)}
    for must in ("blocks.0.attn.q.weight", "blocks.1.cross.kv.weight", "blocks.0.ffn_visual.0.weight",
                 "rgb_in.weight", "rgb_pos", "rgb_head.linear.weight", "t_embed.mlp.0.weight",
                 "offset_embed.mlp.2.bias", "action_embed.parts.2.mlp.0.weight", "context_frame",
                 "blocks.0.adaLN.1.weight"):
        assert must in names


def test_stage_2_trains_only_audio_expert_adaptor_head_and_reward():
    model = AVCDiT(TINY)
    names = set(model.set_stage(2))
    everything = {n for n, _ in model.named_parameters()}
    assert names == _trainable(model) == {n for n in everything if re.search(AUDIO, n)}
    assert {"blocks.0.ffn_audio.0.weight", "audio_in.weight", "audio_head.linear.weight", "reward_in.weight",
            "reward_head.adaLN.1.weight"} <= names
    assert not any("attn" in n or "cross" in n or "embed" in n or re.search(VISUAL, n) for n in names)


def test_stage_3_trains_everything_and_bad_stage():
    model = AVCDiT(TINY)
    model.set_stage(2)
    assert _trainable(model.set_stage(3) and model) == {n for n, _ in model.named_parameters()}
    with pytest.raises(StageError, match="1 .vision., 2 .audio. or 3"):
        model.set_stage(4)


def test_shared_ffn_trains_in_stages_1_and_2():
    model = AVCDiT(dataclasses.replace(TINY, experts=False))
    s1, s2 = set(model.trainable_parameter_names(1)), set(model.trainable_parameter_names(2))
    ffn = {n for n, _ in model.named_parameters() if ".ffn." in n}
    assert ffn and ffn <= s1 and ffn <= s2
    assert s2 - ffn == {n for n, _ in model.named_parameters() if re.search(AUDIO, n)}


def _step(model, stage, seed=0):
    spec = stage_spec(stage)
    x, t, kw = batch(seed=seed)
    x = {k: x[k] for k in spec.target}
    kw = {**kw, "context": {k: kw["context"][k] for k in spec.context}}
    terms = GaussianDiffusion().training_losses(model, x, t, kw, mask={k: 1.0 for k in spec.loss},
                                                generator=torch.Generator().manual_seed(seed))
    terms["loss"].mean().backward()
    return terms


def test_stage_2_backward_reaches_only_the_audio_groups():
    model = randomize(AVCDiT(TINY))
    model.set_stage(2)
    terms = _step(model, 2)
    assert "mse/rgb" not in terms and {"mse/audio", "vb/reward"} <= set(terms)
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == set(model.trainable_parameter_names(2))


def test_stage_1_drops_audio_and_reward_tokens():
    """Stage 1 sequences have no audio/reward tokens: even unfrozen, their parameters get no gradient."""
    model = randomize(AVCDiT(TINY))
    terms = _step(model, 1)
    assert set(terms) == {"loss", "mse/rgb", "vb/rgb"}
    no_grad = {n for n, p in model.named_parameters() if p.grad is None}
    assert no_grad == {n for n, _ in model.named_parameters() if re.search(AUDIO, n)}


def test_stage_2_loss_ignores_the_visual_prediction():
    """The rgb tokens are in the sequence (they change the audio output) but carry no loss."""
    model = randomize(AVCDiT(TINY))
    _step(model, 2)
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("rgb_head"))
    x, t, kw = batch()
    diff = GaussianDiffusion()
    base = diff.training_losses(model, x, t, kw, mask={"audio": 1.0, "reward": 1.0},
                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(base["loss"], base["mse/audio"] + base["vb/audio"] + base["mse/reward"] + base["vb/reward"])


def test_audio_only_model_has_no_visual_tokens_and_trains_without_the_visual_groups():
    """model.visual=False: the audio half of the modality-factorized baseline (stage 3 only)."""
    model = randomize(AVCDiT(dataclasses.replace(TINY, visual=False)))
    with pytest.raises(StageError, match="--stages 3"):
        stage_spec(1, visual=False)
    spec = stage_spec(3, visual=False)
    assert spec.target == ("audio", "reward") and spec.context == ("audio",) and "rgb" not in spec.loss
    names = set(model.set_stage(3))
    assert names and not any(re.search(VISUAL, n) for n in names)
    x, t, kw = batch()
    x = {k: x[k] for k in spec.target}
    kw = {**kw, "context": {"audio": kw["context"]["audio"]}}
    terms = GaussianDiffusion().training_losses(model, x, t, kw, mask={k: 1.0 for k in spec.loss},
                                                generator=torch.Generator().manual_seed(0))
    terms["loss"].mean().backward()
    assert "mse/rgb" not in terms and {"mse/audio", "mse/reward"} <= set(terms)
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad and with_grad <= names          # nothing visual gets a gradient
    assert not any(re.search(VISUAL, n) for n in with_grad)


def test_extra_groups_unfreeze_attention_in_stage_2_and_unknown_groups_are_refused():
    model = AVCDiT(TINY)
    base = set(model.trainable_parameter_names(2))
    more = set(model.set_stage(2, extra=("shared",)))
    added = more - base
    assert base < more and any(".attn." in n or "cross" in n for n in added)
    assert not any(re.search(VISUAL, n) for n in added)           # the visual path stays frozen
    assert {n for n, p in model.named_parameters() if p.requires_grad} == more
    with pytest.raises(StageError, match="unknown parameter groups"):
        model.set_stage(2, extra=("attention",))
