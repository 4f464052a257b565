"""Synthetic speakers: source-filter speech with a voice of their own.

Each speaker has a sex, a mean pitch (F0: 85-150 Hz male, 165-255 Hz female) and pitch
range, a vocal-tract length (all formants scale with it), an "accent" (small personal
offsets of every vowel's formants, preferred vowels, consonants and syllable shapes), a
voice colour (three broad personal spectral peaks/dips), a voice quality (glottal open
quotient, spectral tilt, breathiness, jitter, shimmer) and a rhythm (syllable rate,
phrase length, pauses). The main voice parameters come from a scrambled Halton sequence,
so any N speakers are spread evenly over the voice space and speaker ``k`` is the same
whatever N is.

A clip is a run of phrases (4-14 syllables of consonant-vowel(-consonant) babble, pitch
declining over the phrase with accents on stressed syllables, sometimes rising at the
end like a question) separated by pauses. Phones are dealt from shuffled per-speaker
"decks", so any stretch of speech uses the speaker's preferred sounds in nearly their
preferred proportions (a stable long-term spectrum, as a real voice has). It is
rendered with a Rosenberg glottal pulse train (phase-accumulated from the F0 contour) and
a noise source, shaped frame by frame (8 ms hop) in the STFT domain by a cascade of five
formant resonators (voiced sounds, aspiration) or a fricative noise band; plosive
bursts are added in the time domain.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import butter, istft, sosfilt, stft
from scipy.stats import qmc

from avworld.sounds._dsp import add_at, fade, smooth_contour
from avworld.sounds.registry import active_rms

# male reference formants F1-F3 (Hz): Peterson & Barney / Hillenbrand averages
VOWELS = {
    "i": (270, 2290, 3010), "I": (390, 1990, 2550), "e": (530, 1840, 2480), "ae": (660, 1720, 2410),
    "a": (730, 1090, 2440), "o": (570, 840, 2410), "U": (440, 1020, 2240), "u": (300, 870, 2240),
    "A": (640, 1190, 2390), "er": (490, 1350, 1690),
}
DIPHTHONGS = {"ai": ("a", "I"), "ei": ("e", "i"), "oi": ("o", "I"), "au": ("a", "U"), "ou": ("o", "u")}
NUCLEI = tuple(VOWELS) + tuple(DIPHTHONGS)
# consonants: (class, voiced, F1-F3 locus, noise centre Hz, noise width in octaves)
CONSONANTS = {
    "p": ("stop", False, (300, 900, 2300), 1200, 1.5), "t": ("stop", False, (300, 1800, 2700), 4500, 1.0),
    "k": ("stop", False, (300, 2200, 2600), 2200, 0.6), "b": ("stop", True, (250, 900, 2300), 1200, 1.5),
    "d": ("stop", True, (250, 1700, 2700), 4000, 1.0), "g": ("stop", True, (250, 2100, 2500), 2100, 0.6),
    "s": ("fric", False, (350, 1700, 2600), 5500, 0.5), "sh": ("fric", False, (350, 1900, 2400), 3200, 0.6),
    "f": ("fric", False, (350, 1000, 2400), 4000, 1.8), "th": ("fric", False, (350, 1400, 2600), 4500, 1.8),
    "h": ("asp", False, None, 0, 0), "z": ("fric", True, (300, 1700, 2600), 5500, 0.5),
    "v": ("fric", True, (300, 1000, 2400), 4000, 1.8), "m": ("nasal", True, (250, 1100, 2200), 0, 0),
    "n": ("nasal", True, (250, 1500, 2500), 0, 0), "ng": ("nasal", True, (250, 2000, 2600), 0, 0),
    "l": ("liquid", True, (360, 1000, 2700), 0, 0), "r": ("liquid", True, (310, 1060, 1380), 0, 0),
    "w": ("liquid", True, (290, 610, 2150), 0, 0), "y": ("liquid", True, (260, 2070, 3020), 0, 0),
}
CODAS = ("t", "d", "k", "s", "z", "n", "m", "ng", "l", "r", "p", "f", "sh")
NUM_VOICE_DIMS = 8


def speaker_points(seed: int, n: int) -> np.ndarray:
    """(n, 8) points in [0, 1): the first n of a scrambled Halton sequence drawn from ``seed``."""
    return qmc.Halton(NUM_VOICE_DIMS, scramble=True, seed=np.random.default_rng([int(seed), 7])).random(n)


def speaker_params(u: np.ndarray, rng: np.random.Generator) -> dict:
    """A speaker's voice from one point ``u`` of :func:`speaker_points` plus its own ``rng``."""
    female = bool(u[0] >= 0.5)
    lo, hi = (165.0, 255.0) if female else (85.0, 150.0)
    f0 = lo * (hi / lo) ** u[1]
    vtl = (1.05 + 0.2 * u[2]) if female else (0.85 + 0.2 * u[2])
    return {
        "female": female,
        "f0_hz": float(f0),
        "formant_scale": float(vtl),
        "syllables_per_s": float(3.0 + 3.2 * u[3]),
        "tilt": float(-0.9 + 1.2 * u[4]),  # spectral slope exponent above 500 Hz
        "open_quotient": float(0.45 + 0.35 * u[5]),
        "breathiness": float(0.02 + 0.2 * u[6] ** 2),
        "f0_range_st": float(2.0 + 7.0 * u[7]),
        "jitter": float(rng.uniform(0.003, 0.02)),
        "shimmer": float(rng.uniform(0.02, 0.10)),
        "bandwidth_scale": float(rng.uniform(0.8, 1.5)),
        "f4_hz": float(rng.uniform(3300, 3700) * vtl),
        "f5_hz": float(rng.uniform(4300, 4900) * vtl),
        "phrase_syllables": float(rng.uniform(4, 14)),
        "pause_s": float(rng.uniform(0.2, 0.8)),
        "accent_st": float(rng.uniform(1.0, 4.0)),
        "vowel_offsets": rng.normal(0.0, 0.06, (len(VOWELS), 3)).round(4),
        "vowel_weights": rng.dirichlet(np.full(len(NUCLEI), 1.5)).round(4),
        "consonant_weights": rng.dirichlet(np.full(len(CONSONANTS), 1.5)).round(4),
        "coda_prob": float(rng.uniform(0.15, 0.6)),
        # personal voice colour: three broad spectral peaks / dips (vocal-tract and nasal idiosyncrasies)
        "colour_hz": tuple(np.exp(rng.uniform(np.log(400), np.log(6000), 3)).round(1)),
        "colour_db": tuple(rng.uniform(-10, 10, 3).round(2)),
        "colour_oct": tuple(rng.uniform(0.3, 0.8, 3).round(3)),
        "cluster_prob": float(rng.uniform(0.0, 0.3)),
    }


