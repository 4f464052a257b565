"""Optional espeak-ng voices: never required; deterministic and normalized when espeak-ng is installed."""

from __future__ import annotations

import numpy as np
import pytest

from avworld.sounds import REFERENCE_RMS_DBFS, SoundBank, SoundError, active_rms, synth_espeak

HAVE_ESPEAK = synth_espeak.espeak_executable() is not None


def test_default_bank_does_not_use_espeak(monkeypatch):
    monkeypatch.setattr(synth_espeak, "espeak_executable", lambda: None)
    bank = SoundBank(num_speakers=2)
    assert not any(n.startswith("espeak_") for n in bank.names())
    with pytest.raises(SoundError, match="espeak-ng"):
        SoundBank(espeak_voices=2)


@pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng is not installed")
def test_espeak_voices():
    fs = 16000
    bank = SoundBank(num_speakers=0, num_music=0, num_background=0, include_static=False, espeak_voices=3)
    assert bank.names() == ["espeak_000", "espeak_001", "espeak_002"]
    assert bank.get("espeak_001").kind == "speech" and bank.get("espeak_001").param_dict["voice"] == "en-us+m1"
    x = bank.clip("espeak_000", 0, duration_s=4.0)
    assert x.dtype == np.float32 and x.size == 4 * fs and np.max(np.abs(x)) < 1.0
    assert 20 * np.log10(active_rms(x, fs)) == pytest.approx(REFERENCE_RMS_DBFS, abs=0.05)
    again = SoundBank(num_speakers=0, num_music=0, num_background=0, include_static=False, espeak_voices=1)
    assert again.clip("espeak_000", 0, duration_s=4.0).tobytes() == x.tobytes()
    assert not np.array_equal(bank.clip("espeak_000", 1, duration_s=4.0), x)
