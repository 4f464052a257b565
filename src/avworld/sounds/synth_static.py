"""Static (periodic) sounds: rings, alarms, beepers, a clock, a door bell.

Every static type is one *cycle* that repeats forever (a clip is a whole number of
cycles, so looping it is seamless). The cadences follow the real devices:

=================== ============================================================ ========
type                sound                                                        cycle
=================== ============================================================ ========
telephone           electromechanical bell: a clapper driven by 20 Hz ringing    6 s
                    current strikes two gongs alternately (40 strikes/s); North
                    American cadence 2 s ring / 4 s silence
telephone_ringing   the same bell ringing without pauses (every 0.25 s step hears 1 s
                    the ring, as in SoundSpaces' AudioGoal, whose 1 s telephone
                    clip loops continuously)
telephone_uk        electronic ringer, 400 + 450 Hz, UK cadence 0.4 s on, 0.2 s  3 s
                    off, 0.4 s on, 2 s off
alarm               fire alarm horn, 520 Hz square wave, NFPA 72 "temporal-3"   4 s
                    pattern (3 x 0.5 s on / 0.5 s off, then 1.5 s off)
siren               wailing siren sweeping 650 - 1350 Hz and back               4 s
beeper              microwave "done": three 0.25 s beeps at 2 kHz, then pause    2.5 s
alarm_clock         digital alarm clock: four 70 ms beeps at 2.6 kHz, pause      1 s
reversing_beeper    truck backing up: 1.1 kHz, 0.5 s on / 0.5 s off              1 s
smoke_detector      3.1 kHz piezo chirp (60 ms) every 4 s                        4 s
doorbell            two-tone chime "ding-dong" (E5, C5) with ringing decay      4 s
clock               mechanical clock "tick-tock" at 1 Hz (two different clicks)  2 s
=================== ============================================================ ========

Clips of one type differ slightly (a few per cent of pitch, the timbre details) the way
two phones of one model do; the cadence is exact.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from avworld.sounds._dsp import decaying_partials

# name -> (kind, cycle seconds, description)
STATIC_TYPES: dict[str, tuple[str, float, str]] = {
    "telephone": ("ring", 6.0, "bell telephone, 2 s ring / 4 s off"),
    "telephone_ringing": ("ring", 1.0, "bell telephone ringing continuously (AudioGoal default)"),
    "telephone_uk": ("ring", 3.0, "electronic 400+450 Hz ring, UK double-ring cadence"),
    "alarm": ("alarm", 4.0, "fire alarm horn, temporal-3 pattern"),
    "siren": ("alarm", 4.0, "wailing siren"),
    "beeper": ("beeper", 2.5, "microwave beeper, three beeps"),
    "alarm_clock": ("beeper", 1.0, "digital alarm clock"),
    "reversing_beeper": ("beeper", 1.0, "truck reversing beeper"),
    "smoke_detector": ("alarm", 4.0, "smoke detector chirp"),
    "doorbell": ("chime", 4.0, "ding-dong door chime"),
    "clock": ("clock", 2.0, "mechanical clock tick-tock"),
}


def _harmonic_tone(t: np.ndarray, f0: float, amps, fs: int) -> np.ndarray:
    """Sum of harmonics k*f0 with amplitudes ``amps[k-1]``, keeping only those below 0.45 fs."""
    y = np.zeros_like(t)
    for k, a in enumerate(amps, start=1):
        if k * f0 < 0.45 * fs and a:
            y += a * np.sin(2 * np.pi * k * f0 * t)
    return y


def _square(t, f0, fs):
    return _harmonic_tone(t, f0, [1 / k if k % 2 else 0.0 for k in range(1, 40)], fs)


def _gates(t: np.ndarray, on_spans, ramp_s: float = 0.005) -> np.ndarray:
    """1 inside each (start, end) span, 0 outside, with linear ramps of ``ramp_s``."""
    g = np.zeros_like(t)
    for a, b in on_spans:
        g = np.maximum(g, np.clip(np.minimum(t - a, b - t) / ramp_s, 0.0, 1.0))
    return g


def _bell_ir(fs: int, f0: float, ratios, decays, amps, length_s: float) -> np.ndarray:
    t = np.arange(int(length_s * fs)) / fs
    keep = [i for i, r in enumerate(ratios) if r * f0 < 0.45 * fs]
    ir = decaying_partials(t, [ratios[i] * f0 for i in keep], [amps[i] for i in keep], [decays[i] for i in keep])
    m = ir.size // 4
    ir[-m:] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(m) / m)  # taper: no click where the ringing is cut
    return ir


def render_static(name: str, rng: np.random.Generator, sample_rate_hz: int, variation: bool = True) -> np.ndarray:
    """One cycle of static type ``name`` (unnormalized float64); ``variation`` adds the per-clip detail."""
    fs = sample_rate_hz
    _, cycle_s, _ = STATIC_TYPES[name]
    n = int(round(cycle_s * fs))
    t = np.arange(n) / fs
    v = (lambda s: 1.0 + rng.uniform(-s, s)) if variation else (lambda s: 1.0)
    if name == "telephone":
        idx = (np.arange(40) * fs / 20.0).astype(int)  # 2 s at 20 Hz, one strike per half cycle per gong
        gongs = [np.zeros(n), np.zeros(n)]
        for k, i in enumerate(idx):
            gongs[k % 2][i] = 1.0 - 0.1 * (k % 2)
        y = np.zeros(n)
        for g, f in zip(gongs, (1150.0 * v(0.03), 1320.0 * v(0.03))):
            ir = _bell_ir(fs, f, (1.0, 2.76, 5.40, 8.93), (0.08, 0.05, 0.03, 0.02), (1.0, 0.6, 0.35, 0.2), 0.5)
            y += fftconvolve(g, ir)[:n]
        return y
    if name == "telephone_ringing":
        g = np.zeros((2, n))
        strikes = (np.arange(40) * n / 40).astype(int)  # 40 strikes/s, alternating between the gongs
        g[0, strikes[0::2]], g[1, strikes[1::2]] = 1.0, 0.9
        y = np.zeros(n)
        for gong, f in zip(g, (1150.0 * v(0.03), 1320.0 * v(0.03))):
            ir = _bell_ir(fs, f, (1.0, 2.76, 5.40, 8.93), (0.08, 0.05, 0.03, 0.02), (1.0, 0.6, 0.35, 0.2), 0.5)
            full = fftconvolve(gong, ir)
            y += full[:n]
            y[: full.size - n] += full[n:]  # wrap the ringing tail around: the cycle loops seamlessly
        return y
    if name == "telephone_uk":
        gate = _gates(t, [(0.0, 0.4), (0.6, 1.0)], 0.004)
        f = v(0.02)
        return gate * (_harmonic_tone(t, 400 * f, [1, 0.3, 0.15], fs) + _harmonic_tone(t, 450 * f, [1, 0.3, 0.15], fs))
    if name == "alarm":
        gate = _gates(t, [(0.0, 0.5), (1.0, 1.5), (2.0, 2.5)], 0.004)
        return gate * _square(t, 520.0 * v(0.03), fs)
    if name == "siren":
        lo, hi = 650.0 * v(0.03), 1350.0 * v(0.03)
        tri = 1.0 - np.abs(2.0 * (t / cycle_s) - 1.0)  # 0 -> 1 -> 0 over the cycle
        f = lo + (hi - lo) * (0.5 - 0.5 * np.cos(np.pi * tri))
        phase = np.cumsum(f) / fs
        phase *= np.round(phase[-1]) / phase[-1]  # whole number of periods per cycle: loops seamlessly
        return sum(a * np.sin(2 * np.pi * k * phase) for k, a in ((1, 1.0), (2, 0.25), (3, 0.2), (5, 0.08)))
    if name == "beeper":
        gate = _gates(t, [(0.0, 0.25), (0.5, 0.75), (1.0, 1.25)], 0.004)
        return gate * _harmonic_tone(t, 2000.0 * v(0.03), [1, 0.1, 0.3], fs)
    if name == "alarm_clock":
        gate = _gates(t, [(0.14 * k, 0.14 * k + 0.07) for k in range(4)], 0.003)
        return gate * _square(t, 2600.0 * v(0.03), fs)
    if name == "reversing_beeper":
        gate = _gates(t, [(0.0, 0.5)], 0.01)
        return gate * _harmonic_tone(t, 1100.0 * v(0.03), [1, 0.05, 0.2], fs)
    if name == "smoke_detector":
        gate = _gates(t, [(0.0, 0.06)], 0.003)
        return gate * _harmonic_tone(t, 3100.0 * v(0.03), [1, 0.0, 0.15], fs)
    if name == "doorbell":
        y = np.zeros(n)
        for start, f in ((0.0, 659.3), (0.7, 523.3)):
            ir = _bell_ir(fs, f * v(0.01), (1.0, 2.0, 3.0, 4.2), (0.9, 0.5, 0.3, 0.15), (1.0, 0.3, 0.15, 0.1), 3.2)
            i = int(start * fs)
            y[i : i + ir.size] += ir[: n - i]
        return y
    if name == "clock":
        y = np.zeros(n)
        for start, f in ((0.0, 2400.0 * v(0.05)), (1.0, 1800.0 * v(0.05))):
            m = int(0.03 * fs)
            click = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.003 * fs))
            ring = _bell_ir(fs, f, (1.0, 1.7, 2.9), (0.01, 0.006, 0.004), (1.0, 0.5, 0.3), 0.03)
            i = int(start * fs)
            y[i : i + m] += 0.3 * click + ring[:m]
        return y
    raise KeyError(name)
