"""Background textures: rain, a stream, a fan, a crowd, traffic, wind, typing, a vacuum, birds, a fire.

Each is noise and events shaped with simple physical recipes (all vectorized: events
are impulse trains convolved with a few per-group kernels; time-varying spectra are a
bank of band-pass filters with slowly changing gains):

=========== ===================================================================================
bg_rain     drops: thousands of short decaying "plinks" (1-6 kHz) + hiss, intensity drifts
bg_stream   running water: rising-pitch bubble resonances (Minnaert) + gurgling low noise
bg_fan      fan / air conditioner: blade-pass hum with harmonics, mains hum, broadband airflow
bg_crowd    crowd babble: several synthetic talkers + speech-shaped murmur
bg_traffic  road traffic: low rumble + cars passing by (engine tone falling in pitch, tyre noise)
bg_wind     wind: noise through drifting band-passes, with gusts
bg_typing   keyboard typing: bursts of key-down / key-up clicks, louder space bar, pauses
bg_vacuum   vacuum cleaner: motor whine + strong airflow noise, swept back and forth
bg_birds    birds: several singers with their own chirp shapes and phrase rhythms, light noise
bg_fire     fireplace: low roar + crackles of power-law sizes
=========== ===================================================================================
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, oaconvolve, sosfilt

from avworld.sounds._dsp import add_at, band_noise, fade, pink_noise, smooth_contour
from avworld.sounds.synth_speech import render_speech, speaker_params

BACKGROUNDS = (
    "bg_rain", "bg_stream", "bg_fan", "bg_crowd", "bg_traffic",
    "bg_wind", "bg_typing", "bg_vacuum", "bg_birds", "bg_fire",
)


def background_params(name: str, rng: np.random.Generator) -> dict:
    """The fixed character of one background type (drawn from the type's own seed)."""
    return {
        "texture": name,
        "density": float(rng.uniform(0.6, 1.4)),  # events per second scale
        "tone_hz": float(rng.uniform(0.8, 1.25)),  # pitch scale of resonances / hum
        "drift_hz": float(rng.uniform(0.05, 0.3)),  # how fast intensity drifts
        "voices": int(rng.integers(3, 6)),
    }


def _events(rng: np.random.Generator, n: int, fs: int, rate_hz: np.ndarray | float, amp_sigma: float = 0.5):
    """Poisson event train: (n,) array with log-normal amplitudes at the event samples."""
    rate = np.broadcast_to(np.asarray(rate_hz, dtype=float), (n,))
    x = np.zeros(n)
    hits = rng.random(n) < rate / fs
    x[hits] = rng.lognormal(0.0, amp_sigma, int(hits.sum())) * rng.choice([-1.0, 1.0], int(hits.sum()))
    return x


def _kernel_events(rng, n, fs, rate, kernels, amp_sigma: float = 0.3) -> np.ndarray:
    """Poisson events (total ``rate`` per second, shared evenly) each convolved with one of ``kernels``."""
    y = np.zeros(n)
    for k in kernels:
        y += oaconvolve(_events(rng, n, fs, rate / len(kernels), amp_sigma), k)[:n]
    return y


def _tones(rng, fs, count, freqs_hz, decay_s, chirp=0.0) -> list[np.ndarray]:
    """Decaying sines at frequencies drawn log-uniformly from ``freqs_hz`` (pitch rising by ``chirp`` per decay)."""
    lo, hi = freqs_hz
    out = []
    for f in np.exp(rng.uniform(np.log(lo), np.log(min(hi, 0.4 * fs)), count)):
        d = decay_s * rng.uniform(0.6, 1.5)
        t = np.arange(int(5 * d * fs) + 1) / fs
        out.append(np.sin(2 * np.pi * f * (t + 0.5 * chirp * t * t / d)) * np.exp(-t / d))
    return out


def _bursts(rng, fs, count, freqs_hz, decay_s) -> list[np.ndarray]:
    """Short band-passed noise bursts (clicks, drops, crackles) centred log-uniformly in ``freqs_hz``."""
    lo, hi = freqs_hz
    out = []
    for f in np.exp(rng.uniform(np.log(lo), np.log(min(hi, 0.3 * fs)), count)):
        d = decay_s * rng.uniform(0.6, 1.5)
        m = int(6 * d * fs) + 8
        out.append(band_noise(rng, m, fs, f / 1.6, f * 1.6) * np.exp(-np.arange(m) / (d * fs)))
    return out


def _band_bank(rng, n, fs, centres_hz, gains: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
    """Sum of 1/2-octave band-passes of ``source`` (default white noise), band k scaled by ``gains[k]`` (n,)."""
    x = rng.standard_normal(n) if source is None else source
    y = np.zeros(n)
    for c, g in zip(centres_hz, gains):
        if c * 1.2 < 0.48 * fs:
            sos = butter(2, [c / 1.19, c * 1.19], btype="bandpass", fs=fs, output="sos")
            y += sosfilt(sos, x) * g
    return y


def _drift(rng, n, fs, rate, depth):
    return np.exp(depth * smooth_contour(rng, n, fs, rate))


def render_background(p: dict, rng: np.random.Generator, duration_s: float, sample_rate_hz: int) -> np.ndarray:
    """``duration_s`` of background ``p["texture"]`` (unnormalized float64)."""
    return fade(_texture(p, rng, duration_s, sample_rate_hz), sample_rate_hz, 0.02)


def _texture(p: dict, rng: np.random.Generator, duration_s: float, sample_rate_hz: int) -> np.ndarray:
    fs, kind = sample_rate_hz, p["texture"]
    n = int(round(duration_s * fs))
    dens, tone, drift = p["density"], p["tone_hz"], p["drift_hz"]
    t = np.arange(n) / fs
    if kind == "bg_rain":
        intensity = _drift(rng, n, fs, drift, 0.25)
        kernels = _bursts(rng, fs, 8, (1500 * tone, 8000 * tone), 0.002) + _tones(rng, fs, 4, (1500, 5000), 0.004)
        drops = _kernel_events(rng, n, fs, 900 * dens * intensity, kernels)
        hiss = band_noise(rng, n, fs, 800, 10000) * intensity
        return drops + 0.5 * np.std(drops) / np.std(hiss) * hiss
    if kind == "bg_stream":
        bubbles = _kernel_events(rng, n, fs, 250 * dens, _tones(rng, fs, 16, (300 * tone, 2500 * tone), 0.012, 0.3))
        gurgle = band_noise(rng, n, fs, 80, 1200) * _drift(rng, n, fs, 6.0, 0.5)
        return bubbles + 0.6 * np.std(bubbles) / np.std(gurgle) * gurgle
    if kind == "bg_fan":
        blade = 45.0 * tone * (1 + 0.01 * smooth_contour(rng, n, fs, 0.2))
        ph = np.cumsum(blade) / fs
        hum = sum(a * np.sin(2 * np.pi * k * ph) for k, a in ((1, 1.0), (2, 0.6), (3, 0.3), (4, 0.2)))
        hum += 0.3 * np.sin(2 * np.pi * 120 * t) + 0.1 * np.sin(2 * np.pi * 240 * t)
        air = band_noise(rng, n, fs, 60, 2500 * tone) * _drift(rng, n, fs, drift, 0.1)
        return 0.15 * hum + air
    if kind == "bg_crowd":
        y = np.zeros(n)
        for _ in range(p["voices"]):
            sp = speaker_params(rng.random(8), rng)
            v = render_speech(sp, rng, duration_s, fs)
            y += v / (np.std(v) + 1e-12) * rng.uniform(0.4, 1.0)
        murmur = sosfilt(butter(2, [200, 3000], btype="bandpass", fs=fs, output="sos"), pink_noise(rng, n))
        murmur *= _drift(rng, n, fs, 4.0, 0.6)
        return y + 0.8 * np.std(y) / np.std(murmur) * murmur
    if kind == "bg_traffic":
        rumble = sosfilt(butter(2, 150, fs=fs, output="sos"), pink_noise(rng, n)) * _drift(rng, n, fs, drift, 0.3)
        y = rumble / np.std(rumble)
        tyres = band_noise(rng, n, fs, 300, 3000)
        cars = np.zeros(n)
        for _ in range(int(duration_s * 0.8 * dens) + 1):  # cars passing at random times
            tc, width = rng.uniform(-2, duration_s + 2), rng.uniform(1.5, 4.0)
            a, b = np.searchsorted(t, [tc - 4 * width, tc + 4 * width])
            if b <= a:
                continue
            tt = t[a:b]
            env = rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((tt - tc) / width) ** 2)
            f = 70.0 * tone * rng.uniform(0.7, 1.5) * (1 - 0.06 * np.tanh((tt - tc) / width))  # Doppler fall
            ph = 2 * np.pi * np.cumsum(f) / fs
            cars[a:b] += env * (0.8 * (np.sin(ph) + 0.5 * np.sin(2 * ph)) + tyres[a:b])
        return y + cars
    if kind == "bg_wind":
        centres = 150.0 * tone * 2.0 ** np.arange(6)
        gust = _drift(rng, n, fs, drift * 2, 0.5)
        gains = np.stack([_drift(rng, n, fs, 0.3, 0.8) * 2.0 ** (-0.7 * k) for k in range(6)]) * gust
        return _band_bank(rng, n, fs, centres, gains)
    if kind == "bg_typing":
        keys = _bursts(rng, fs, 12, (1500 * tone, 5000 * tone), 0.01)
        thock = _tones(rng, fs, 1, (180 * tone, 400 * tone), 0.012)[0]
        y = np.zeros(n)
        s = rng.uniform(0.0, 0.5)
        while s < duration_s:
            for _ in range(int(rng.integers(3, 25))):  # a burst of typing
                key = keys[rng.integers(len(keys))]
                space = rng.random() < 0.15
                for off, level in ((0.0, 1.0), (rng.uniform(0.06, 0.12), 0.6)):  # key down, key up
                    at = int((s + off) * fs)
                    for bounce, a in ((0.0, 1.0), (0.004, 0.7), (0.009, 0.5)):  # the key rattles
                        add_at(y, at + int(bounce * fs), a * level * rng.uniform(0.6, 1.0) * key / np.max(np.abs(key)))
                    add_at(y, at, level * (0.8 if space else 0.3) * thock)
                s += rng.gamma(4.0, 0.16 / (4.0 * dens))
            s += rng.uniform(0.4, 2.5)
        return y + 0.003 * rng.standard_normal(n)
    if kind == "bg_vacuum":
        sweep = 0.5 + 0.5 * np.sin(2 * np.pi * np.cumsum(0.4 + 0.2 * smooth_contour(rng, n, fs, 0.3)) / fs)
        f = 210.0 * tone * (1 + 0.02 * sweep)
        whine = sum(a * np.sin(2 * np.pi * k * np.cumsum(f) / fs) for k, a in ((1, 1.0), (2, 0.5), (4, 0.3), (8, 0.2)))
        air = band_noise(rng, n, fs, 400, 7000)
        return (0.4 * whine + air) * (0.8 + 0.4 * sweep)
    if kind == "bg_birds":
        y = 0.02 * band_noise(rng, n, fs, 200, 4000)
        top = 0.45 * fs
        for _ in range(3):  # three singers
            f_lo = min(rng.uniform(2000, 4000) * tone, 0.6 * top)
            f_hi = min(f_lo * rng.uniform(1.2, 1.8), top)
            syl_s, gap_s = rng.uniform(0.04, 0.15), rng.uniform(0.03, 0.12)
            up = rng.random() < 0.5
            s = rng.uniform(0, 3)
            while s < duration_s:
                for _ in range(int(rng.integers(2, 8))):
                    m = int(syl_s * fs)
                    u = np.linspace(0, 1, m)
                    f = f_lo + (f_hi - f_lo) * (u if up else 1 - u) ** 1.5
                    chirp = np.sin(2 * np.pi * np.cumsum(f) / fs) * np.sin(np.pi * u) ** 2
                    add_at(y, int(s * fs), rng.uniform(0.5, 1.0) * chirp)
                    s += syl_s + gap_s
                s += rng.uniform(1.0, 4.0) / dens
        return y
    if kind == "bg_fire":
        roar = band_noise(rng, n, fs, 40, 600) * _drift(rng, n, fs, 1.0, 0.4)
        kernels = _bursts(rng, fs, 12, (1000 * tone, 6000 * tone), 0.002)
        crackle = _kernel_events(rng, n, fs, 100.0 * dens * _drift(rng, n, fs, 0.5, 0.3), kernels)
        return roar / np.std(roar) + 0.6 * crackle / np.std(crackle)
    raise KeyError(kind)

