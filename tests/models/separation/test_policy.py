"""The separation motion policy: three encoders -> GRU 512 -> actor-critic."""

import torch

from avworld.models.separation import SeparationPolicy, SeparationPolicyConfig

SHAPES = {"rgb": (64, 64, 3), "sep_binaural": (32, 32, 32), "sep_mono": (16, 32, 32)}


def _obs(n, lead=()):
    return {"rgb": torch.randint(0, 255, (*lead, n, 64, 64, 3), dtype=torch.uint8),
            "sep_binaural": torch.rand(*lead, n, 32, 32, 32), "sep_mono": torch.rand(*lead, n, 16, 32, 32)}


def test_act_and_evaluate_shapes():
    pol = SeparationPolicy(SeparationPolicyConfig(), SHAPES, 3)
    assert pol.obs_keys == ("rgb", "sep_binaural", "sep_mono")
    assert pol.config.hidden_size == 512 and pol.feature_size == 3 * 512
    h = pol.initial_state(4)
    out = pol.act(_obs(4), h, torch.ones(4, dtype=torch.bool), generator=torch.Generator().manual_seed(0))
    assert out.action.shape == (4,) and int(out.action.max()) < 3
    lp, v, ent, _ = pol.evaluate_actions(_obs(4, (5,)), h, torch.zeros(5, 4, dtype=torch.bool),
                                         torch.zeros(5, 4, dtype=torch.long))
    assert lp.shape == v.shape == ent.shape == (5, 4)


def test_every_encoder_matters_and_zero_visual_blinds():
    torch.manual_seed(0)
    pol = SeparationPolicy(SeparationPolicyConfig(hidden_size=32), SHAPES, 3)
    h, start = pol.initial_state(2), torch.ones(2, dtype=torch.bool)
    base = _obs(2)
    v0 = pol.get_value(base, h, start)
    for k in SHAPES:
        o = dict(base)
        o[k] = torch.zeros_like(base[k])
        assert not torch.allclose(pol.get_value(o, h, start), v0), k
    blind = SeparationPolicy(SeparationPolicyConfig(hidden_size=32, zero_visual=True), SHAPES, 3)
    o = dict(base)
    o["rgb"] = torch.zeros_like(base["rgb"])
    assert torch.allclose(blind.get_value(o, h, start), blind.get_value(base, h, start))
