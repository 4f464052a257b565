"""Checkpoints: bit-identical resume, logs without duplicates, clear errors for corrupt or foreign files."""

from __future__ import annotations

import csv

import pytest

torch = pytest.importorskip("torch")

from avworld.train.checkpoint import (  # noqa: E402
    CheckpointError,
    CorruptCheckpointError,
    build_from_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from avworld.train.config import PPOConfig, TrainConfigError  # noqa: E402
from avworld.train.toy import make_toy_trainer  # noqa: E402

PPO = {"num_envs": 4, "num_steps": 16, "checkpoint_every": 1, "keep_checkpoints": 10}
STEPS = 6 * 4 * 16  # six updates


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _params(policy) -> list:
    return [p.detach().clone() for p in policy.parameters()]


@pytest.mark.parametrize("agent", ["agsa"])
def test_resume_continues_bit_identically(tmp_path, agent):
    full = make_toy_trainer(agent, STEPS, seed=3, out_dir=tmp_path / "full", ppo=PPO, model={"modality_dropout": 0.3})
    full.train()
    want, want_opt = _params(full.policy), full.optimizer.state_dict()
    ckpts = sorted((tmp_path / "full" / "checkpoints").glob("ckpt_*.pt"))
    assert len(ckpts) == 6
    pending = []
    for k in (2, 3, 4):
        run = tmp_path / f"resume{k}"
        run.mkdir()
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / ckpts[k - 1].name).write_bytes(ckpts[k - 1].read_bytes())
        ckpt = load_checkpoint(latest_checkpoint(run))
        pending.append(bool(ckpt["trainer"][0]["autoreset"].any()))
        # a different seed: every weight and random stream must come from the checkpoint
        tr = make_toy_trainer(agent, STEPS, seed=99, out_dir=run, ppo=PPO, model={"modality_dropout": 0.3})
        assert tr.load_state_dict(ckpt) is True
        assert tr.update == k and tr.global_step == k * 64
        tr.train()
        for a, b in zip(want, _params(tr.policy)):
            assert torch.equal(a, b)
        got_opt = tr.optimizer.state_dict()
        for pid, st in want_opt["state"].items():
            assert torch.equal(st["exp_avg_sq"], got_opt["state"][pid]["exp_avg_sq"])
        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert [int(r["update"]) for r in rows] == list(range(k + 1, 7))
    assert any(pending)  # at least one checkpoint was taken with an autoreset step pending


def test_resume_truncates_the_csv_to_the_checkpoint(tmp_path):
    tr = make_toy_trainer("avnav", STEPS, out_dir=tmp_path, ppo=PPO)
    tr.train()
    ckpt = load_checkpoint(tmp_path / "checkpoints" / "ckpt_0000004.pt")
    for p in sorted((tmp_path / "checkpoints").glob("ckpt_*.pt"))[4:]:
        p.unlink()  # as if the run had died after update 4 had been logged further
    tr2 = make_toy_trainer("avnav", STEPS, out_dir=tmp_path, ppo=PPO)
    tr2.load_state_dict(ckpt)
    tr2.train()
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"episode/success", "loss/policy", "perf/steps_per_s", "lr"} <= set(rows[0])


def test_corrupt_and_foreign_checkpoints_fail_clearly(tmp_path):
    bad = tmp_path / "ckpt_0000001.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CorruptCheckpointError, match="is not a checkpoint written by torch.save"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an avworld navigation checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="no checkpoints"):
        latest_checkpoint(tmp_path / "nowhere")


def test_a_truncated_checkpoint_names_the_file_and_the_fix(tmp_path):
    good = save_checkpoint(tmp_path / "ckpt_0000001.pt", {"model": {"w": torch.zeros(1000)}})
    cut = tmp_path / "ckpt_0000002.pt"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptCheckpointError) as err:
        load_checkpoint(cut)
    msg = str(err.value)
    assert msg.startswith(f"checkpoint {cut} is truncated (") and "the end of the archive is missing" in msg
    assert "Use an earlier checkpoint (this folder has ckpt_0000001.pt)" in msg and msg.endswith("or retrain")
    assert "miniz" not in msg and "weights_only" not in msg  # none of torch's text, cut or whole
    cut.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="is empty"):
        load_checkpoint(cut)


