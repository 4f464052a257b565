"""Head-related transfer functions: measured KEMAR (default), SOFA files, analytic spherical head.

Head frame: +x forward (nose), +y left ear, +z up; azimuth counter-clockwise from +x
(a source on the left is at +90 deg), elevation up. Channel 0 is the left ear.

Interpolation between measured directions: the directions are triangulated by their
convex hull (the spherical Delaunay triangulation); a query direction lies in the cone
of exactly one triangle and gets that triangle's barycentric weights (three weights
>= 0 summing to 1; a measured direction gets weight exactly 1). Triangles are found via a
cube-map table of candidate triangles per cell, so ``lookup_weights`` is a few small
vectorized numpy operations. :meth:`HRTF.lookup` and :meth:`HRTF.lookup_spectra` handle
the onset (ITD) separately: each HRIR's onset (first crossing of 20 % of its peak,
estimated at 8x oversampling) is removed, the time-aligned responses are interpolated,
and the interpolated onset is applied again as a fractional delay, which avoids the comb
filtering of mixing responses with different delays.

Sets that leave a pole uncovered (KEMAR has no elevations below -40 deg) get a synthetic
direction at that pole whose response is the onset-aligned mean of the nearest ring.
The built-in KEMAR set is scaled so its diffuse-field (all directions, both ears) RMS gain
over 250-1000 Hz is 1, like the spherical model's unit low-frequency gain; SOFA files
are used at their stored level.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly
from scipy.spatial import ConvexHull, QhullError

from avworld.acoustics.bands import SUPPORTED_SAMPLE_RATES_HZ  # one list for the whole engine


class HRTFError(ValueError):
    """Missing or malformed SOFA file, unsupported sample rate or unknown HRTF name."""


_GRID = 32  # cube-map cells per face side
_CHECK_FIRST = 12  # candidate triangles tested for every query before the slower paths


def _next_pow2(n: int) -> int:
    return 1 << int(np.ceil(np.log2(max(int(n), 1))))


def _unit(dirs, what: str = "directions") -> np.ndarray:
    d = np.asarray(dirs, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    if d.ndim != 2 or d.shape[1] != 3:
        raise ValueError(f"{what} must have shape (N, 3), got {d.shape}")
    norm = np.linalg.norm(d, axis=1, keepdims=True)
    if not np.all(np.isfinite(norm)) or np.any(norm < 1e-12):
        raise ValueError(f"{what} must be finite, non-zero vectors")
    return d / norm


def estimate_onsets(irs: np.ndarray, threshold: float = 0.2, oversample: int = 8) -> np.ndarray:
    """(..., L) impulse responses -> (...) onset in (fractional) samples: first crossing of ``threshold`` x peak."""
    x = np.abs(resample_poly(np.asarray(irs, dtype=np.float64), oversample, 1, axis=-1))
    thr = threshold * x.max(axis=-1, keepdims=True)
    i = np.argmax(x >= thr, axis=-1)
    cur = np.take_along_axis(x, i[..., None], -1)[..., 0]
    prev = np.take_along_axis(x, np.maximum(i - 1, 0)[..., None], -1)[..., 0]
    frac = np.where((i > 0) & (cur > prev), (thr[..., 0] - prev) / np.maximum(cur - prev, 1e-30), 1.0)
    return (i - 1 + np.clip(frac, 0.0, 1.0)) / oversample


class _Locator:
    """Finds, for unit vectors, the convex-hull triangle whose cone contains them."""

    def __init__(self, dirs: np.ndarray):
        try:
            hull = ConvexHull(dirs)
        except (QhullError, ValueError) as exc:
            raise HRTFError(f"cannot triangulate the {len(dirs)} HRTF directions: {exc}") from exc
        offset = hull.equations[:, 3]  # facet planes n.x + offset = 0 with the hull at n.x + offset <= 0
        if np.any(offset > -0.05):
            raise HRTFError("HRTF directions do not surround the head (a hemisphere or less is measured)")
        tri = hull.simplices.astype(np.int64)  # (T, 3)
        mats = dirs[tri].transpose(0, 2, 1)  # (T, 3, 3), columns = vertices
        good = np.abs(np.linalg.det(mats)) > 1e-12  # Qhull's triangulated coplanar facets can be degenerate
        self.tri, t = tri[good], int(good.sum())
        inv = np.linalg.inv(mats[good])  # barycentric (cone) coordinates of q = inv @ q
        self.inv = np.concatenate([inv, np.full((1, 3, 3), np.nan)])  # index T: padding, never matches (NaN)
        # candidate table: scatter a barycentric lattice (spacing ~0.6 deg) over every triangle
        # into cube-map cells; candidates are ordered by the solid angle they cover in the cell
        corners = dirs[self.tri]  # (T, 3, 3)
        edge = np.arccos(np.clip(np.einsum("tij,tij->ti", corners, np.roll(corners, 1, axis=1)), -1, 1))
        steps = np.ceil(np.degrees(edge.max(axis=1)) / 0.6).astype(np.int64)
        area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
        keys, weights = [], []
        for m in np.unique(steps):
            i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
            keep = i + j <= m
            bary = np.column_stack([i[keep], j[keep], m - i[keep] - j[keep]]) / m  # (P, 3)
            sel = np.flatnonzero(steps == m)
            pts = np.einsum("pk,tkj->tpj", bary, corners[sel]).reshape(-1, 3)
            keys.append(self._cells(pts) * (t + 1) + np.repeat(sel, len(bary)))
            weights.append(np.repeat(area[sel] / len(bary), len(bary)))
        key, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        count = np.bincount(inverse, weights=np.concatenate(weights))
        cell, tri = key // (t + 1), key % (t + 1)
        order = np.lexsort((-count, cell))  # by cell, largest overlap first
        cell, tri = cell[order], tri[order]
        start = np.searchsorted(cell, np.arange(6 * _GRID * _GRID))
        rank = np.arange(len(cell)) - start[cell]
        self.table = np.full((6 * _GRID * _GRID, max(rank.max() + 1, _CHECK_FIRST)), t, dtype=np.int64)
        self.table[cell, rank] = tri

    @staticmethod
    def _cells(q: np.ndarray) -> np.ndarray:
        a = np.abs(q)
        axis = a.argmax(axis=1)
        rows = np.arange(len(q))
        major = a[rows, axis]
        u = q[rows, np.where(axis == 0, 1, 0)] / major
        v = q[rows, np.where(axis == 2, 1, 2)] / major
        ci = np.minimum(np.maximum(((u + 1.0) * (_GRID / 2)).astype(np.int64), 0), _GRID - 1)
        cj = np.minimum(np.maximum(((v + 1.0) * (_GRID / 2)).astype(np.int64), 0), _GRID - 1)
        face = 2 * axis + (q[rows, axis] < 0)
        return (face * _GRID + ci) * _GRID + cj

    @staticmethod
    def _first_match(inv: np.ndarray, cand: np.ndarray, q: np.ndarray):
        bary = np.einsum("nkij,nj->nki", inv[cand], q)  # (n, k, 3)
        # (a min over an axis of length 3 is slow in numpy; two elementwise minima are not)
        ok = np.minimum(np.minimum(bary[..., 0], bary[..., 1]), bary[..., 2]) >= -1e-10
        first = ok.argmax(axis=1)
        rows = np.arange(len(q))
        return ok[rows, first], cand[rows, first], bary[rows, first]

    def locate(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) unit vectors -> (N, 3) vertex indices, (N, 3) weights (>= 0, sum 1)."""
        cand = self.table[self._cells(q)]
        found, tri, bary = self._first_match(self.inv, cand[:, :_CHECK_FIRST], q)
        if not found.all():  # rare: try the cell's other candidates, then every triangle
            miss = np.flatnonzero(~found)
            f2, t2, b2 = self._first_match(self.inv, cand[miss], q[miss])
            if not f2.all():
                rest = np.flatnonzero(~f2)
                everything = np.broadcast_to(np.arange(len(self.tri)), (len(rest), len(self.tri)))
                f3, t3, b3 = self._first_match(self.inv, everything, q[miss[rest]])
                if not f3.all():
                    raise HRTFError("HRTF interpolation failed to locate a direction (degenerate triangulation)")
                t2[rest], b2[rest] = t3, b3
            tri[miss], bary[miss] = t2, b2
        w = np.where(bary < 1e-9, 0.0, bary)
        return self.tri[tri], w / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True, eq=False, repr=False)