@lru_cache(maxsize=256)
def _bandpass(lo_hz: int, hi_hz: int, fs: int) -> np.ndarray:
    return butter(2, [lo_hz, hi_hz], btype="bandpass", fs=fs, output="sos")


def _frame_sizes(sample_rate_hz: int) -> tuple[int, int]:
    nperseg = int(2 ** np.ceil(np.log2(0.032 * sample_rate_hz)))
    return nperseg, nperseg // 4


class _Tracks:
    """Knots of the control tracks, filled phone by phone, then interpolated to frames."""

    def __init__(self) -> None:
        self.av: list[tuple[float, float]] = []  # voicing amplitude
        self.asp: list[tuple[float, float]] = []  # aspiration amplitude (noise through the formants)
        self.fric: list[tuple[float, float, float, float]] = []  # (t, amp, centre Hz, width octaves)
        self.formants: list[tuple[float, float, float, float]] = []  # (t, F1, F2, F3)
        self.f0: list[tuple[float, float]] = []  # (t, F0 Hz)
        self.bursts: list[tuple[float, float, float, float]] = []  # (t, amp, centre Hz, width)

    def segment(self, t0: float, t1: float, av: float = 0.0, asp: float = 0.0, fric: float = 0.0,
                centre: float = 4000.0, width: float = 1.0, ramp: float = 0.012) -> None:
        """Hold the voicing / aspiration / frication levels over [t0, t1] (ramps of ``ramp`` at both ends)."""
        r = min(ramp, 0.4 * (t1 - t0))
        for t in (t0 + r, t1 - r):
            self.av.append((t, av))
            self.asp.append((t, asp))
            self.fric.append((t, fric, centre, width))