def test_other_architecture_is_refused(tmp_path):
    tr = make_toy_trainer("agsa", 128, out_dir=tmp_path, ppo={"num_envs": 2, "num_steps": 8})
    tr.reset_envs()
    path = tr.save()
    other = make_toy_trainer("agsa", 128, ppo={"num_envs": 2, "num_steps": 8}, model={"hidden_size": 32})
    with pytest.raises(CheckpointError, match="hidden_size: checkpoint 64, here 32"):
        other.load_state_dict(load_checkpoint(path))
    avnav = make_toy_trainer("avnav", 128, ppo={"num_envs": 2, "num_steps": 8})
    with pytest.raises(CheckpointError, match="agent: checkpoint 'agsa', here 'avnav'"):
        avnav.load_state_dict(load_checkpoint(path))
    # the checkpoint alone rebuilds the policy, optionally without vision
    policy, ckpt = build_from_checkpoint(path, zero_visual=True)
    assert ckpt["agent"] == "agsa" and policy.config.zero_visual and not policy.training
    for a, b in zip(tr.policy.parameters(), policy.parameters()):
        assert torch.equal(a, b)


def test_time_limit_stops_with_a_checkpoint_and_resume_finishes(tmp_path, capsys):
    tr = make_toy_trainer("avnav", STEPS, out_dir=tmp_path, ppo={**PPO, "checkpoint_every": 100,
                                                                 "time_limit_s": 1e-6})
    tr.train()
    assert "time limit" in capsys.readouterr().out
    assert tr.update == 1 and [p.name for p in (tmp_path / "checkpoints").glob("ckpt_*.pt")] == ["ckpt_0000001.pt"]
    tr2 = make_toy_trainer("avnav", STEPS, out_dir=tmp_path, ppo={**PPO, "checkpoint_every": 100})
    tr2.load_state_dict(load_checkpoint(latest_checkpoint(tmp_path)))
    tr2.train()
    assert tr2.update == 6
    with pytest.raises(TrainConfigError, match="time_limit_s"):
        PPOConfig(time_limit_s=0)


def test_export_writes_a_small_policy_only_checkpoint_that_evaluates_like_the_original(tmp_path):
    """The shipped form of a checkpoint: float16 weights, no optimizer; same actions, refuses to resume."""
    from avworld.models.nav import build_policy, model_config
    from avworld.train.checkpoint import export_checkpoint, policy_header, save_checkpoint

    torch.manual_seed(0)
    shapes = {"depth": (16, 16, 1), "spectrogram": (2, 65, 26)}
    policy = build_policy("avnav", shapes, 4, config=model_config("avnav", visual_keys=("depth",)))
    opt = torch.optim.Adam(policy.parameters())
    for p in policy.parameters():  # one step, so that Adam holds its two moments as in a real run
        p.grad = torch.zeros_like(p)
    opt.step()
    src = save_checkpoint(tmp_path / "ckpt_0000003.pt", {**policy_header("avnav", policy), "model": policy.state_dict(),
                                                          "optimizer": opt.state_dict(), "update": 3, "global_step": 9})
    dst = export_checkpoint(src, tmp_path / "avnav.pt")
    assert dst.stat().st_size < 0.25 * src.stat().st_size  # float32 weights + Adam's two moments -> float16 weights
    exported, ckpt = build_from_checkpoint(dst)
    assert "optimizer" not in ckpt and ckpt["exported"]["half"] is True
    assert {v.dtype for v in ckpt["model"].values() if v.is_floating_point()} == {torch.float16}
    assert all(p.dtype == torch.float32 for p in exported.parameters())  # cast back on load
    obs = {"depth": torch.rand(1, 16, 16, 1), "spectrogram": torch.rand(1, 2, 65, 26)}
    h = policy.initial_state(1, "cpu")
    start = torch.ones(1, dtype=torch.bool)
    with torch.no_grad():
        a = policy.eval().act(obs, h, start, deterministic=True)
        b = exported.act(obs, h, start, deterministic=True)
    torch.testing.assert_close(b.value, a.value, atol=2e-2, rtol=2e-2)  # float16 rounding of the weights
    from avworld.train.ppo import PPOTrainer

    class _Envs:  # the trainer only needs the spaces and the env count to restore state
        num_envs = 1

    trainer = PPOTrainer.__new__(PPOTrainer)
    trainer.agent, trainer.policy = "avnav", policy
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        trainer.load_state_dict(torch.load(dst, weights_only=True), dst)


