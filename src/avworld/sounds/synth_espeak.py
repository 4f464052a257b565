"""Optional extra speakers voiced by espeak-ng (only when the ``espeak-ng`` program is installed).

espeak-ng is a formant synthesizer with many languages and voice variants. A bank built
with ``espeak_voices=N`` adds types ``espeak_000`` ... whose clips are random sentences
(drawn from the clip's seed) read by voice ``k``: language and variant cycle with ``k``,
pitch, speed and word gap come from the type's seed. Output is resampled
from espeak's 22.05 kHz to the bank's rate. Nothing else in avworld needs espeak-ng.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf

from avworld.sounds._dsp import fade, resample

ESPEAK_LANGUAGES = ("en", "en-us", "en-gb-scotland", "en-029", "de", "fr", "es", "it", "nl", "pt", "sv", "pl")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2")
WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or one had by word "
    "but not what all were we when your can said there use an each which she do how their if will up other about "
    "out many then them these so some her would make like him into time has look two more write go see number no "
    "way could people my than first water been call who oil its now find long down day did get come made may part "
    "over new sound take only little work know place year live me back give most very after thing our just name "
    "good sentence man think say great where help through much before line right too mean old any same tell boy "
    "follow came want show also around form three small set put end does another well large must big even such "
    "because turn here why ask went men read need land different home us move try kind hand picture again change"
).split()


def espeak_executable() -> str | None:
    """Path of the ``espeak-ng`` program, or None when it is not installed."""
    return shutil.which("espeak-ng")


def espeak_params(k: int, rng: np.random.Generator) -> dict:
    """Voice ``k`` of espeak-ng: language and variant cycle with ``k``; pitch, speed and gaps from ``rng``."""
    return {
        "voice": f"{ESPEAK_LANGUAGES[k % len(ESPEAK_LANGUAGES)]}+{ESPEAK_VARIANTS[(k // 3) % len(ESPEAK_VARIANTS)]}",
        "pitch": int(rng.integers(15, 85)),
        "speed_wpm": int(rng.integers(130, 200)),
        "word_gap": int(rng.integers(0, 4)),
    }


def render_espeak(p: dict, rng: np.random.Generator, duration_s: float, sample_rate_hz: int) -> np.ndarray:
    """``duration_s`` of espeak-ng speech in voice ``p`` reading random sentences (unnormalized float64)."""
    exe = espeak_executable()
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (e.g. `apt install espeak-ng`); use the built-in speakers")
    n = int(round(duration_s * sample_rate_hz))
    pieces: list[np.ndarray] = []
    total = 0
    with tempfile.TemporaryDirectory(prefix="avworld_espeak_") as tmp:
        for attempt in range(20):
            words = int(duration_s * p["speed_wpm"] / 60 * 1.2) + 5
            sentences = []
            while words > 0:
                k = int(rng.integers(4, 12))
                sentences.append(" ".join(rng.choice(WORDS, k)).capitalize() + rng.choice([".", ".", "?", ","]))
                words -= k
            path = os.path.join(tmp, f"{attempt}.wav")
            cmd = [exe, "-v", p["voice"], "-p", str(p["pitch"]), "-s", str(p["speed_wpm"]),
                   "-g", str(p["word_gap"]), "-w", path, " ".join(sentences)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            if res.returncode != 0 or not os.path.exists(path):
                raise RuntimeError(f"espeak-ng failed for voice {p['voice']!r}: {res.stderr.strip()[:300]}")
            x, fs_in = sf.read(path, dtype="float64", always_2d=True)
            x = resample(x.mean(axis=1), fs_in, sample_rate_hz)
            pieces += [x, np.zeros(int(rng.uniform(0.2, 0.8) * sample_rate_hz))]
            total += x.size + pieces[-1].size
            if total >= n:
                break
    y = np.concatenate(pieces)[:n]
    return fade(np.pad(y, (0, n - y.size)), sample_rate_hz, 0.02)
