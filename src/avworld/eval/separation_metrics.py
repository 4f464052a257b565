"""Separation quality of monaural estimates: SI-SDR and STFT distance, per step and per episode, with CIs.

Definitions (the seed's Sec. 7.12):

* waveforms of an estimate: its magnitudes (16, 32, 32) with the ground-truth target's STFT
  phase, inverse STFT (:func:`~avworld.models.separation.spectrogram.to_waveform`);
* SI-SDR (dB): :func:`avworld.eval.audio_metrics.si_sdr` of that waveform against the dry target
  clip; the mixture's SI-SDR uses the mean of the two ears as the estimate; SI-SDRi = SI-SDR
  of the estimate - SI-SDR of the mixture. The true phase alone carries much of the target
  (a mixture at -24 dB rises by ~10 dB when its magnitudes get the target's phase), so
  ``si_sdr_mixture_tp`` scores the mixture's magnitudes with the same true phase and
  ``si_sdri_tp`` = SI-SDR - that: the separator's own improvement;
* STFT distance: the Euclidean distance between the complex spectrograms of estimate and
  target, ``|| M.. e^{i phi} - M e^{i phi} ||_2 = || M.. - M ||_2`` (both share the target's phase),
  over the 512 x 32 bins of the 1 s step (raw magnitude units).

An episode's number is the mean over its steps of the final estimates (after the last
refinement of each step); :func:`aggregate` gives means with Student-t 95 % intervals over
episodes (or examples).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from avworld.eval.audio_metrics import si_sdr
from avworld.models.separation.spectrogram import magnitudes, to_waveform


def waveforms(mono_mag: torch.Tensor, phase: torch.Tensor) -> np.ndarray:
    """(B, 16, 32, 32) magnitudes with (B, 1, 512, 32) phases -> (B, 1, 16000) float64 waveforms."""
    return to_waveform(mono_mag, phase).detach().cpu().double().numpy()


def stft_distance(est_mag: torch.Tensor, target_mag: torch.Tensor) -> np.ndarray:
    """Per example ||est - target||_2 over all bins (B,)."""
    return (est_mag - target_mag).flatten(1).norm(dim=1).detach().cpu().double().numpy()


def step_metrics(est_mag: torch.Tensor, target_mag: torch.Tensor, phase: torch.Tensor, target_wave: torch.Tensor,
                 mixture_wave: torch.Tensor | None = None) -> dict[str, np.ndarray]:
    """SI-SDR (dB), STFT distance and, given the (B, 2, 16000) mixture, the mixture's SI-SDR and SI-SDRi."""
    tw = target_wave.detach().cpu().double().numpy().reshape(len(target_wave), 1, -1)
    out = {"si_sdr": si_sdr(waveforms(est_mag, phase), tw), "stft_distance": stft_distance(est_mag, target_mag)}
    if mixture_wave is not None:
        mean_ear = mixture_wave.mean(dim=1, keepdim=True)
        out["si_sdr_mixture"] = si_sdr(mean_ear.detach().cpu().double().numpy(), tw)
        out["si_sdri"] = out["si_sdr"] - out["si_sdr_mixture"]
        # the same oracle phase on the mixture's magnitudes: what the separator adds beyond the true phase
        out["si_sdr_mixture_tp"] = si_sdr(waveforms(magnitudes(mean_ear), phase), tw)
        out["si_sdri_tp"] = out["si_sdr"] - out["si_sdr_mixture_tp"]
    return out


def aggregate(values: dict[str, list | np.ndarray], confidence: float = 0.95) -> dict[str, dict]:
    """{name: values} -> {name: {"mean", "ci_low", "ci_high", "n"}} (Student t over the finite values)."""
    out = {}
    for name, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            out[name] = {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "n": 0}
            continue
        mean = float(v.mean())
        half = 0.0
        if len(v) > 1 and v.std() > 0:
            half = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
        out[name] = {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": int(len(v))}
    return out


class FinalEstimates:
    """The final estimate of every step of N parallel episodes: each memory output for steps t-E..t
    overwrites those steps, so what stays is the last refinement."""

    def __init__(self, n: int, num_steps: int) -> None:
        self.n, self.num_steps = n, num_steps
        self.est: list[dict[int, torch.Tensor]] = [{} for _ in range(n)]
        self.revisions = np.zeros((n, num_steps), dtype=np.int64)

    def update(self, estimates: torch.Tensor, steps: torch.Tensor, valid: torch.Tensor) -> None:
        """A MemoryStep's (N, W, 16, 32, 32) estimates of (N, W) steps."""
        for i in range(self.n):
            for j in range(estimates.shape[1]):
                if bool(valid[i, j]):
                    u = int(steps[i, j])
                    self.est[i][u] = estimates[i, j].detach().clone()
                    self.revisions[i, u] += 1

    def reset(self, i: int) -> None:
        self.est[i] = {}
        self.revisions[i] = 0

    def episode(self, i: int) -> torch.Tensor:
        """(T, 16, 32, 32) final estimates of env i's episode (steps 0 .. T-1, all present)."""
        missing = [u for u in range(self.num_steps) if u not in self.est[i]]
        if missing:
            raise ValueError(f"episode {i} has no estimate for steps {missing}")
        return torch.stack([self.est[i][u] for u in range(self.num_steps)])