def _signal_during_update(trainer, update: int, signum, times: int = 1):
    """Make ``trainer`` receive ``signum`` (``times`` times) while it learns in update ``update``."""
    import signal

    learn = trainer.learn

    def learn_and_signal(*a, **k):
        if trainer.update + 1 == update:
            for _ in range(times):
                signal.raise_signal(signum)
        return learn(*a, **k)

    trainer.learn = learn_and_signal


class _Unhandled(Exception):
    pass


@pytest.fixture
def raising_handlers():
    """While a test runs, SIGINT / SIGTERM outside a StopRequest raise (instead of killing pytest)."""
    import signal

    def handler(signum, frame):
        raise _Unhandled(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    yield handler
    for s, h in old.items():
        signal.signal(s, h)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_after_the_update_with_a_checkpoint_and_resume_matches(tmp_path, capsys, signame,
                                                                              raising_handlers):
    """SIGINT / SIGTERM: the update in progress finishes, a checkpoint is written, the handlers are
    restored; resuming from it ends where an uninterrupted run ends, bit for bit."""
    import signal

    signum = getattr(signal, signame)
    ppo = {**PPO, "checkpoint_every": 100}
    full = make_toy_trainer("avnav", STEPS, seed=5, ppo=ppo)
    full.train()
    assert full.stopped_by is None and full.update == 6
    tr = make_toy_trainer("avnav", STEPS, seed=5, out_dir=tmp_path, ppo=ppo)
    _signal_during_update(tr, 3, signum)
    result = tr.train()
    tr.envs.close()
    assert tr.stopped_by == result["stopped_by"] == "signal" and result["stop_signal"] == signame
    assert tr.update == 3
    captured = capsys.readouterr()
    if signame == "SIGINT":  # Ctrl-C: the one announcement line on stderr, nothing more
        assert captured.out == "" and captured.err.startswith("interrupted; ") and captured.err.count("\n") == 1
    else:
        assert f"stopped by {signame} at update 3" in captured.out
    assert [p.name for p in (tmp_path / "checkpoints").glob("ckpt_*.pt")] == ["ckpt_0000003.pt"]
    assert signal.getsignal(signum) is raising_handlers  # restored
    tr2 = make_toy_trainer("avnav", STEPS, seed=77, out_dir=tmp_path, ppo=ppo)
    tr2.load_state_dict(load_checkpoint(latest_checkpoint(tmp_path)))
    tr2.train()
    assert tr2.update == 6 and tr2.stopped_by is None
    for a, b in zip(_params(full.policy), _params(tr2.policy)):
        assert torch.equal(a, b)


def test_a_second_signal_aborts_at_once(tmp_path, raising_handlers):
    import signal

    tr = make_toy_trainer("avnav", STEPS, out_dir=tmp_path, ppo={**PPO, "checkpoint_every": 100})
    _signal_during_update(tr, 2, signal.SIGTERM, times=2)
    try:
        with pytest.raises(KeyboardInterrupt, match="received twice"):
            tr.train()
    finally:
        tr.envs.close()
    assert tr.update == 1 and not list((tmp_path / "checkpoints").glob("ckpt_*.pt"))
    assert signal.getsignal(signal.SIGTERM) is raising_handlers


def test_an_interrupted_save_leaves_no_partial_file(tmp_path):
    from avworld.train.checkpoint import save_checkpoint

    class Abort:
        def __reduce__(self):
            raise KeyboardInterrupt("second Ctrl-C while writing")

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ckpt_0000001.pt", {"model": {"w": torch.zeros(3)}, "bad": Abort()})
    assert list(tmp_path.iterdir()) == []
