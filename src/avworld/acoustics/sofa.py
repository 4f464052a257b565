"""Readers for measured HRIR sets: SOFA files and the MIT KEMAR data shipped with ``slab``.

Both return ``(directions, irs, sample_rate_hz)``: unit vectors ``(D, 3)`` in the head
frame (+x nose, +y left ear, +z up; azimuth counter-clockwise from +x, elevation up),
impulse responses ``(D, 2, L)`` float64 with channel 0 = left ear, and the native rate.

SOFA (AES69) files are netCDF-4, i.e. HDF5: variables are root datasets named
``Data.IR`` (M, R, N), ``Data.SamplingRate``, ``Data.Delay`` (I|M, R), ``SourcePosition``
(I|M, C) with ``Type`` ("spherical": azimuth deg, elevation deg, radius m, or
"cartesian": metres), ``ListenerPosition`` / ``ListenerView`` / ``ListenerUp`` and
``ReceiverPosition`` (R, C, I). Directions are ``SourcePosition - ListenerPosition``
rotated into the listener's (view, up) frame; receivers are ordered left, right (if
``ReceiverPosition`` says receiver 0 is on the right they are swapped); integer
``Data.Delay`` values are applied as leading zeros.

``slab`` stores KEMAR as ``slab/data/mit_kemar_normal_pinna.bz2``: a bz2-compressed
pickle of a ``slab.hrtf.HRTF`` whose ``data`` is a list of 710 ``slab.filter.Filter``
objects (``.data``: (512, 2) float64 HRIR at 44.1 kHz, columns left/right) and whose
``sources`` is a (710, 3) array of SOFA spherical coordinates (azimuth counter-clockwise,
elevation -40..90 deg, radius 1.4 m) converted from the MIT SOFA file. We locate the file
with :func:`importlib.util.find_spec` (which does not execute slab) and unpickle it with a
restricted unpickler that maps slab's classes to a plain attribute holder and allows only
numpy's array reconstruction, so slab (and its sound-device and matplotlib imports) is
never imported.
"""

from __future__ import annotations

import bz2
import importlib.util
import pickle
from pathlib import Path

import numpy as np

from avworld.acoustics.hrtf import HRTFError

KEMAR_FILE = "mit_kemar_normal_pinna.bz2"
_REQUIRED = ("Data.IR", "Data.SamplingRate", "SourcePosition")


def _attr(ds, name: str, default: str = "") -> str:
    val = ds.attrs.get(name, default)
    if isinstance(val, bytes):
        val = val.decode("utf-8", "replace")
    if isinstance(val, np.ndarray):
        val = val.tolist()
        val = val[0] if isinstance(val, list) and val else val
        if isinstance(val, bytes):
            val = val.decode("utf-8", "replace")
    return str(val)


def _to_cartesian(pos: np.ndarray, kind: str, what: str, path: Path) -> np.ndarray:
    kind = kind.lower()
    if kind == "cartesian":
        return pos.astype(np.float64)
    if kind == "spherical":
        az, el = np.radians(pos[:, 0]), np.radians(pos[:, 1])
        r = pos[:, 2] if pos.shape[1] > 2 else np.ones(len(pos))
        return np.column_stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)])
    raise HRTFError(f"{path}: {what} has Type={kind!r}; expected 'spherical' or 'cartesian'")


def _first_row(f, name: str, default) -> np.ndarray:
    if name not in f:
        return np.asarray(default, dtype=np.float64)
    arr = np.asarray(f[name][()], dtype=np.float64)
    return arr.reshape(-1, arr.shape[-1])[0] if arr.ndim > 1 else arr


