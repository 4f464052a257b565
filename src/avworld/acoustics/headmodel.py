"""Analytic rigid-sphere head: Brown & Duda (1998) head shadow + Woodworth ITD.

C. P. Brown and R. O. Duda, "A structural model for binaural sound synthesis", IEEE
Trans. Speech Audio Process. 6(5), 1998. For an ear at unit vector ``e`` and a source
direction ``d``, with incidence angle ``theta = arccos(d . e)`` and ``w0 = c / a``:

* head shadow (one pole, one zero): ``H(w) = (1 + j alpha w / (2 w0)) / (1 + j w / (2 w0))``
  with ``alpha(theta) = (1 + alpha_min / 2) + (1 - alpha_min / 2) cos(pi theta / theta_min)``,
  ``alpha_min = 0.1``, ``theta_min = 150 deg``: +6 dB at high frequencies facing the ear,
  -20 dB in the shadow, unit gain at DC for every direction;
* delay (Woodworth, relative to the head centre): ``-(a / c) cos(theta)`` for
  ``theta < 90 deg`` and ``(a / c) (theta - 90 deg)`` beyond, giving an ITD of about
  0.61 ms for a lateral source with ears at +-100 deg azimuth and ``a = 8.75 cm``.

No pinna or torso: front and back differ only through the ears' 10 deg rearward offset.
Responses are synthesized in the frequency domain directly at the requested rate, with
a common latency of ``a / c + 0.5 ms`` so the fractional-delay sinc has room to ring in.
"""

from __future__ import annotations

import numpy as np

HEAD_RADIUS_M = 0.0875
SPEED_OF_SOUND_M_S = 343.0
EAR_AZIMUTH_DEG = 100.0
LEAD_S = 0.0005


def direction_grid(step_deg: float = 5.0) -> np.ndarray:
    """(D, 3) unit vectors: elevation rings every ``step_deg`` (poles included), azimuths ~``step_deg`` apart."""
    out = []
    for el in np.radians(np.arange(-90.0, 90.0 + 1e-9, step_deg)):
        n_az = max(1, int(round(360.0 * np.cos(el) / step_deg)))
        az = np.arange(n_az) * 2 * np.pi / n_az
        out.append(np.column_stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.full(n_az, np.sin(el))]))
    dirs = np.concatenate(out)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


def _next_pow2(n: int) -> int:
    return 1 << int(np.ceil(np.log2(max(n, 1))))


def spherical_head_hrirs(
    sample_rate_hz: int,
    directions: np.ndarray | None = None,
    head_radius_m: float = HEAD_RADIUS_M,
    ear_azimuth_deg: float = EAR_AZIMUTH_DEG,
    alpha_min: float = 0.1,
    theta_min_deg: float = 150.0,
    c: float = SPEED_OF_SOUND_M_S,
) -> tuple[np.ndarray, np.ndarray]:
    """HRIRs ``(D, 2, L)`` float64 of a rigid sphere for ``directions`` (default :func:`direction_grid`)."""
    dirs = direction_grid() if directions is None else np.asarray(directions, dtype=np.float64)
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    fs = float(sample_rate_hz)
    length = int(np.ceil(0.004 * fs / 8.0)) * 8  # 4 ms: the shadow filter decays in ~1 ms
    n_fft = _next_pow2(4 * length)
    ear_az = np.radians(ear_azimuth_deg)
    ears = np.array([[np.cos(ear_az), np.sin(ear_az), 0.0], [np.cos(ear_az), -np.sin(ear_az), 0.0]])  # left, right
    theta = np.arccos(np.clip(dirs @ ears.T, -1.0, 1.0))  # (D, 2)
    a_c = head_radius_m / c
    delay_s = np.where(theta < np.pi / 2, -a_c * np.cos(theta), a_c * (theta - np.pi / 2))
    delay = (delay_s + a_c + LEAD_S) * fs  # samples, >= LEAD_S * fs
    alpha = (1 + alpha_min / 2) + (1 - alpha_min / 2) * np.cos(theta / np.radians(theta_min_deg) * np.pi)
    w = 2 * np.pi * np.fft.rfftfreq(n_fft, 1.0 / fs)  # (F,)
    x = 1j * w / (2 * c / head_radius_m)
    spec = (1 + alpha[..., None] * x) / (1 + x) * np.exp(-1j * w * delay[..., None] / fs)  # (D, 2, F)
    irs = np.fft.irfft(spec, n_fft, axis=-1)[..., :length]
    # taper the fractional-delay sinc's pre-ringing and the (negligible) tail
    lead = int(np.floor(LEAD_S * fs))
    win = np.ones(length)
    win[:lead] = np.sin(0.5 * np.pi * (np.arange(lead) + 0.5) / lead) ** 2
    tail = max(length // 8, 1)
    win[length - tail :] = np.cos(0.5 * np.pi * (np.arange(tail) + 0.5) / tail) ** 2
    return dirs, irs * win
