"""Synthetic music: note sequences played by one of twelve instrument timbres.

A music *type* is an instrument plus a style drawn from the type's seed: key, scale,
tempo, register, texture (melody alone, with a bass line, with chords or arpeggios) and
articulation. A *clip* is a piece in that style: a chord progression (one chord per
bar), a two-bar motif that is repeated and varied in an A A' B A form, a bass line on
the chord roots and the accompaniment, all played by the type's instrument.

Timbres (see :data:`INSTRUMENTS`) use three techniques, all vectorized per note:

* wavetables (one band-limited period built from a harmonic amplitude profile, read at
  the note's phase): organ, clarinet, flute (+ breath noise), strings (+ vibrato),
  synth lead; piano, harp, marimba and music box sum 2-3 wavetables of partial groups that
  decay at different rates (high partials die first);
* Karplus-Strong plucked string (guitar): a noise burst circulating in a
  delay line with a damping average, computed one period-block at a time, then
  resampled to the exact pitch;
* FM synthesis: brass (harmonic, index follows the envelope) and vibraphone/bell
  (inharmonic 1:1.4 ratio, decaying index, tremolo).
"""

from __future__ import annotations

import numpy as np

from avworld.sounds._dsp import add_at, adsr, band_noise

INSTRUMENTS = (
    "piano", "organ", "guitar", "flute", "violin", "clarinet",
    "trumpet", "vibraphone", "marimba", "harp", "music_box", "synth",
)
# instrument -> (lowest, highest MIDI note of the melody register, tempo range bpm, textures)
RANGES = {
    "piano": (55, 84, (70, 140), ("chords", "bass", "arpeggio")),
    "organ": (53, 79, (60, 110), ("chords", "bass")),
    "guitar": (52, 76, (80, 140), ("arpeggio", "bass", "solo")),
    "flute": (67, 91, (70, 130), ("solo", "bass")),
    "violin": (60, 88, (60, 120), ("solo", "bass")),
    "clarinet": (55, 80, (70, 130), ("solo", "bass")),
    "trumpet": (58, 79, (90, 150), ("solo", "bass")),
    "vibraphone": (60, 84, (70, 120), ("chords", "arpeggio")),
    "marimba": (60, 88, (100, 160), ("arpeggio", "solo")),
    "harp": (55, 86, (60, 110), ("arpeggio", "chords")),
    "music_box": (72, 96, (70, 120), ("solo", "arpeggio")),
    "synth": (57, 81, (100, 150), ("bass", "arpeggio")),
}
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "pentatonic": (0, 2, 4, 7, 9), "minor_pentatonic": (0, 3, 5, 7, 10),
}
PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (5, 3, 0, 4), (0, 2, 3, 4), (0, 3, 0, 4), (1, 4, 0, 0))
RHYTHMS = ((1, 1, 1, 1), (0.5, 0.5, 1, 1, 1), (1.5, 0.5, 1, 1), (0.5, 0.5, 0.5, 0.5, 2), (2, 1, 1), (1, 0.5, 0.5, 2))


def music_params(instrument: str, rng: np.random.Generator) -> dict:
    lo, hi, (t_lo, t_hi), textures = RANGES[instrument]
    centre = int(rng.integers(lo + 5, hi - 5))
    return {
        "instrument": instrument,
        "tonic": int(rng.integers(12)),
        "scale": str(rng.choice(list(SCALES))),
        "tempo_bpm": float(round(rng.uniform(t_lo, t_hi), 1)),
        "centre_midi": centre,
        "span": int(rng.integers(5, 10)),
        "texture": str(rng.choice(textures)),
        "legato": float(rng.uniform(0.6, 1.0)),
        "swing": float(rng.choice([0.0, 0.0, 0.15])),
        "brightness": float(rng.uniform(0.7, 1.3)),
        "progression": int(rng.integers(len(PROGRESSIONS))),  # the style's harmony ...
        "rhythms": tuple(int(i) for i in rng.choice(len(RHYTHMS), 3, replace=False)),  # ... and rhythmic vocabulary
    }


def midi_hz(m) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=float) - 69.0) / 12.0)


