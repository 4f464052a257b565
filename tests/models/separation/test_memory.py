"""The acoustic memories: identity at initialisation, the t-E..t window, Eq. 2."""

import pytest
import torch

from avworld.models.separation import (
    MemoryConfig,
    MemoryConfigError,
    NoMemory,
    RecurrentRefiner,
    TransformerMemory,
    build_memory,
    sequence_loss,
    sinusoidal_encoding,
)

SMALL = MemoryConfig(memory_size=5, refine_past=3, token_channels=4, layers=1, heads=2, ff_size=32)


def _perturb(module: torch.nn.Module, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def _run(memory, passive: torch.Tensor):
    """Step through (N, T, 16, 32, 32) passive estimates; yields every MemoryStep."""
    n, t_len = passive.shape[:2]
    state = memory.initial_state(n, "cpu")
    outs = []
    for t in range(t_len):
        out = memory.step(passive[:, t], torch.full((n,), t), state, torch.full((n,), t == 0))
        state = out.state
        outs.append(out)
    return outs


def test_the_seeds_sizes():
    mem = TransformerMemory(MemoryConfig())
    assert mem.dim == 1024 and len(mem.transformer.layers) == 2
    layer = mem.transformer.layers[0]
    assert layer.norm_first and layer.self_attn.num_heads == 8 and layer.linear1.out_features == 1024
    assert MemoryConfig().memory_size == 19 and MemoryConfig().refine_past == 14


@pytest.mark.parametrize("e", [0, 3])
def test_untrained_memory_returns_the_passive_estimates(e):
    mem = TransformerMemory(MemoryConfig(memory_size=5, refine_past=e, token_channels=4, layers=1, heads=2,
                                         ff_size=32)).eval()
    passive = torch.rand(2, 6, 16, 32, 32)
    for t, out in enumerate(_run(mem, passive)):
        for j in range(e + 1):
            u = t - e + j
            if u >= 0:
                assert torch.allclose(out.estimates[:, j], passive[:, u], atol=1e-5)


def test_e0_reports_only_the_current_step_and_never_revises_the_past():
    cfg = MemoryConfig(memory_size=5, refine_past=0, token_channels=4, layers=1, heads=2, ff_size=32)
    mem = TransformerMemory(cfg).eval()
    _perturb(mem)
    passive = torch.rand(1, 4, 16, 32, 32)
    outs = _run(mem, passive)
    for t, out in enumerate(outs):
        assert out.estimates.shape[1] == 1 and out.steps.tolist() == [[t]] and out.valid.all()
    # the memory's state holds the passive estimates (not its outputs): E = 0 feeds nothing back
    assert torch.equal(outs[-1].state["bank"][0, -4:], passive[0])


def test_refined_past_steps_are_t_minus_e_to_t_and_only_those():
    mem = TransformerMemory(SMALL).eval()
    _perturb(mem)
    passive = torch.rand(2, 8, 16, 32, 32)
    outs = _run(mem, passive)
    e = SMALL.refine_past
    for t, out in enumerate(outs):
        assert out.steps[0].tolist() == list(range(t - e, t + 1))
        assert out.valid[0].tolist() == [u >= 0 for u in range(t - e, t + 1)]
    # a trained memory revises past steps: the estimate of step 4 made at step 7 differs from the one at step 4
    assert not torch.allclose(outs[7].estimates[:, 0], outs[4].estimates[:, -1])
    # and the revision depends on the later passive estimates (bi-directional attention)
    other = passive.clone()
    other[:, 7] = torch.rand(2, 16, 32, 32)
    assert not torch.allclose(_run(mem, other)[7].estimates[:, 0], outs[7].estimates[:, 0])


def test_reset_starts_a_new_episode_per_env():
    mem = TransformerMemory(SMALL).eval()
    _perturb(mem)
    a, b = torch.rand(1, 16, 32, 32), torch.rand(1, 16, 32, 32)
    state = mem.initial_state(1, "cpu")
    state = mem.step(a, torch.tensor([0]), state, torch.tensor([True])).state
    fresh = mem.step(b, torch.tensor([0]), state, torch.tensor([True]))
    alone = mem.step(b, torch.tensor([0]), mem.initial_state(1, "cpu"), torch.tensor([True]))
    assert torch.allclose(fresh.estimates, alone.estimates, atol=1e-6)
    assert fresh.state["valid"].sum().item() == 1


def test_config_checks():
    with pytest.raises(MemoryConfigError, match="refine_past"):
        MemoryConfig(memory_size=3, refine_past=5)
    with pytest.raises(MemoryConfigError, match="kind"):
        MemoryConfig(kind="lstm")


def test_sinusoidal_encoding_closed_form():
    pe = sinusoidal_encoding(torch.tensor([0, 3]), 8)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 1]))
    assert pe[1, 0].item() == pytest.approx(torch.sin(torch.tensor(3.0)).item(), abs=1e-6)
    assert pe[1, 3].item() == pytest.approx(torch.cos(torch.tensor(3 * 10000 ** (-2 / 8))).item(), abs=1e-6)


@pytest.mark.parametrize("kind", ["transformer", "recurrent", "none"])
def test_eq2_of_an_identity_memory_is_the_mean_passive_error(kind):
    cfg = MemoryConfig(kind=kind, memory_size=5, refine_past=2, token_channels=4, layers=1, heads=2, ff_size=32)
    mem = build_memory(cfg).eval()
    passive, target = torch.rand(2, 5, 16, 32, 32), torch.rand(2, 5, 16, 32, 32)
    err = (passive - target).abs().mean(dim=(2, 3, 4))  # (B, T)
    w = cfg.window
    expect = torch.stack([err[:, max(0, t - w + 1): t + 1].mean(1) for t in range(5)], 1).mean()
    assert sequence_loss(mem, passive, target).item() == pytest.approx(expect.item(), rel=1e-4)


def test_eq2_trains_the_memory():
    torch.manual_seed(0)
    for mem in (TransformerMemory(SMALL), RecurrentRefiner(MemoryConfig(kind="recurrent", refiner_channels=8))):
        passive = torch.rand(2, 6, 16, 32, 32)
        target = passive * 0.5
        opt = torch.optim.Adam(mem.parameters(), lr=3e-3)
        first = sequence_loss(mem, passive, target)
        for _ in range(30):
            loss = sequence_loss(mem, passive, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.5 * first.item()
    assert list(NoMemory().parameters()) == []