class _Deck:
    """Draws items in proportion to ``weights`` without replacement from a shuffled deck of ``size`` cards.

    Unlike independent draws, any stretch of speech uses the speaker's preferred phones in
    nearly their preferred proportions, so a speaker's long-term spectrum is stable.
    """

    def __init__(self, items, weights, rng: np.random.Generator, size: int = 64) -> None:
        w = np.asarray(weights, dtype=float)
        counts = np.maximum(np.round(w / w.sum() * size), 0).astype(int)
        self.cards = [it for it, c in zip(items, counts) for _ in range(c)] or list(items)
        self.rng, self.pile = rng, []

    def draw(self):
        if not self.pile:
            self.pile = [self.cards[i] for i in self.rng.permutation(len(self.cards))]
        return self.pile.pop()


def _phrase(p: dict, rng: np.random.Generator, tr: _Tracks, t: float, scale: float, decks) -> float:
    """Append one phrase starting at ``t``; returns its end time."""
    n_syl = max(2, int(round(rng.normal(p["phrase_syllables"], 2.0))))
    syl_s = 1.0 / p["syllables_per_s"]
    f0_start = p["f0_hz"] * 2 ** (rng.uniform(0.6, 1.0) * p["f0_range_st"] / 24)
    f0_end = p["f0_hz"] * 2 ** (-rng.uniform(0.6, 1.0) * p["f0_range_st"] / 24)
    question = rng.random() < 0.15
    vowels, onsets, codas, shapes = decks
    offsets = np.asarray(p["vowel_offsets"])
    vowel_names = list(VOWELS)

    def vowel_formants(v: str) -> tuple[float, float, float]:
        base = np.asarray(VOWELS[v], dtype=float) * (1.0 + offsets[vowel_names.index(v)])
        return tuple(base * scale)

    for s in range(n_syl):
        frac = s / max(1, n_syl - 1)
        stressed = rng.random() < 0.35
        dur_scale = rng.uniform(0.75, 1.3) * (1.25 if stressed else 1.0) * (1.3 if s == n_syl - 1 else 1.0)
        shape = shapes.draw()  # syllable shape: [C[C]]V[C]
        onset = [onsets.draw()] if shape[0] else []
        if shape[0] == 2:
            onset.append(("r", "l", "w")[len(tr.f0) % 3])  # cluster: stop/fricative + liquid
        for c in onset:
            t = _consonant(c, p, rng, tr, t, syl_s * 0.3 * dur_scale, scale)
        nucleus = vowels.draw()
        v_dur = syl_s * rng.uniform(0.45, 0.6) * dur_scale
        f0 = f0_start * (f0_end / f0_start) ** frac
        if stressed:
            f0 *= 2 ** (p["accent_st"] / 12)
        if question and s == n_syl - 1:
            f0 *= 2 ** (p["f0_range_st"] / 12)
        tr.f0.append((t + 0.5 * v_dur, f0))
        parts = DIPHTHONGS.get(nucleus, (nucleus, nucleus))
        tr.formants.append((t + 0.3 * v_dur, *vowel_formants(parts[0])))
        tr.formants.append((t + 0.7 * v_dur, *vowel_formants(parts[1])))
        amp = 1.0 if stressed else 0.75
        tr.segment(t, t + v_dur, av=amp, asp=amp * p["breathiness"])
        t += v_dur
        if shape[1]:
            t = _consonant(codas.draw(), p, rng, tr, t, syl_s * 0.25 * dur_scale, scale)
    return t


