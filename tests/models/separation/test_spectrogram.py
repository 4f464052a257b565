"""The 1 s / 16 kHz spectrogram front end against closed forms."""

import math

import pytest
import torch

from avworld.models.separation.spectrogram import (
    N_FFT,
    SpectrogramError,
    magnitudes,
    phases,
    slice_freq,
    stft,
    to_waveform,
    unslice_freq,
)


def test_shapes_match_the_seed():
    x = torch.randn(4, 2, 16000)
    assert stft(x).shape == (4, 2, 512, 32)
    assert magnitudes(x).shape == (4, 32, 32, 32)
    assert magnitudes(x[:, :1]).shape == (4, 16, 32, 32)


def test_bin_centred_sinusoid_has_the_closed_form_peak_in_the_right_chunk():
    k, amp = 100, 0.3  # bin 100 = chunk 3, row 4
    n = torch.arange(16000, dtype=torch.float64)
    x = (amp * torch.cos(2 * math.pi * k * n / N_FFT)).float().view(1, 16000)
    mag = magnitudes(x)  # (16, 32, 32)
    window_sum = torch.hann_window(N_FFT, periodic=True, dtype=torch.float64).sum().item()
    expected = amp * window_sum / 2  # |X[k]| of a bin-centred cosine under a window w: A sum(w) / 2
    frame = 16  # an interior frame (no reflect padding in it)
    assert mag[3, 4, frame].item() == pytest.approx(expected, rel=1e-3)
    assert mag[:, :, frame].argmax().item() == 3 * 32 + 4
    assert mag[0, 0, frame].item() < 1e-3 * expected  # far bins: only the window's sidelobes


def test_round_trip_with_true_magnitudes_and_phase_reproduces_the_waveform():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 16000, generator=g) * 0.1
    y = to_waveform(magnitudes(x), phases(x))
    assert y.shape == x.shape
    assert (y - x).abs().max().item() < 1e-5


def test_slicing_is_a_pure_rearrangement():
    spec = torch.arange(2 * 512 * 32, dtype=torch.float32).view(2, 512, 32)
    s = slice_freq(spec)
    assert s.shape == (32, 32, 32)
    assert torch.equal(s[16 + 5, 7], spec[1, 5 * 32 + 7])  # channel 16 c + k holds bins 32 k ..
    assert torch.equal(unslice_freq(s), spec)


def test_wrong_lengths_are_refused():
    with pytest.raises(SpectrogramError, match="16000 samples"):
        stft(torch.zeros(1, 8000))
    with pytest.raises(SpectrogramError):
        unslice_freq(torch.zeros(15, 32, 32))
