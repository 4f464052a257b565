"""Coherent ray packets: Embree 4's ``rtcIntersect16`` on the library that ``embreex`` ships.

Why our own binding: ``embreex`` only exposes single-ray queries (``rtcIntersect1`` in a
Cython loop) on a scene built with Embree's default (medium) BVH quality. Camera rays are
coherent; traced as 16-ray packets of 4x4 pixel tiles against a high-quality BVH
(spatial splits pay off for the long wall and floor triangles of indoor scenes), Embree
runs them about 1.4x faster on one core. ``embreex`` cannot pass packets, so this module
calls the same bundled ``libembree4`` directly. The loop over a block's packets is
compiled with numba (``nogil``: one GIL release per block, like ``embreex``, so render
threads scale). Without numba it falls back to one :mod:`ctypes` call per packet (~0.25 us
each, same results): with one thread each call releases the GIL; with several threads the
GIL is held instead, because 1,024 GIL hand-offs per frame between a tracing thread and a
shading thread stall both (measured: env steps/s halved).

Nothing here is required. :meth:`PacketTracer.create` returns None, and callers keep
using :class:`~avworld.geometry.raycast.RayCaster`, when the library cannot be found, is
not Embree 4, or fails a self-check against ``embreex`` on the scene (a struct layout that
does not match this module's). Set ``AVWORLD_EMBREE_PACKETS=0`` to turn it off.

Results can differ from ``embreex``'s in which of two triangles a ray hits exactly at their
shared edge (about 0.2 % of camera rays; the distance agrees to ~1e-6 relative); they are
deterministic for a given scene, like Embree's.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

import numpy as np

__all__ = ["PACKET", "PacketTracer", "find_embree_library", "tile_order"]

#: rays per packet (``rtcIntersect16``)
PACKET = 16
# RTCRayHit16 in structure-of-arrays layout, one 16-lane row per field (Embree 4 rtcore_ray.h):
# ray: org x y z, tnear, dir x y z, time, tfar, mask, id, flags; hit: Ng x y z, u, v, primID,
# geomID, instID[L], instPrimID[L] with L = RTC_MAX_INSTANCE_LEVEL_COUNT (1 in the bundled build).
# Rows beyond them pad the packet (Embree writes none of them); 32 rows leave room for L <= 6, so
# a library built otherwise cannot write past a packet before the self-check rejects it.
_OX, _TNEAR, _DX, _TIME, _TFAR, _MASK, _ID, _FLAGS = 0, 3, 4, 7, 8, 9, 10, 11
_NGX, _U, _V, _PRIM, _GEOM, _INST, _INSTPRIM = 12, 15, 16, 17, 18, 19, 20
_ROWS = 32  # 32 * 64 bytes: a multiple of Embree's 64-byte alignment
_PACKET_FLOATS = _ROWS * PACKET
_INVALID = np.uint32(0xFFFFFFFF)
_BUILD_QUALITY_HIGH = 2
_GEOMETRY_TRIANGLE = 0
_BUFFER_INDEX, _BUFFER_VERTEX = 0, 1
_FORMAT_UINT3, _FORMAT_FLOAT3 = 0x5003, 0x9003
_DEVICE_PROPERTY_VERSION = 0

_LIB_LOCK = threading.Lock()
_LIB: list = []  # [CDLL or None] once looked up


def find_embree_library() -> str | None:
    """Path of the ``libembree4`` that the ``embreex`` wheel bundles (the library it loads), or None.
    A system Embree is not used: its build options (and so its ray struct) are unknown."""
    try:
        import embreex
    except ImportError:  # pragma: no cover - embreex is a hard dependency
        return None
    pkg = Path(embreex.__file__).resolve().parent
    for folder, pattern in ((pkg.parent / "embreex.libs", "libembree4*.so*"), (pkg / ".dylibs", "libembree4*.dylib"),
                            (pkg.parent / "embreex.libs", "embree4*.dll"), (pkg, "*embree4*")):
        found = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if found:
            return str(found[0])
    return None


def _library():
    """The ctypes handle of Embree 4 with the prototypes used here, or None."""
    with _LIB_LOCK:
        if not _LIB:
            _LIB.append(_load())
        return _LIB[0]


def _load():
    path = find_embree_library()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # CDLL: the GIL is released during every call
    except OSError:
        return None
    vp, sz, i, u = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint
    protos = {
        "rtcNewDevice": (vp, [ctypes.c_char_p]), "rtcReleaseDevice": (None, [vp]),
        "rtcGetDeviceProperty": (ctypes.c_ssize_t, [vp, i]), "rtcGetDeviceError": (i, [vp]),
        "rtcNewScene": (vp, [vp]), "rtcReleaseScene": (None, [vp]), "rtcCommitScene": (None, [vp]),
        "rtcSetSceneBuildQuality": (None, [vp, i]), "rtcNewGeometry": (vp, [vp, i]),
        "rtcSetNewGeometryBuffer": (vp, [vp, i, u, i, sz, sz]), "rtcCommitGeometry": (None, [vp]),
        "rtcAttachGeometry": (u, [vp, vp]), "rtcReleaseGeometry": (None, [vp]),
    }
    try:
        for name, (res, args) in protos.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        fn = lib.rtcIntersect16
    except AttributeError:
        return None
    fn.restype, fn.argtypes = None, None  # called with prepared c_void_p objects: the cheapest ctypes call
    try:  # the same function through a handle that keeps the GIL (the several-threads fallback)
        held = ctypes.PyDLL(path).rtcIntersect16
        held.restype, held.argtypes = None, None
    except (OSError, AttributeError):  # pragma: no cover - loaded just above
        held = fn
    lib.intersect16_gil_held = held
    return lib


_LOOP_LOCK = threading.Lock()
_LOOPS: dict = {}  # function address -> numba loop (or None without numba)


def _native_loop(lib):
    """A numba-compiled ``loop(valid, scene, base, packets, stride)`` calling ``rtcIntersect16``
    on ``packets`` packets ``stride`` bytes apart from address ``base``, GIL released; None
    without numba. Compiled once per process (~0.3 s; the function's address is baked in, so
    numba's disk cache cannot keep it)."""
    address = ctypes.cast(lib.rtcIntersect16, ctypes.c_void_p).value
    with _LOOP_LOCK:
        if address not in _LOOPS:
            _LOOPS[address] = _compile_loop(address)
        return _LOOPS[address]


def _compile_loop(address: int):
    if os.environ.get("AVWORLD_NUMBA", "1").strip() == "0":
        return None
    try:
        import numba
    except ImportError:
        return None
    vp = ctypes.c_void_p
    fn = ctypes.CFUNCTYPE(None, vp, vp, vp, vp)(address)

    @numba.njit(nogil=True, cache=False)
    def loop(valid, scene, base, packets, stride):  # pragma: no cover - compiled; covered through trace()
        for k in range(packets):
            fn(valid, scene, base + k * stride, 0)

    try:
        loop(0, 0, 0, 0, 0)  # compile now (zero packets: nothing is called)
    except Exception:  # pragma: no cover - a numba that cannot compile this: use the ctypes loop
        return None
    return loop


def tile_order(width: int, height: int, tile: int = 4) -> np.ndarray:
    """(P,) pixel indices (row-major) in packet order: ``tile`` x ``tile`` tiles, the tiles of
    a band of ``tile`` rows left to right, bands top to bottom. Rows ``[r0, r1)`` with
    ``r0, r1`` multiples of ``tile`` (or the height) are packet-order positions ``[r0 W, r1 W)``."""
    yy, xx = np.divmod(np.arange(width * height), width)
    return np.lexsort((xx % tile, yy % tile, xx // tile, yy // tile)).astype(np.intp)


class _Buffers(threading.local):
    """Per-thread packet memory: a 64-byte aligned float32 block and a c_void_p per packet."""

    def __init__(self) -> None:
        self.capacity = 0
        self.block = None
        self.pointers: list = []

    def get(self, packets: int) -> np.ndarray:
        if packets > self.capacity:
            raw = np.zeros(packets * _PACKET_FLOATS + 16, np.float32)
            start = (-raw.ctypes.data) % 64 // 4
            self.block = raw[start : start + packets * _PACKET_FLOATS].reshape(packets, _ROWS, PACKET)
            base = self.block.ctypes.data
            self.pointers = [ctypes.c_void_p(base + 4 * _PACKET_FLOATS * k) for k in range(packets)]
            self.capacity = packets
            # fields Embree only reads, set once: tnear, time, mask, id, flags
            u32 = self.block.view(np.uint32)
            self.block[:, _TNEAR] = 0.0
            self.block[:, _TIME] = 0.0
            u32[:, _MASK] = _INVALID
            u32[:, _ID : _FLAGS + 1] = 0
        return self.block[:packets]


class PacketTracer:
    """Closest hits of rays sharing one origin, traced as 16-ray packets (see module docstring).

    Build with :meth:`create`; :meth:`trace` takes directions in the order the packets
    should be formed (4x4 pixel tiles: :func:`tile_order`). Thread-safe: each thread
    traces in its own packet memory. Not picklable; owners rebuild it after unpickling.
    """

    def __init__(self, lib, triangles: np.ndarray) -> None:
        self._lib = lib
        self._device = self._scene = None
        tri = np.ascontiguousarray(np.asarray(triangles, np.float32).reshape(-1, 3, 3))
        # one build thread asked for (Embree may still use as many as another device in the process
        # allows, e.g. embreex's); rebuilds of the same scene gave the same BVH in every test and benchmark
        dev = lib.rtcNewDevice(b"threads=1")
        if not dev:
            raise RuntimeError("rtcNewDevice failed")
        self._device = dev
        scene = lib.rtcNewScene(dev)
        self._scene = scene
        lib.rtcSetSceneBuildQuality(scene, _BUILD_QUALITY_HIGH)
        geom = lib.rtcNewGeometry(dev, _GEOMETRY_TRIANGLE)
        if not geom:
            raise RuntimeError("rtcNewGeometry failed")
        nf = len(tri)
        vb = lib.rtcSetNewGeometryBuffer(geom, _BUFFER_VERTEX, 0, _FORMAT_FLOAT3, 12, 3 * nf)
        ib = lib.rtcSetNewGeometryBuffer(geom, _BUFFER_INDEX, 0, _FORMAT_UINT3, 12, nf)
        if not vb or not ib:
            lib.rtcReleaseGeometry(geom)
            raise RuntimeError("rtcSetNewGeometryBuffer failed")
        ctypes.memmove(vb, tri.ctypes.data, tri.nbytes)
        idx = np.arange(3 * nf, dtype=np.uint32)
        ctypes.memmove(ib, idx.ctypes.data, idx.nbytes)
        lib.rtcCommitGeometry(geom)
        lib.rtcAttachGeometry(scene, geom)
        lib.rtcReleaseGeometry(geom)
        lib.rtcCommitScene(scene)
        error = lib.rtcGetDeviceError(dev)  # (reading it clears it)
        if error != 0:
            raise RuntimeError(f"Embree reported error {error} building the scene")
        self._scene_arg = ctypes.c_void_p(scene)
        valid = np.zeros(2 * PACKET, np.int32)
        start = (-valid.ctypes.data) % 64 // 4
        self._valid_mem = valid  # keeps the aligned masks alive
        self._valid_all = valid[start : start + PACKET]
        self._valid_all[:] = -1
        self._valid_all_arg = ctypes.c_void_p(self._valid_all.ctypes.data)
        self._buffers = _Buffers()
        self._loop = _native_loop(lib)

    @property
    def native_loop(self) -> bool:
        """Whether a block's packets are traced in one numba-compiled call (see module docstring)."""
        return self._loop is not None

    @classmethod
    def create(cls, triangles: np.ndarray, check=None) -> PacketTracer | None:
        """A tracer for ``triangles`` (F, 3, 3), or None if packets are unavailable (see module
        docstring). ``check``: a :class:`~avworld.geometry.raycast.RayCaster` of the same
        triangles to compare a probe of rays with; the tracer is used only if they agree."""
        if os.environ.get("AVWORLD_EMBREE_PACKETS", "1").strip() == "0":
            return None
        lib = _library()
        if lib is None or len(np.asarray(triangles).reshape(-1, 9)) == 0:
            return None
        try:
            tracer = cls(lib, triangles)
            if lib.rtcGetDeviceProperty(tracer._device, _DEVICE_PROPERTY_VERSION) // 10000 != 4:
                return None
        except RuntimeError:
            return None
        if check is not None and not tracer._agrees_with(check):
            return None
        return tracer

    def _agrees_with(self, raycaster) -> bool:
        """Probe rays from the scene's centre (a sphere of directions, 1000 rays in packets and
        a ragged tail): same misses as ``embreex`` and the same distances to 1e-4 relative."""
        tri = raycaster.scene.triangles
        if len(tri) == 0:
            return True
        centre = (tri.reshape(-1, 3).min(0) + tri.reshape(-1, 3).max(0)) / 2
        n = 1000
        k = np.arange(n) + 0.5
        z = 1 - 2 * k / n
        phi = np.pi * (1 + 5**0.5) * k
        r = np.sqrt(1 - z * z)
        d = np.stack([r * np.cos(phi), r * np.sin(phi), z]).astype(np.float32)
        o = centre.astype(np.float32)
        mine = self.trace(o, d)
        ref = raycaster.embree.run(np.broadcast_to(o, (n, 3)).copy(), np.ascontiguousarray(d.T), output=1)
        hit = ref["primID"] >= 0
        if np.any(hit != (mine["primID"] >= 0)):
            return False
        t0, t1 = ref["tfar"][hit], mine["tfar"][hit]
        return bool(np.all(np.abs(t0 - t1) <= 1e-4 * np.maximum(t0, 1.0)))

    def trace(self, origin, directions: np.ndarray, hold_gil: bool = False) -> dict[str, np.ndarray]:
        """Closest hits of rays from ``origin`` (3,) along unit ``directions`` (3, m) float32.

        Packet ``j`` holds rays ``16 j .. 16 j + 15``. Returns (m,) arrays: ``tfar`` float32
        (1e37 for a miss), ``u``, ``v`` (barycentrics), ``ngx``, ``ngy``, ``ngz`` (the
        unnormalized geometric normal), zeros for a miss, and ``primID`` int32 (-1 for a miss).
        ``hold_gil``: without numba, keep the GIL during the per-packet calls (for callers
        that trace from several threads; see the module docstring). Same results either way.
        """
        d = np.asarray(directions, np.float32)
        m = d.shape[1]
        if m == 0:
            empty = {k: np.zeros(0, np.float32) for k in ("tfar", "u", "v", "ngx", "ngy", "ngz")}
            return {**empty, "primID": np.zeros(0, np.int32)}
        packets = -(-m // PACKET)
        buf = self._buffers.get(packets)
        u32 = buf.view(np.uint32)
        o = np.asarray(origin, np.float32).reshape(3)
        tail = m - (packets - 1) * PACKET
        for c in range(3):
            buf[:, _OX + c] = o[c]
            if tail == PACKET:
                buf[:, _DX + c] = d[c].reshape(packets, PACKET)
            else:
                row = buf[:, _DX + c]
                row[:-1] = d[c, : m - tail].reshape(packets - 1, PACKET)
                row[-1, :tail] = d[c, m - tail :]
                row[-1, tail:] = 1.0  # unused lanes (masked off), kept finite
        buf[:, _TFAR] = np.float32(1e37)  # and the fields Embree writes on a hit:
        buf[:, _NGX : _V + 1] = 0.0
        u32[:, _PRIM : _INSTPRIM + 1] = _INVALID
        full = packets - (tail != PACKET)
        fn = self._lib.intersect16_gil_held if hold_gil else self._lib.rtcIntersect16
        scene, valid, ptrs = self._scene_arg, self._valid_all_arg, self._buffers.pointers
        if self._loop is not None:
            self._loop(self._valid_all.ctypes.data, self._scene, buf.ctypes.data, full, 4 * _PACKET_FLOATS)
        else:
            for k in range(full):
                fn(valid, scene, ptrs[k], None)
        if tail != PACKET:
            mask = np.zeros(2 * PACKET, np.int32)
            lanes = mask[(-mask.ctypes.data) % 64 // 4 :][:PACKET]
            lanes[:tail] = -1
            fn(ctypes.c_void_p(lanes.ctypes.data), scene, ptrs[packets - 1], None)

        def field(rows, r):  # a packed (m,) copy of one field row of every packet
            v = rows[:, r].reshape(-1)[:m]  # a copy, except for a single packet (then a view)
            return v.copy() if np.may_share_memory(v, rows) else v

        return {"tfar": field(buf, _TFAR), "u": field(buf, _U), "v": field(buf, _V), "ngx": field(buf, _NGX),
                "ngy": field(buf, _NGX + 1), "ngz": field(buf, _NGX + 2), "primID": field(u32, _PRIM).view(np.int32)}

    def close(self) -> None:
        """Release the Embree scene and device (also done when the tracer is collected)."""
        lib = self._lib
        if self._scene:
            lib.rtcReleaseScene(self._scene)
            self._scene = None
        if self._device:
            lib.rtcReleaseDevice(self._device)
            self._device = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __getstate__(self):
        raise TypeError("PacketTracer holds Embree handles and does not pickle; rebuild it with create()")