def _consonant(c: str, p: dict, rng: np.random.Generator, tr: _Tracks, t: float, dur: float, scale: float) -> float:
    cls, voiced, locus, centre, width = CONSONANTS[c]
    if locus is not None:
        tr.formants.append((t + 0.5 * dur, *(np.asarray(locus, dtype=float) * scale)))
    if cls == "stop":
        closure = dur * 0.6
        tr.segment(t, t + closure, av=0.08 if voiced else 0.0)
        tb = t + closure
        tr.bursts.append((tb, 0.5 if voiced else 1.0, centre * np.sqrt(scale), width))
        asp = 0.01 if voiced else 0.01 + dur * 0.5
        tr.segment(tb, tb + asp, av=0.3 if voiced else 0.0, asp=0.0 if voiced else 0.6, ramp=0.004)
        return tb + asp
    if cls == "fric":
        level = {"s": 1.0, "sh": 1.0, "z": 0.5}.get(c, 0.18)
        tr.segment(t, t + dur, av=0.3 if voiced else 0.0, fric=level, centre=centre * np.sqrt(scale), width=width)
        return t + dur
    if cls == "asp":
        tr.segment(t, t + dur * 0.8, asp=0.8)
        return t + dur * 0.8
    tr.segment(t, t + dur * 0.8, av=0.35 if cls == "nasal" else 0.6)
    return t + dur * 0.8


def _interp(knots: list, times: np.ndarray, col: int, default: float) -> np.ndarray:
    if not knots:
        return np.full(times.shape, default)
    k = np.asarray(sorted(knots, key=lambda r: r[0]), dtype=float)
    return np.interp(times, k[:, 0], k[:, col], left=default if default == 0 else k[0, col],
                     right=default if default == 0 else k[-1, col])


def _formant_envelope(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """(frames, bins) magnitude of a cascade of 2-pole resonators (unit gain at DC), float32.

    Resonator k with pole s = -pi B + 2j pi F has ``|H(jw)| = |s|^2 / (|jw - s| |jw - s*|)``.
    """
    w = (2 * np.pi * freqs[None, :]).astype(np.float32)
    env = np.ones((formants.shape[0], freqs.size), dtype=np.float32)
    for k in range(formants.shape[1]):
        a2 = ((np.pi * bandwidths[:, k : k + 1]) ** 2).astype(np.float32)
        b = (2 * np.pi * formants[:, k : k + 1]).astype(np.float32)
        lo = w - b
        lo *= lo
        lo += a2
        hi = w + b
        hi *= hi
        hi += a2
        lo *= hi
        np.sqrt(lo, out=lo)
        env *= a2 + b * b
        env /= lo
    return env


def render_speech(p: dict, rng: np.random.Generator, duration_s: float, sample_rate_hz: int) -> np.ndarray:
    """``duration_s`` of speech by speaker ``p`` (unnormalized float64)."""
    tr = _Tracks()
    cw = dict(zip(CONSONANTS, p["consonant_weights"]))
    pc, pk = p["coda_prob"], p["cluster_prob"]
    shapes = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]  # (onset consonants, coda consonants)
    shape_w = [0.15 * (1 - pc), 0.15 * pc, 0.85 * (1 - pk) * (1 - pc), 0.85 * (1 - pk) * pc, 0.85 * pk * (1 - pc),
               0.85 * pk * pc]
    decks = (
        _Deck(NUCLEI, p["vowel_weights"], rng),
        _Deck(list(CONSONANTS), p["consonant_weights"], rng),
        _Deck(CODAS, [cw[c] + 0.02 for c in CODAS], rng),
        _Deck(shapes, shape_w, rng),
    )
    t = rng.uniform(0.05, 0.3)
    while t < duration_s:
        t = _phrase(p, rng, tr, t, p["formant_scale"], decks)
        pause = p["pause_s"] * rng.uniform(0.5, 1.8) + (0.6 * rng.random() if rng.random() < 0.2 else 0.0)
        tr.segment(t, t + pause)
        t += pause
    return _render(p, tr, rng, int(round(duration_s * sample_rate_hz)), sample_rate_hz)


