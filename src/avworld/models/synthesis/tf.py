"""The time-frequency representation of the ``mag`` refiner: compressed STFT magnitudes.

A binaural clip (B, 2, T) becomes (B, 2 F, frames) values |STFT|^power (n_fft 512, hop 128, periodic
Hann, centred; F = 257; power 1 keeps linear magnitudes, whose squared error is the MAG metric; 0.3
compresses the dynamic range as in speech enhancement), the ears' bins stacked as channels; the
source audio (B, T) becomes (B, F, frames). Back to a waveform, the
magnitudes (negative values clipped to 0) take a phase from elsewhere: x_sim's for the refined output
(the physics' timing), x_tx's for the pure neural baseline (which has no physics; AV-NeRF's choice).
"""

from __future__ import annotations

import torch

N_FFT, HOP, POWER = 512, 128, 0.3
BINS = N_FFT // 2 + 1


def _window(x: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, dtype=x.dtype, device=x.device)


def spectrum(x: torch.Tensor) -> torch.Tensor:
    """Complex STFT of (..., T) -> (..., F, frames)."""
    shape = x.shape
    s = torch.stft(x.reshape(-1, shape[-1]), N_FFT, HOP, window=_window(x), center=True, return_complex=True)
    return s.reshape(*shape[:-1], *s.shape[-2:])


def encode(x: torch.Tensor, power: float = POWER) -> torch.Tensor:
    """(B, C, T) or (B, T) -> magnitudes ** power (B, C * F, frames) (C = 1 for (B, T))."""
    if x.ndim == 2:
        x = x[:, None]
    m = spectrum(x).abs().clamp_min(1e-12) ** power
    return m.reshape(m.shape[0], -1, m.shape[-1])


def decode(mag: torch.Tensor, phase_from: torch.Tensor, length: int, power: float = POWER) -> torch.Tensor:
    """Magnitudes ** power (B, C * F, frames) with the phase of ``phase_from`` (B, C, T) -> (B, C, T)."""
    b, cf, frames = mag.shape
    c = cf // BINS
    m = mag.clamp_min(0).reshape(b, c, BINS, frames) ** (1.0 / power)
    ph = torch.angle(spectrum(phase_from.expand(b, c, phase_from.shape[-1])))
    z = torch.polar(m, ph).reshape(b * c, BINS, frames)
    y = torch.istft(z, N_FFT, HOP, window=_window(mag), center=True, length=length)
    return y.reshape(b, c, length)
