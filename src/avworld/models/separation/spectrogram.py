"""The seed's spectrogram front end (torch): 1 s at 16 kHz <-> 32 x 32 x 16C magnitude tensors.

STFT with a periodic Hann window of 1023 samples (63.9 ms), hop 512 (32 ms), FFT size 1023,
centred (``n_fft // 2`` reflect padding): a 16000-sample clip gives 512 frequency bins x 32
frames per channel. The magnitudes are cut along frequency into ``CHUNKS = 16`` slices of 32
bins each, stacked on the channel axis: a (C, 16000) waveform becomes a (16C, 32, 32) tensor
whose channel ``16 c + k`` holds bins ``32 k .. 32 k + 31`` of channel ``c``. The networks see
``log1p`` of these magnitudes; the losses and the reward are on the magnitudes themselves.

:func:`to_waveform` goes back: magnitudes (16C, 32, 32) + a phase (C, 512, 32), e.g. the
ground truth's, -> waveforms of 16000 samples by the inverse STFT (overlap-add with the same
window; Hann 1023 at hop 512 satisfies the nonzero-overlap-add condition, so true magnitudes
with true phases give the input back to float precision).
"""

from __future__ import annotations

import torch

SAMPLE_RATE = 16_000
CLIP_SAMPLES = 16_000
N_FFT = 1023
HOP = 512
FREQ_BINS = N_FFT // 2 + 1  # 512
FRAMES = 1 + CLIP_SAMPLES // HOP  # 32 (centred STFT)
CHUNKS = 16
CHUNK_BINS = FREQ_BINS // CHUNKS  # 32


class SpectrogramError(ValueError):
    """A waveform or spectrogram has the wrong shape for the 1 s / 16 kHz front end."""


def _window(device, dtype=torch.float32) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def stft(wave: torch.Tensor) -> torch.Tensor:
    """(..., 16000) float -> complex (..., 512, 32)."""
    if wave.shape[-1] != CLIP_SAMPLES:
        raise SpectrogramError(f"expected clips of {CLIP_SAMPLES} samples (1 s at 16 kHz), got {wave.shape[-1]}; "
                               "cut or pad the audio to one step")
    lead = wave.shape[:-1]
    spec = torch.stft(wave.reshape(-1, CLIP_SAMPLES).float(), N_FFT, HOP, N_FFT, _window(wave.device),
                      center=True, pad_mode="reflect", return_complex=True)
    return spec.reshape(*lead, FREQ_BINS, FRAMES)


def istft(spec: torch.Tensor) -> torch.Tensor:
    """complex (..., 512, 32) -> (..., 16000)."""
    lead = spec.shape[:-2]
    wave = torch.istft(spec.reshape(-1, FREQ_BINS, FRAMES), N_FFT, HOP, N_FFT, _window(spec.device),
                       center=True, length=CLIP_SAMPLES)
    return wave.reshape(*lead, CLIP_SAMPLES)


def slice_freq(mag: torch.Tensor) -> torch.Tensor:
    """(..., C, 512, 32) -> (..., 16C, 32, 32): frequency chunks stacked on channels."""
    *lead, c, f, t = mag.shape
    if (f, t) != (FREQ_BINS, FRAMES):
        raise SpectrogramError(f"expected (C, {FREQ_BINS}, {FRAMES}) spectrograms, got {tuple(mag.shape[-3:])}")
    return mag.reshape(*lead, c * CHUNKS, CHUNK_BINS, t)


def unslice_freq(x: torch.Tensor) -> torch.Tensor:
    """(..., 16C, 32, 32) -> (..., C, 512, 32), the inverse of :func:`slice_freq`."""
    *lead, ck, fb, t = x.shape
    if ck % CHUNKS or (fb, t) != (CHUNK_BINS, FRAMES):
        raise SpectrogramError(f"expected (16C, {CHUNK_BINS}, {FRAMES}) tensors, got {tuple(x.shape[-3:])}")
    return x.reshape(*lead, ck // CHUNKS, FREQ_BINS, t)


def magnitudes(wave: torch.Tensor) -> torch.Tensor:
    """(..., C, 16000) waveforms -> (..., 16C, 32, 32) STFT magnitudes."""
    return slice_freq(stft(wave).abs())


def phases(wave: torch.Tensor) -> torch.Tensor:
    """(..., C, 16000) -> (..., C, 512, 32) STFT phase angles."""
    return torch.angle(stft(wave))


def to_waveform(mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Magnitudes (..., 16C, 32, 32) with phases (..., C, 512, 32) -> waveforms (..., C, 16000)."""
    m = unslice_freq(mag)
    if m.shape != phase.shape:
        raise SpectrogramError(f"magnitudes {tuple(m.shape)} (unsliced) and phases {tuple(phase.shape)} differ")
    return istft(torch.polar(m.float().clamp_min(0.0), phase.float()))


def log_features(mag: torch.Tensor) -> torch.Tensor:
    """What the networks see: ``log1p`` of the magnitudes."""
    return torch.log1p(mag.clamp_min(0.0))