def _render(p: dict, tr: _Tracks, rng: np.random.Generator, n: int, fs: int) -> np.ndarray:
    scale = p["formant_scale"]
    # glottal source: Rosenberg pulses, phase-accumulated from the F0 contour
    ts = np.arange(n) / fs
    f0 = _interp(tr.f0, ts, 1, p["f0_hz"])
    f0 *= 1.0 + p["jitter"] * smooth_contour(rng, n, fs, 120.0) + 0.01 * smooth_contour(rng, n, fs, 3.0)
    phase = np.cumsum(f0 / fs)
    period = phase.astype(np.int64)
    ph = phase - period
    oq = p["open_quotient"]
    tp, tn = 0.65 * oq, 0.35 * oq
    g = np.where(ph < tp, 0.5 - 0.5 * np.cos(np.pi * ph / tp), np.cos(0.5 * np.pi * np.minimum(ph - tp, tn) / tn))
    g[ph >= tp + tn] = 0.0
    shimmer = 1.0 + p["shimmer"] * rng.standard_normal(period[-1] + 2)
    source = np.diff(g, prepend=0.0) * shimmer[period] * (fs / 100.0)
    noise = rng.standard_normal(n)

    nperseg, hop = _frame_sizes(fs)
    freqs, times, sv = stft(source, fs, window="hann", nperseg=nperseg, noverlap=nperseg - hop)
    _, _, sn = stft(noise, fs, window="hann", nperseg=nperseg, noverlap=nperseg - hop)
    form = np.stack([_interp(tr.formants, times, c, VOWELS["A"][c - 1] * scale) for c in (1, 2, 3)], axis=1)
    form = np.concatenate([form, np.full((times.size, 1), p["f4_hz"]), np.full((times.size, 1), p["f5_hz"])], axis=1)
    bw = np.array([60.0, 90.0, 150.0, 250.0, 300.0]) * p["bandwidth_scale"] * (1 + 0.3 * (form[:, :1] > 600))
    env = _formant_envelope(freqs, form, np.broadcast_to(bw, form.shape))
    tilt = np.maximum(freqs / 500.0, 1.0) ** p["tilt"]
    for c, g, w in zip(p["colour_hz"], p["colour_db"], p["colour_oct"]):
        tilt = tilt * 10.0 ** (g / 20.0 * np.exp(-0.5 * (np.log2(np.maximum(freqs, 20.0) / c) / w) ** 2))
    av = _interp(tr.av, times, 1, 0.0)
    asp = _interp(tr.asp, times, 1, 0.0)
    fric_amp = _interp(tr.fric, times, 1, 0.0)
    fric_c = _interp(tr.fric, times, 2, 4000.0)
    fric_w = _interp(tr.fric, times, 3, 1.0)
    lf = np.log2(np.maximum(freqs, 50.0))[None, :]
    fric_shape = np.exp(-0.5 * ((lf - np.log2(fric_c)[:, None]) / fric_w[:, None]) ** 2)
    fric_shape[:, freqs < 1000] *= (np.maximum(freqs[freqs < 1000], 50.0) / 1000.0) ** 2
    hv = (av[:, None] * env * tilt).T
    hn = (3.0 * asp[:, None] * env * tilt + 3.85 * fric_amp[:, None] * fric_shape).T
    _, y = istft(sv * hv + sn * hn, fs, window="hann", nperseg=nperseg, noverlap=nperseg - hop)
    y = y[:n] if y.size >= n else np.pad(y, (0, n - y.size))

    # plosive bursts: 4-12 ms of band-passed, decaying noise
    ref = active_rms(y, fs) + 1e-9
    for tb, amp, centre, width in tr.bursts:
        m = int(rng.uniform(0.004, 0.012) * fs)
        hi = min(centre * 2**width, 0.45 * fs)
        sos = _bandpass(round(min(centre * 2 ** (-width), 0.8 * hi)), round(hi), fs)
        b = sosfilt(sos, rng.standard_normal(m)) * np.exp(-np.arange(m) / (0.3 * m))
        add_at(y, int(tb * fs), 0.8 * ref * amp * b / (np.std(b) + 1e-12))
    return fade(y, fs, 0.02)