class HRTF:
    """A set of head-related impulse responses on directions around the head.

    ``directions``: (D, 3) unit vectors in the head frame; ``irs``: (D, 2, L) float32,
    channel 0 = left ear. Arrays are read-only; derived data (onsets, spectra, the
    triangulation) is computed on first use and cached on the instance.
    """

    name: str
    sample_rate_hz: int
    directions: np.ndarray
    irs: np.ndarray
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            dirs = _unit(self.directions, "HRTF directions")
        except ValueError as exc:
            raise HRTFError(str(exc)) from exc
        irs = np.array(self.irs, dtype=np.float32, order="C", copy=True)
        if irs.ndim != 3 or irs.shape[0] != len(dirs) or irs.shape[1] != 2 or irs.shape[2] < 1:
            raise HRTFError(f"HRTF irs must have shape ({len(dirs)}, 2, L), got {irs.shape}")
        if len(dirs) < 4 or not np.all(np.isfinite(irs)):
            raise HRTFError("an HRTF needs at least 4 directions and finite impulse responses")
        if int(self.sample_rate_hz) != self.sample_rate_hz or self.sample_rate_hz <= 0:
            raise HRTFError(f"HRTF sample rate must be a positive integer, got {self.sample_rate_hz}")
        dirs.flags.writeable = False
        irs.flags.writeable = False
        object.__setattr__(self, "sample_rate_hz", int(self.sample_rate_hz))
        object.__setattr__(self, "directions", dirs)
        object.__setattr__(self, "irs", irs)

    def __repr__(self) -> str:
        d, _, n = self.irs.shape
        return f"HRTF(name={self.name!r}, sample_rate_hz={self.sample_rate_hz}, directions={d}, length={n})"

    @property
    def length(self) -> int:
        return self.irs.shape[-1]

    @property
    def onsets(self) -> np.ndarray:
        """(D, 2) onset of every HRIR in (fractional) samples; see :func:`estimate_onsets`."""
        if "onsets" not in self._cache:
            self._cache["onsets"] = estimate_onsets(self.irs)
        return self._cache["onsets"]

    def _locator(self) -> _Locator:
        if "locator" not in self._cache:
            self._cache["locator"] = _Locator(self.directions)
        return self._cache["locator"]

    def spectra(self, n_fft: int) -> np.ndarray:
        """(D, 2, n_fft // 2 + 1) complex64 spectra of the zero-padded HRIRs (cached per ``n_fft``)."""
        key = ("spectra", int(n_fft))
        if key not in self._cache:
            if n_fft < self.length:
                raise ValueError(f"n_fft={n_fft} is shorter than the HRIRs ({self.length} samples)")
            self._cache[key] = np.fft.rfft(self.irs, int(n_fft), axis=-1).astype(np.complex64)
        return self._cache[key]

    def aligned_spectra(self, n_fft: int) -> np.ndarray:
        """Spectra advanced so every onset sits at ``onsets.min()``; multiply by
        ``exp(-2j pi k (onset - onsets.min()) / n_fft)`` to get :meth:`spectra` back."""
        key = ("aligned", int(n_fft))
        if key not in self._cache:
            shift = self.onsets - self.onsets.min()
            k = np.arange(n_fft // 2 + 1)
            phase = np.exp(2j * np.pi * shift[..., None] * k / n_fft)
            self._cache[key] = (self.spectra(n_fft) * phase).astype(np.complex64)
        return self._cache[key]

    def lookup_weights(self, dirs_head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) head-frame directions -> ((N, 3) int64 direction indices, (N, 3) float64 weights summing to 1)."""
        return self._locator().locate(_unit(dirs_head))

    def lookup_spectra(self, dirs_head: np.ndarray, n_fft: int) -> np.ndarray:
        """(N, 2, n_fft // 2 + 1) complex64 interpolated spectra, onsets interpolated separately."""
        idx, w = self.lookup_weights(dirs_head)
        spec, w32 = self.aligned_spectra(n_fft), w.astype(np.float32)[:, :, None, None]
        h = w32[:, 0] * spec[idx[:, 0]] + w32[:, 1] * spec[idx[:, 1]] + w32[:, 2] * spec[idx[:, 2]]  # (N, 2, F)
        delay = np.einsum("nk,nkc->nc", w, self.onsets[idx]) - self.onsets.min()  # (N, 2) samples
        ang = (-2 * np.pi / n_fft * delay[..., None]).astype(np.float32) * np.arange(n_fft // 2 + 1, dtype=np.float32)
        phase = np.empty(ang.shape, dtype=np.complex64)
        phase.real, phase.imag = np.cos(ang), np.sin(ang)
        return h * phase

    def lookup(self, dirs_head: np.ndarray) -> np.ndarray:
        """(N, 3) head-frame directions -> (N, 2, L) float32 interpolated HRIRs (measured ones reproduced exactly)."""
        q = _unit(dirs_head)
        n_fft = _next_pow2(self.length + np.ceil(np.ptp(self.onsets)) + 1)
        out = np.fft.irfft(self.lookup_spectra(q, n_fft), n_fft, axis=-1)[..., : self.length].astype(np.float32)
        idx, w = self.lookup_weights(q)
        exact = w.max(axis=1) == 1.0
        out[exact] = self.irs[idx[exact, w[exact].argmax(axis=1)]]
        return out


_LOADED: dict[tuple, HRTF] = {}


def _check_rate(sample_rate_hz) -> int:
    ok = isinstance(sample_rate_hz, int | float | np.integer | np.floating) and not isinstance(sample_rate_hz, bool)
    if not ok or int(sample_rate_hz) != sample_rate_hz or int(sample_rate_hz) not in SUPPORTED_SAMPLE_RATES_HZ:
        raise HRTFError(f"unsupported HRTF sample rate {sample_rate_hz!r} Hz; supported: {SUPPORTED_SAMPLE_RATES_HZ}")
    return int(sample_rate_hz)


def _resample(irs: np.ndarray, fs_in: float, fs_out: int) -> np.ndarray:
    if abs(fs_in - round(fs_in)) > 1e-6:
        raise HRTFError(f"HRTF sample rate {fs_in} Hz is not an integer; cannot resample it")
    g = gcd(int(round(fs_in)), fs_out)
    up, down = fs_out // g, int(round(fs_in)) // g
    return irs if up == down else resample_poly(irs, up, down, axis=-1)


def _complete_poles(dirs: np.ndarray, irs: np.ndarray, gap_deg: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Add a synthetic direction at each pole farther than ``gap_deg`` from every measured one."""
    onsets = estimate_onsets(irs)
    n = _next_pow2(2 * irs.shape[-1])
    k = np.arange(n // 2 + 1)
    for pole in (np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, -1.0])):
        ang = np.degrees(np.arccos(np.clip(dirs @ pole, -1, 1)))
        if ang.min() <= gap_deg:
            continue
        ring = ang <= ang.min() + 5.0
        mean_onset = onsets[ring].mean(axis=0)
        spec = np.fft.rfft(irs[ring], n, axis=-1) * np.exp(2j * np.pi * (onsets[ring] - mean_onset)[..., None] * k / n)
        new = np.fft.irfft(spec.mean(axis=0), n, axis=-1)[:, : irs.shape[-1]]
        dirs, irs = np.vstack([dirs, pole]), np.concatenate([irs, new[None]])
        onsets = np.vstack([onsets, mean_onset])
    return dirs, irs


def _diffuse_field_scale(irs: np.ndarray, fs: float, band_hz=(250.0, 1000.0)) -> float:
    n = _next_pow2(max(irs.shape[-1], int(fs / 50)))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    sel = (f >= band_hz[0]) & (f <= band_hz[1])
    power = np.mean(np.abs(np.fft.rfft(irs, n, axis=-1)[..., sel]) ** 2)
    return 1.0 / np.sqrt(power) if power > 0 else 1.0


def _build(source: str, fs: int) -> HRTF:
    from avworld.acoustics import headmodel, sofa

    if source == "spherical":
        dirs, irs = headmodel.spherical_head_hrirs(fs)
        return HRTF("spherical", fs, dirs, irs)
    if source == "kemar":
        path = sofa.kemar_data_path()
        if path is None:
            warnings.warn(
                "HRTF 'kemar' needs the MIT KEMAR data shipped with the 'slab' package (pip install slab); "
                "falling back to the analytic 'spherical' head model",
                RuntimeWarning,
                stacklevel=3,
            )
            return load_hrtf("spherical", fs)
        dirs, irs, fs_in = sofa.read_kemar(path)
        irs = irs * _diffuse_field_scale(irs, fs_in)
        name = "kemar"
    else:
        dirs, irs, fs_in = sofa.read_sofa(source)
        name = Path(source).name
    dirs, irs = _complete_poles(dirs, irs)
    return HRTF(name, fs, dirs, _resample(irs, fs_in, fs))


def load_hrtf(source: str = "kemar", sample_rate_hz: int = 16000) -> HRTF:
    """Load an HRTF set at ``sample_rate_hz`` (cached per source and rate in this process).

    ``source``: ``"kemar"`` (MIT KEMAR, normal pinna, from the ``slab`` package),
    ``"spherical"`` (analytic rigid sphere, :mod:`avworld.acoustics.headmodel`) or a path to
    a ``.sofa`` file (SimpleFreeFieldHRIR, read with h5py, :mod:`avworld.acoustics.sofa`).
    Measured sets are resampled with :func:`scipy.signal.resample_poly`.
    """
    fs = _check_rate(sample_rate_hz)
    src = str(source)
    if src in ("kemar", "spherical"):
        key: tuple = (src, fs)
    else:
        path = Path(src).expanduser()
        if not path.exists() and path.suffix.lower() != ".sofa" and "/" not in src and "\\" not in src:
            raise HRTFError(f"unknown HRTF source {src!r}; use 'kemar', 'spherical' or the path of a .sofa file")
        src = str(path.resolve()) if path.exists() else str(path)
        key = (src, fs, path.stat().st_mtime_ns if path.exists() else None)
    if key not in _LOADED:
        hrtf = _build(src, fs)
        hrtf._locator()
        _LOADED[key] = hrtf
    return _LOADED[key]