def read_sofa(path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Read a SimpleFreeFieldHRIR-style SOFA file; raises :class:`HRTFError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise HRTFError(f"SOFA file {str(path)!r} not found; pass an existing .sofa path, 'kemar' or 'spherical'")
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise HRTFError("reading SOFA files needs h5py: pip install h5py") from exc
    if not h5py.is_hdf5(path):
        raise HRTFError(
            f"{path} is not an HDF5/netCDF-4 file; SOFA files must be netCDF-4 (netCDF-3 classic is not supported)"
        )
    with h5py.File(path, "r") as f:
        missing = [v for v in _REQUIRED if v not in f]
        if missing:
            raise HRTFError(f"{path} is missing SOFA variable(s) {missing}; is it a SimpleFreeFieldHRIR file?")
        conv = _attr(f, "SOFAConventions")
        if _attr(f, "DataType", "FIR") not in ("FIR", "FIR-E"):
            raise HRTFError(f"{path}: DataType={_attr(f, 'DataType')!r}; only FIR impulse responses are supported")
        ir = np.asarray(f["Data.IR"][()], dtype=np.float64)
        if ir.ndim == 4 and ir.shape[2] == 1:  # FIR-E with a single emitter
            ir = ir[:, :, 0, :]
        if ir.ndim != 3:
            raise HRTFError(f"{path}: Data.IR must be (M, R, N), got shape {ir.shape} (conventions {conv!r})")
        m, r, n = ir.shape
        if r != 2:
            raise HRTFError(f"{path}: Data.IR has R={r} receivers; binaural HRIRs need exactly 2 (left, right)")
        if m < 4 or n < 1:
            raise HRTFError(f"{path}: Data.IR shape {ir.shape} has too few measurements (M >= 4) or samples")
        if not np.all(np.isfinite(ir)):
            raise HRTFError(f"{path}: Data.IR contains NaN or inf")
        fs = np.unique(np.asarray(f["Data.SamplingRate"][()], dtype=np.float64).reshape(-1))
        if len(fs) != 1 or not fs[0] > 0:
            raise HRTFError(f"{path}: Data.SamplingRate must be one positive value, got {fs.tolist()}")
        units = _attr(f["Data.SamplingRate"], "Units", "hertz").lower()
        if units not in ("hertz", "hz"):
            raise HRTFError(f"{path}: Data.SamplingRate Units={units!r}; expected 'hertz'")
        src_ds = f["SourcePosition"]
        src = np.asarray(src_ds[()], dtype=np.float64)
        if src.ndim != 2 or src.shape[1] != 3 or src.shape[0] not in (1, m):
            raise HRTFError(f"{path}: SourcePosition must be ({m}, 3), got {src.shape}")
        src = _to_cartesian(np.broadcast_to(src, (m, 3)), _attr(src_ds, "Type", "spherical"), "SourcePosition", path)
        lis_pos = _first_row(f, "ListenerPosition", (0.0, 0.0, 0.0))
        view = _first_row(f, "ListenerView", (1.0, 0.0, 0.0))
        up = _first_row(f, "ListenerUp", (0.0, 0.0, 1.0))
        if "ListenerView" in f:
            view = _to_cartesian(view[None], _attr(f["ListenerView"], "Type", "cartesian"), "ListenerView", path)[0]
        delay = np.zeros((m, 2))
        if "Data.Delay" in f:
            d = np.asarray(f["Data.Delay"][()], dtype=np.float64)
            if d.size not in (2, 2 * m):
                raise HRTFError(f"{path}: Data.Delay must be (1, 2) or ({m}, 2), got {d.shape}")
            delay = np.broadcast_to(d.reshape(-1, 2), (m, 2))
        swap = False
        if "ReceiverPosition" in f:
            rp = np.asarray(f["ReceiverPosition"][()], dtype=np.float64)
            if (
                rp.ndim >= 2
                and rp.shape[0] == 2
                and rp.shape[1] == 3
                and _attr(f["ReceiverPosition"], "Type", "cartesian").lower() == "cartesian"
            ):
                y = rp.reshape(2, 3, -1)[:, 1, 0]
                swap = bool(y[0] < 0 < y[1])
    # head frame: x = view, z = up (orthogonalized), y = z cross x (left)
    x = view / max(np.linalg.norm(view), 1e-12)
    z = up - np.dot(up, x) * x
    if np.linalg.norm(z) < 1e-9:
        raise HRTFError(f"{path}: ListenerView and ListenerUp are parallel")
    z /= np.linalg.norm(z)
    rot = np.stack([x, np.cross(z, x), z])  # rows: head axes in file coordinates
    dirs = (src - lis_pos) @ rot.T
    norm = np.linalg.norm(dirs, axis=1, keepdims=True)
    if np.any(norm < 1e-9):
        raise HRTFError(f"{path}: a SourcePosition coincides with the listener")
    if swap:
        ir = ir[:, ::-1, :]
        delay = delay[:, ::-1]
    shift = np.rint(delay).astype(int)
    if np.any(shift < 0):
        raise HRTFError(f"{path}: Data.Delay must be non-negative")
    if shift.max() > 0:
        out = np.zeros((m, 2, n + int(shift.max())))
        for k in range(m):
            for ear in range(2):
                out[k, ear, shift[k, ear] : shift[k, ear] + n] = ir[k, ear]
        ir = out
    return dirs / norm, ir, float(fs[0])


class _Attrs:
    """Plain stand-in for pickled slab objects: just keeps their attributes."""

    def __setstate__(self, state) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


class _KemarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if module in ("slab.hrtf", "slab.filter") and name in ("HRTF", "Filter"):
            return _Attrs
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np.zeros(1).__reduce__()[0]  # numpy._core.multiarray._reconstruct, any numpy version
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in slab's KEMAR data")


def kemar_data_path() -> Path | None:
    """Path of slab's bundled KEMAR file, found without importing slab; None if slab is absent."""
    spec = importlib.util.find_spec("slab")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        p = Path(root) / "data" / KEMAR_FILE
        if p.is_file():
            return p
    return None


def read_kemar(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Read slab's pickled MIT KEMAR (normal pinna) set; see the module docstring."""
    try:
        with bz2.open(path, "rb") as fh:
            obj = _KemarUnpickler(fh).load()
        irs = np.stack([np.asarray(f.data, dtype=np.float64).T for f in obj.data])  # (D, 2, L)
        src = np.asarray(obj.sources, dtype=np.float64)[:, :3]
        fs = float(obj.samplerate)
    except (OSError, EOFError, AttributeError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        raise HRTFError(f"could not read slab's KEMAR data {path}: {exc}; reinstall slab (pip install slab)") from exc
    if irs.ndim != 3 or irs.shape[1] != 2 or len(src) != len(irs):
        raise HRTFError(f"unexpected KEMAR layout in {path}: irs {irs.shape}, sources {src.shape}")
    return _to_cartesian(src, "spherical", "sources", path) / src[:, 2:3], irs, fs
