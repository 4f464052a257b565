"""Heard / unheard splits: deterministic, disjoint, complete, in the paper's 18:3:4 ratio."""

from __future__ import annotations

import pytest

from avworld.sounds import PAPER_RATIOS, SoundBank, SoundError, UnknownSoundError, split_clips, split_types
from avworld.sounds.splits import split_counts


@pytest.fixture(scope="module")
def bank():
    return SoundBank()


def test_unheard_split_is_disjoint_complete_and_exact(bank):
    s = split_clips(bank)
    assert list(s) == ["train", "val", "test"] and PAPER_RATIOS == (18, 3, 4)
    sets = {k: set(v) for k, v in s.items()}
    assert all(len(sets[k]) == len(s[k]) for k in s)  # no duplicates
    assert not (sets["train"] & sets["val"]) and not (sets["train"] & sets["test"]) and not (sets["val"] & sets["test"])
    assert sets["train"] | sets["val"] | sets["test"] == set(bank.clip_ids())
    for name in bank.names():  # 25 clips per type -> exactly 18 / 3 / 4 of every type
        assert [sum(1 for n, _ in s[k] if n == name) for k in s] == [18, 3, 4]
    assert len(s["train"]) == 18 * len(bank)


def test_splits_are_deterministic_and_order_independent(bank):
    a = split_clips(bank, seed=7)
    assert a == split_clips(SoundBank(), seed=7)
    assert a != split_clips(bank, seed=8)
    names = bank.names()
    part = split_clips(bank, seed=7, types=list(reversed(names[:20])))
    for k in a:  # a type's split does not depend on which other types are split with it, nor their order
        assert sorted(part[k]) == sorted(x for x in a[k] if x[0] in names[:20])


def test_heard_protocol_shares_clips(bank):
    h = split_clips(bank, protocol="heard", types=["telephone", "speaker_000"])
    assert h["train"] == h["val"] == h["test"] == bank.clip_ids(["telephone", "speaker_000"])


def test_other_ratios_and_counts():
    assert split_counts(25, (18, 3, 4)) == [18, 3, 4]
    assert split_counts(10, (18, 3, 4)) == [7, 1, 2]
    assert split_counts(1, (18, 3, 4)) == [1, 0, 0]
    assert split_counts(2, (1, 5, 5)) == [1, 0, 1]  # training never left empty
    assert sum(split_counts(3292, PAPER_RATIOS)) == 3292
    bank = SoundBank(num_speakers=3, num_music=0, num_background=0, include_static=False, clips_per_type=50)
    s = split_clips(bank, ratios=(47, 3))  # the paper's pretraining split, train / val
    assert list(s) == ["train", "val"] and len(s["train"]) == 3 * 47 and len(s["val"]) == 3 * 3
    named = split_clips(bank, ratios=(1, 1), split_names=("a", "b"))
    assert set(named) == {"a", "b"}


def test_type_split(bank):
    speakers = bank.names(kind="speech")
    t = split_types(speakers)
    assert [len(t[k]) for k in ("train", "val", "test")] == [72, 12, 16]
    assert set(t["train"]) | set(t["val"]) | set(t["test"]) == set(speakers)
    assert not set(t["train"]) & set(t["test"])
    assert t == split_types(list(reversed(speakers)))
    assert t != split_types(speakers, seed=1)


def test_bad_split_input(bank):
    with pytest.raises(SoundError, match="ratios"):
        split_clips(bank, ratios=(18, -3, 4))
    with pytest.raises(SoundError, match="ratios"):
        split_clips(bank, ratios=(0, 0, 0))
    with pytest.raises(SoundError, match="protocol"):
        split_clips(bank, protocol="seen")
    with pytest.raises(UnknownSoundError, match="did you mean"):
        split_clips(bank, types=["speaker_1000"])
    with pytest.raises(SoundError, match="split name"):
        split_clips(bank, split_names=("train", "test"))
    with pytest.raises(SoundError, match="distinct"):
        split_types(["a", "a", "b"])