def _score(p: dict, rng: np.random.Generator, duration_s: float) -> list[tuple[float, float, float, float]]:
    """Notes (start_s, dur_s, midi, velocity) of a piece at least ``duration_s`` long."""
    beat = 60.0 / p["tempo_bpm"]
    scale = SCALES[p["scale"]]
    deg_count = len(scale)

    def pitch(degree: int, base: int) -> int:
        return base + 12 * (degree // deg_count) + scale[degree % deg_count]

    base = p["centre_midi"] - (p["centre_midi"] - p["tonic"]) % 12
    prog = PROGRESSIONS[p["progression"]]
    prog = tuple(c % deg_count for c in prog)

    top = max(2, round(p["span"] * deg_count / 12))  # the melody stays within `span` semitones of the tonic

    def motif(start_deg: int) -> list[tuple[float, int]]:
        out, deg = [], start_deg
        for _ in range(2):  # two bars
            for d in RHYTHMS[p["rhythms"][rng.integers(len(p["rhythms"]))]]:
                out.append((d, deg))
                step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]))
                if abs(deg - top // 3) > top // 3 and rng.random() < 0.5:  # drift back to the middle
                    step = -int(np.sign(deg - top // 3)) * abs(step)
                deg = int(np.clip(deg + step, -top // 2, top))
        return out

    a, b = motif(0), motif(int(rng.integers(1, top)))
    a2 = [(d, deg + int(rng.choice([0, 0, 1, -1]))) for d, deg in a]
    form = [a, a2, b, a]
    notes: list[tuple[float, float, float, float]] = []
    t, bar_idx = 0.0, 0
    while t < duration_s:
        for section in form:
            tt = t
            for k, (d, deg) in enumerate(section):
                dur = d * beat
                shift = p["swing"] * beat if (k % 2 == 1 and d == 0.5) else 0.0
                vel = float(np.clip(rng.normal(0.8, 0.1), 0.4, 1.0))
                notes.append((tt + shift, dur * p["legato"], pitch(deg, base), vel))
                tt += dur
            for bar in range(2):
                chord = prog[(bar_idx + bar) % len(prog)]
                t_bar = t + 4 * beat * bar
                root = pitch(chord, base - 12)
                if p["texture"] == "bass":
                    for k in range(2):
                        notes.append((t_bar + 2 * k * beat, 1.8 * beat, root - 12 * (root > 50), 0.7))
                elif p["texture"] == "chords":
                    for deg in (chord, chord + 2, chord + 4):
                        notes.append((t_bar, 3.8 * beat, pitch(deg, base - 12), 0.45))
                elif p["texture"] == "arpeggio":
                    for k, deg in enumerate((chord, chord + 2, chord + 4, chord + 2) * 2):
                        notes.append((t_bar + 0.5 * k * beat, 0.6 * beat, pitch(deg, base - 12), 0.4))
            bar_idx += 2
            t += 8 * beat
    return notes


TABLE_SIZE = 4096


def _wavetable(amps) -> np.ndarray:
    """One period (plus a wrap-around sample) of a sum of sine harmonics with amplitudes ``amps``."""
    spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=complex)
    spec[1 : 1 + len(amps)] = -1j * np.asarray(amps, dtype=float)
    table = np.fft.irfft(spec, TABLE_SIZE) * (TABLE_SIZE // 2)
    return np.append(table, table[0])


def _read(tables: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Wavetable(s) ``(..., TABLE_SIZE + 1)`` read at ``phase`` (periods) with linear interpolation."""
    x = (phase - np.floor(phase)) * TABLE_SIZE
    i = x.astype(np.intp)
    f = x - i
    return tables[..., i] * (1 - f) + tables[..., i + 1] * f


def _limit(amps, f0: float, fs: int) -> list[float]:
    """Harmonic amplitudes with those above 0.45 fs set to zero (no aliasing)."""
    return [a if (k + 1) * f0 < 0.45 * fs else 0.0 for k, a in enumerate(amps)]


def _karplus_strong(f0: float, n: int, fs: int, rng: np.random.Generator, damping: float, bright: float) -> np.ndarray:
    period = fs / f0
    L = max(2, int(period))
    exc = rng.uniform(-1, 1, L)
    for _ in range(int(round(3 * (1.2 - bright)))):  # soften the pluck
        exc = 0.5 * (exc + np.roll(exc, 1))
    m = int(np.ceil(n * L / period)) + L + 2
    y = np.zeros(m + 1)  # y[0] = 0 is the sample before the string is plucked
    y[1 : L + 1] = exc
    g = damping ** (1.0 / max(1.0, f0 / 110.0)) if damping < 1 else 1.0
    for s in range(L + 1, m + 1, L):  # y[i] = g/2 (y[i-L] + y[i-L-1]), one period-block at a time
        e = min(s + L, m + 1)
        y[s:e] = 0.5 * g * (y[s - L : e - L] + y[s - L - 1 : e - L - 1])
    src_t = np.arange(n) * (L / period)  # resample: a period of L samples becomes exactly fs / f0
    return np.interp(src_t, np.arange(m), y[1:])


def render_note(inst: str, midi: float, dur_s: float, vel: float, p: dict, rng: np.random.Generator,
                fs: int) -> np.ndarray:
    f0 = float(midi_hz(midi))
    br = p["brightness"]
    tail = {"piano": 0.16, "guitar": 1.5, "harp": 1.5, "vibraphone": 1.2, "marimba": 0.6, "music_box": 1.2}
    n = int((dur_s + tail.get(inst, 0.12)) * fs)
    t = np.arange(n) / fs
    phase = f0 * t
    if inst in ("organ", "clarinet", "flute", "violin", "synth", "trumpet"):
        env = adsr(n, fs, {"flute": 0.06, "violin": 0.08, "organ": 0.01}.get(inst, 0.03), 0.2, 0.8, 0.1)
        if inst in ("flute", "violin"):  # delayed vibrato
            vib = (0.005 if inst == "flute" else 0.008) * np.minimum(t / 0.3, 1.0) * np.sin(2 * np.pi * 5.5 * t)
            phase = np.cumsum(f0 * (1 + vib)) / fs
        if inst == "trumpet":  # FM brass: the index follows the envelope
            y = np.sin(2 * np.pi * phase + 3.0 * br * env * np.sin(2 * np.pi * phase))
        else:
            amps = {
                "organ": [1, 0.7, 0.45, 0.35, 0, 0.25, 0, 0.2],
                # odd harmonics below the bore's ~1.5 kHz cut-off, all harmonics (weak) above it
                "clarinet": [(1.0 if k % 2 == 0 or (k + 1) * f0 > 1500 else 0.04) * 0.8**k
                             * (1.0 if (k + 1) * f0 < 1500 else 0.4) for k in range(20)],
                "flute": [1, 0.35, 0.12, 0.05, 0.02],
                "violin": [(1 + 0.8 * np.exp(-(((k + 1) * f0 - 2800) / 900) ** 2)) / (k + 1) for k in range(30)],
                # sawtooth through a resonant low-pass at ~1.2 kHz
                "synth": [(1 + 2.5 * np.exp(-(((k + 1) * f0 - 1200 * br) / 300) ** 2)) / (k + 1)
                          * (1 if (k + 1) * f0 < 1200 * br else ((k + 1) * f0 / (1200 * br)) ** -2) for k in range(30)],
            }[inst]
            y = _read(_wavetable(_limit(amps, f0, fs)), phase)
            if inst == "synth":
                y = 0.5 * y + 0.5 * _read(_wavetable(_limit(amps, f0, fs)), phase * 1.004)
            if inst == "organ":
                y *= 1 + 0.1 * np.sin(2 * np.pi * 6.5 * t)
            if inst in ("flute", "violin"):
                y += (0.06 if inst == "flute" else 0.02) * band_noise(rng, n, fs, 1.5 * f0, 8 * f0) * env
        return vel * env * y
    if inst == "guitar":
        y = _karplus_strong(f0, n, fs, rng, 0.996, br)
        return vel * y * np.clip((dur_s + tail[inst] - t) / 0.05, 0, 1)
    if inst == "vibraphone":
        index = 2.5 * br * np.exp(-t / 0.4)
        y = np.sin(2 * np.pi * phase + index * np.sin(2 * np.pi * 1.4 * phase))
        damp = np.exp(-np.maximum(t - dur_s - 0.5, 0.0) / 0.15)  # the damper comes down 0.5 s after note-off
        return vel * y * np.exp(-t / 1.2) * damp * (1 + 0.25 * np.sin(2 * np.pi * 5.0 * t)) * np.minimum(t / 0.002, 1)
    # decaying partial groups: (harmonic amplitudes, decay seconds)
    groups = {
        "piano": (([1, 0.5], 1.2), ([0, 0, 0.3, 0.25, 0.15, 0.1], 0.5), ([0] * 6 + [0.08] * 10, 0.15)),
        "marimba": (([1], 0.45), ([0, 0, 0, 0.25], 0.08), ([0] * 9 + [0.1], 0.02)),
        "music_box": (([1], 0.9), ([0, 0, 0, 0, 0.3], 0.3), ([0] * 8 + [0.1], 0.08)),
        "harp": (([1, 0.35], 1.6), ([0, 0, 0.2, 0.12, 0.08], 0.5), ([0] * 5 + [0.05] * 6, 0.12)),
    }[inst]
    scale_decay = min(1.0, (262.0 / f0) ** 0.5)
    tables = [_wavetable(_limit([a * br for a in amps], f0, fs)) for amps, _ in groups]
    y = np.zeros(n)
    for table, (_, decay) in zip(tables, groups):
        m = min(n, int(7.0 * decay * scale_decay * fs))  # stop at -60 dB
        y[:m] += _read(table, phase[:m]) * np.exp(-t[:m] / (decay * scale_decay))
    release = np.clip((dur_s + tail[inst] - t) / 0.15, 0, 1)
    return vel * y * np.minimum(t / 0.002, 1) * release


def render_music(p: dict, rng: np.random.Generator, duration_s: float, sample_rate_hz: int) -> np.ndarray:
    """``duration_s`` of music in style ``p`` (unnormalized float64)."""
    fs = sample_rate_hz
    n = int(round(duration_s * fs))
    y = np.zeros(n)
    for start, dur, midi, vel in _score(p, rng, duration_s):
        if start < duration_s:
            add_at(y, int(start * fs), render_note(p["instrument"], midi, dur, vel, p, rng, fs))
    m = int(0.02 * fs)
    y[-m:] *= np.linspace(1.0, 0.0, m)
    return y
