"""Write a binaural RIR to disk for people: WAV, waveform plot, energy decay, RT60 per band."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import wavfile

from avworld.acoustics.analysis import band_reverberation_times, energy_decay_curve_db, reverberation_time
from avworld.acoustics.bands import BANDS_HZ
from avworld.viz.plots import Series, line_plot


def write_rir_report(binaural: np.ndarray, mono: np.ndarray, sample_rate_hz: int, out_dir: str | Path,
                     info: dict | None = None) -> dict:
    """Writes ``rir_binaural.wav``, ``rir_mono.wav``, ``rir.png``, ``edc.png``, ``rir.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fs = int(sample_rate_hz)
    wavfile.write(out / "rir_binaural.wav", fs, np.ascontiguousarray(binaural.T.astype(np.float32)))
    wavfile.write(out / "rir_mono.wav", fs, mono.astype(np.float32))
    t = np.arange(binaural.shape[1]) / fs
    img = line_plot(
        [Series(t * 1e3, binaural[0], "left"), Series(t * 1e3, binaural[1], "right")],
        title="binaural RIR", xlabel="ms", ylabel="amplitude", size=(900, 320),
    )
    Image.fromarray(img).save(out / "rir.png")
    rt_bands = band_reverberation_times(mono, fs)
    edc = [Series(t * 1e3, energy_decay_curve_db(mono), "broadband", (0, 0, 0))]
    from avworld.acoustics.bands import octave_band_filter

    for b in range(len(BANDS_HZ)):
        if BANDS_HZ[b] / np.sqrt(2) < fs / 2:
            edc.append(Series(t * 1e3, energy_decay_curve_db(octave_band_filter(mono, b, fs)), f"{BANDS_HZ[b]:g} Hz"))
    Image.fromarray(line_plot(edc, title="energy decay (Schroeder)", xlabel="ms", ylabel="dB",
                              size=(900, 360), ylim=(-80.0, 0.0))).save(out / "edc.png")
    result = {
        **(info or {}),
        "sample_rate_hz": fs,
        "length_s": binaural.shape[1] / fs,
        "rt60_s": _finite(reverberation_time(mono, fs)),
        "rt60_s_per_band": {f"{f:g}": _finite(v) for f, v in zip(BANDS_HZ, rt_bands)},
        "files": ["rir_binaural.wav", "rir_mono.wav", "rir.png", "edc.png"],
    }
    (out / "rir.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _finite(v: float):
    return round(float(v), 4) if np.isfinite(v) else None
