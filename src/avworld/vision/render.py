"""Fast CPU rendering of RGB, depth and semantic images with Embree ray casting.

One primary ray per pixel; every pose of a batch goes through a single Embree call.
Shading is a handful of vectorized gathers from per-face tables built once per scene:

* texture: the hit's barycentric coordinates (returned by Embree) interpolate
  per-face planar world coordinates (the plane picked by the face normal's dominant
  axis), which index the material's baked procedural texture
  (:mod:`avworld.vision.textures`) - so textures are fixed to the world;
* light: ambient + a fixed key light (Lambertian, per face) + a headlight
  ``|n . view|`` (per pixel), with a mild distance falloff; the product of the sRGB
  texture and the gamma-encoded light (power law 1/2.2) gives the output colour.

Threads. ``Renderer(..., threads=k)`` splits a frame's rays into blocks of rows that
``k`` threads (the caller and ``k - 1`` pool workers) claim one by one: Embree releases
the GIL while it traces, and so do numpy's loops over a few thousand pixels. Every block
is computed by the same code whichever thread takes it, so the images are bit-identical
for any thread count. :meth:`Renderer.submit` starts a frame on the workers and returns
at once; the caller can do other work (the simulator computes the step's audio) and then
joins in on the remaining blocks with :meth:`RenderJob.result`.

Outputs (see :meth:`Renderer.render_batch`): ``rgb`` uint8, ``depth`` float32
planar (z) depth in metres along the optical axis like Habitat's depth sensor,
``semantic`` int16 ids from :data:`~avworld.geometry.semantics.SEMANTIC_CLASSES`
and, on request, ``instance`` int32 object ids (-1 for the building shell / misses).
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene
from avworld.vision.camera import Camera, CameraConfig, CameraError, as_poses
from avworld.vision.textures import DEFAULT_TEXTURE_SIZE, TextureAtlas

#: Everything :meth:`Renderer.render_batch` can produce.
OUTPUTS = ("rgb", "depth", "semantic", "instance")
#: What it produces by default.
DEFAULT_OUTPUTS = ("rgb", "depth", "semantic")

_GAMMA_LUT_STEPS = 256  # light levels per unit of linear light


@dataclass(frozen=True)
class Lighting:
    """Simple fixed lighting: ``(ambient + key * max(0, n.L) + headlight * |n.v|) /
    (1 + falloff_per_m * distance)``, clamped to 1 and gamma-encoded."""

    ambient: float = 0.28
    key: float = 0.42
    key_direction: tuple[float, float, float] = (0.35, 0.55, 0.76)
    headlight: float = 0.45
    falloff_per_m: float = 0.05

    def __post_init__(self) -> None:
        for name in ("ambient", "key", "headlight", "falloff_per_m"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 4.0:
                raise ValueError(f"Lighting.{name} must lie in [0, 4], got {v}")
        d = np.asarray(self.key_direction, float)
        if d.shape != (3,) or not np.linalg.norm(d) > 0:
            raise ValueError("Lighting.key_direction must be a non-zero 3-vector")


class Renderer:
    """Renders a :class:`~avworld.geometry.scene.Scene` from agent poses.

    ``render_batch(poses)`` takes (N, 3) poses and returns batched arrays
    (N, H, W, ...); ``render(pose)`` takes one (3,) pose and returns the same dict
    without the batch axis. Rays that hit nothing give rgb 0, depth ``max_depth_m``
    (1.0 when normalized) and semantic 0.
    """

    def __init__(
        self,
        scene: Scene,
        config: CameraConfig | None = None,
        raycaster: RayCaster | None = None,
        *,
        lighting: Lighting | None = None,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
        threads: int | None = 1,
    ) -> None:
        self.threads = resolve_threads(threads)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self.scene = scene
        self.config = config if config is not None else CameraConfig()
        self.camera = Camera(self.config)
        self.raycaster = raycaster if raycaster is not None else RayCaster(scene)
        if self.raycaster.scene is not scene:
            raise ValueError("raycaster was built for a different scene")
        self.lighting = lighting if lighting is not None else Lighting()
        self.floor_z = float(scene.floor_z)
        self.atlas = TextureAtlas(scene.materials, texture_size)
        self._build_face_tables()
        c = self.config
        scale = 1.0 / c.max_depth_m if c.normalize_depth else 1.0
        self._depth_factor = (self.camera.cos_forward * np.float32(scale)).astype(np.float32)
        self._depth_lo = np.float32(c.min_depth_m * scale)
        self._depth_hi = np.float32(c.max_depth_m * scale)

    # ------------------------------------------------------------------ tables
    def _build_face_tables(self) -> None:
        """Per-face lookup tables; row 0 stands for "no hit" so that ``face + 1`` indexes them."""
        s = self.scene
        nf = s.num_faces
        tri = s.triangles  # (F, 3, 3) float64
        normals = s.face_normals
        dom = np.argmax(np.abs(normals), axis=1)
        # planar (u, v) axes per dominant normal axis: z -> (x, y); x -> (y, z); y -> (x, z)
        ua = np.choose(dom, [1, 0, 0])
        va = np.choose(dom, [2, 2, 1])
        rows = np.arange(nf)[:, None]
        corner = np.arange(3)[None]
        texel = self.atlas.texel_m[s.face_material][:, None]  # (F, 1)
        tu = tri[rows, corner, ua[:, None]] / texel  # (F, 3) vertex coordinates in texels
        tv = tri[rows, corner, va[:, None]] / texel
        size = self.atlas.size
        # keep coordinates positive and small: vertex 0 moved into [0, size) plus a margin that is
        # a multiple of size (float32 keeps ~1/32 texel precision below 2**19)
        margin = float(1 << 18)
        L = self.lighting
        key_dir = np.asarray(L.key_direction, float)
        key_dir = key_dir / np.linalg.norm(key_dir)
        lit = L.ambient + L.key * np.maximum(normals @ key_dir, 0.0)

        def table(values, dtype, miss=0):
            return np.ascontiguousarray(np.concatenate([[miss], values]), dtype=dtype)

        # texel coordinates as complex64 (u + i v): one gather serves both axes
        c64 = np.complex64
        self._uv0 = table(np.mod(tu[:, 0], size) + margin + 1j * (np.mod(tv[:, 0], size) + margin), c64)
        self._duv1 = table((tu[:, 1] - tu[:, 0]) + 1j * (tv[:, 1] - tv[:, 0]), c64)
        self._duv2 = table((tu[:, 2] - tu[:, 0]) + 1j * (tv[:, 2] - tv[:, 0]), c64)
        f32 = np.float32
        # headlight |n . d| from Embree's per-hit geometric normal Ng = (v1 - v0) x (v2 - v0)
        # up to sign, whose length is twice the face area: scale by headlight / |Ng| per face
        ng = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        inv_ng = np.divide(1.0, ng, out=np.zeros_like(ng), where=ng > 0)
        self._headlight = table(L.headlight * _GAMMA_LUT_STEPS * inv_ng, f32)
        self._lit = table(lit * _GAMMA_LUT_STEPS, f32)
        self._base = table(self.atlas.base(s.face_material), np.intp, miss=self.atlas.miss_index)
        self._sem = table(s.face_semantic, np.int16)
        self._inst = table(s.face_instance, np.int32, miss=-1)
        # sRGB texels packed as uint32 (bytes R, G, B, 0 in memory order)
        packed = np.zeros((len(self.atlas.texels), 4), np.uint8)
        packed[:, :3] = self.atlas.texels
        self._texels32 = packed.view(np.uint32).reshape(-1)
        # light level (units of 1/_GAMMA_LUT_STEPS) -> gamma-encoded 8-bit scale in [0, 256]
        q = np.arange(int(_GAMMA_LUT_STEPS * 2.5) + 1, dtype=np.float64) / _GAMMA_LUT_STEPS
        self._gamma_lut = np.round(np.minimum(q, 1.0) ** (1.0 / 2.2) * 256.0).astype(np.uint32)

    # ------------------------------------------------------------------ rendering
    def render(self, pose, outputs=DEFAULT_OUTPUTS) -> dict[str, np.ndarray]:
        """Render one pose ``(x, y, yaw)``: ``rgb`` (H, W, 3) uint8, ``depth`` (H, W, 1)
        float32, ``semantic`` (H, W) int16 (and ``instance`` (H, W) int32 if asked)."""
        return self.submit(pose, outputs, batched=False).result()

    def render_batch(self, poses, outputs=DEFAULT_OUTPUTS) -> dict[str, np.ndarray]:
        """Render N poses (N, 3) (a single (3,) pose counts as N = 1) in one Embree call.

        Returns a dict with the requested ``outputs`` (any of :data:`OUTPUTS`, in that
        order): ``rgb`` (N, H, W, 3) uint8, ``depth`` (N, H, W, 1) float32 planar depth,
        ``semantic`` (N, H, W) int16, ``instance`` (N, H, W) int32. With ``threads`` > 1
        the rays are split into blocks rendered in parallel (same results).
        """
        return self.submit(poses, outputs, batched=True).result()

    def submit(self, poses, outputs=DEFAULT_OUTPUTS, batched: bool | None = None) -> RenderJob:
        """Start rendering ``poses`` on the worker threads and return at once.

        :meth:`RenderJob.result` (the caller renders the blocks no worker has claimed yet,
        then waits) returns what :meth:`render` (one (3,) pose, ``batched`` None or False)
        or :meth:`render_batch` (``batched=True`` or (N, 3) poses) would.
        """
        outputs = _check_outputs(outputs)
        p = as_poses(poses)
        if batched is None:
            batched = np.asarray(poses).ndim != 1
        if not batched and len(p) != 1:
            raise CameraError(f"render() takes one pose (3,), got {len(p)}; use render_batch()")
        job = RenderJob(self, p, outputs, batched)
        workers = min(self.threads, job.n_blocks) - 1
        if workers > 0:
            pool = self._get_pool()
            for _ in range(workers):
                pool.submit(job.work)
        return job

    def _get_pool(self) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_pid != os.getpid():  # (a forked child has no worker threads)
            self._pool = ThreadPoolExecutor(max_workers=self.threads - 1, thread_name_prefix="avworld-render")
            self._pool_pid = os.getpid()
        return self._pool

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None  # threads do not pickle; the copy starts its own pool when it needs one
        state["_pool_pid"] = 0
        state.pop("_dir_cache", None)
        return state

    def _directions(self, yaw: float) -> np.ndarray:
        """(3, P) read-only planar world directions for one yaw (cached: discrete turns repeat yaws)."""
        cache = self.__dict__.setdefault("_dir_cache", {})
        d = cache.get(yaw)
        if d is None:
            d = np.empty((3, 1, self.config.num_pixels), np.float32)
            self.camera.world_directions(np.array([yaw]), out=d.transpose(1, 2, 0))
            d = d.reshape(3, -1)
            d.flags.writeable = False
            if len(cache) >= 128:
                cache.pop(next(iter(cache)))
            cache[yaw] = d
        return d

    def _pose_blocks(self) -> list[tuple[int, int]]:
        """Pixel ranges (whole rows) one pose is cut into: enough blocks for every thread to
        get a share (two each), none below ``_MIN_BLOCK_RAYS`` rays; one block for 1 thread."""
        blocks = self.__dict__.get("_blocks_cache")
        if blocks is None:
            c = self.config
            h, w = c.height, c.width
            k = max(1, min(h, 2 * self.threads, h * w // _MIN_BLOCK_RAYS)) if self.threads > 1 else 1
            rows = [round(i * h / k) for i in range(k + 1)]
            blocks = self._blocks_cache = [(r0 * w, r1 * w) for r0, r1 in zip(rows[:-1], rows[1:])]
        return blocks

    def _trace_block(self, job: RenderJob, k: int):
        """Embree hits of block ``k`` of ``job`` (the GIL is released while Embree traces)."""
        i, lo, hi = job.blocks[k]
        npix = self.config.num_pixels
        planar = job.planar[:, i * npix + lo : i * npix + hi]  # (3, m) directions
        o = np.broadcast_to(job.origins[i], (hi - lo, 3))
        outputs = job.outputs
        need_rgb = "rgb" in outputs
        need_face = need_rgb or "semantic" in outputs or "instance" in outputs
        emb = self.raycaster.embree
        if need_rgb or (need_face and "depth" in outputs):
            return emb.run(o, planar.T, output=1)  # as fast as the plain call; gives t and barycentrics
        if need_face:
            return {"primID": emb.run(o, planar.T)}
        return {"tfar": emb.run(o, planar.T, query="DISTANCE")}

    def _shade_block(self, job: RenderJob, k: int, res) -> None:
        """Depth, semantic, instance and RGB of block ``k`` from its hits, into the job's buffers."""
        i, lo, hi = job.blocks[k]
        npix = self.config.num_pixels
        g0, g1 = i * npix + lo, i * npix + hi  # range in the flattened (N * P) outputs
        outputs = job.outputs
        out = job.flat
        t = res.get("tfar")  # left at its initial 1e37 for misses
        if "primID" in res:
            f1 = res["primID"].astype(np.intp)
            f1 += 1  # row 0 of every table = miss
        if "depth" in outputs:
            depth = out["depth"][g0:g1]
            np.multiply(t, self._depth_factor.reshape(-1)[lo:hi], out=depth)
            np.minimum(depth, self._depth_hi, out=depth)
            if self._depth_lo > 0:
                np.maximum(depth, self._depth_lo, out=depth)
        if "semantic" in outputs:
            np.take(self._sem, f1, mode="clip", out=out["semantic"][g0:g1])
        if "instance" in outputs:
            np.take(self._inst, f1, mode="clip", out=out["instance"][g0:g1])
        if "rgb" in outputs:
            out["rgb"][g0:g1] = self._shade(f1, t, res["u"], res["v"], res["Ng"], job.planar[:, g0:g1])

    def _shade(self, f1, t, bu, bv, ng, planar) -> np.ndarray:
        """sRGB (P, 3) uint8 for hits given by ``f1`` (face + 1), distance ``t``,
        barycentrics ``bu, bv``, Embree's unnormalized normals ``ng`` (P, 3) and
        directions in planar layout (3, P)."""

        def take(tab):
            return np.take(tab, f1, mode="clip")

        at = self.atlas
        mask = at.size - 1
        # texel index: interpolate per-face planar texel coordinates (u + i v) with the barycentrics
        uv = take(self._duv1) * bu
        uv += take(self._uv0)
        uv2 = take(self._duv2)
        uv2 *= bv
        uv += uv2
        iuv = uv.view(np.float32).astype(np.intp)  # interleaved u, v (all positive: truncation = floor)
        iuv &= mask
        idx = iuv[1::2] << at.shift
        idx += iuv[0::2]
        idx += take(self._base)
        texel = np.take(self._texels32, idx, mode="clip")

        # light (units of 1 / _GAMMA_LUT_STEPS): headlight |n . d| + ambient and key (per face),
        # distance falloff, then a gamma LUT to an 8-bit scale
        L = self.lighting
        # Ng is not set for misses (whatever the last hit left, or garbage): their headlight
        # factor is 0 and their texel black, so silence invalid-value warnings here
        with np.errstate(invalid="ignore", over="ignore"):
            light = ng[:, 0] * planar[0]
            light += ng[:, 1] * planar[1]
            light += ng[:, 2] * planar[2]
            np.abs(light, out=light)
            light *= take(self._headlight)
            light += take(self._lit)
            if L.falloff_per_m > 0:
                den = t * np.float32(L.falloff_per_m)
                den += np.float32(1.0)
                light /= den
            scale = np.take(self._gamma_lut, light.astype(np.intp), mode="clip")

        if sys.byteorder != "little":  # pragma: no cover - the byte-lane trick below assumes little-endian
            rgb = np.take(self.atlas.texels, idx, axis=0) * (scale.astype(np.float32) / 256.0)[:, None]
            return rgb.astype(np.uint8)
        # multiply the R and B bytes (16-bit lanes 0 and 1) and the G byte by scale / 256 at once
        rb = texel & np.uint32(0x00FF00FF)
        rb *= scale
        rb >>= np.uint32(8)
        rb &= np.uint32(0x00FF00FF)
        texel &= np.uint32(0x0000FF00)
        texel *= scale
        texel >>= np.uint32(8)
        texel &= np.uint32(0x0000FF00)
        rb |= texel
        rgb = np.empty((len(rb), 3), np.uint8)
        b = rb.view(np.uint8)
        for k in range(3):
            rgb[:, k] = b[k::4]
        return rgb


def resolve_threads(threads: int | None) -> int:
    """``threads`` as a count. None (auto): 1 in a multiprocessing worker (vector envs and
    dataset workers already use one process per core), else 2 if this process may use at
    least 2 cores, else 1."""
    if threads is None:
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            return 1
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
        return max(1, min(2, cores))
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or not 1 <= int(threads) <= 64:
        raise ValueError(f"threads must be an integer in 1..64 or None (auto), got {threads!r}")
    return int(threads)


#: rays per block below which a frame is not split further (numpy's per-call cost dominates)
_MIN_BLOCK_RAYS = 2048


class RenderJob:
    """A frame (or batch) being rendered; see :meth:`Renderer.submit`.

    The rays are cut into blocks of whole image rows. Each block is first traced (Embree,
    which releases the GIL) and then shaded (numpy). Pool workers (:meth:`work`) trace
    blocks one after another and shade traced blocks when none is left to trace; the
    caller (:meth:`result`) shades what is traced, traces what nobody has claimed, waits
    for the rest and returns the images. A worker thus keeps tracing, GIL-free, while the
    caller does something else (the simulator's audio), and shading happens mostly in
    one thread at a time.
    """

    def __init__(self, renderer: Renderer, poses: np.ndarray, outputs: tuple[str, ...], batched: bool) -> None:
        self.renderer = renderer
        self.outputs = outputs
        self.batched = batched
        c = renderer.config
        h, w = c.height, c.width
        npix = h * w
        n = len(poses)
        self.n = n
        # directions in planar layout (3, N * P): contiguous components for shading;
        # Embree takes the (m, 3) strided view of a block
        if n == 1:
            self.planar = renderer._directions(float(poses[0, 2]))
        else:
            planar = np.empty((3, n, npix), np.float32)
            if n:
                renderer.camera.world_directions(poses[:, 2], out=planar.transpose(1, 2, 0))
            self.planar = planar.reshape(3, n * npix)
        origins = np.empty((n, 3), np.float32)
        origins[:, :2] = poses[:, :2]
        origins[:, 2] = renderer.floor_z + c.height_m
        self.origins = origins
        self.flat = {k: _flat_buffer(k, n * npix) for k in outputs}
        self.blocks = [(i, lo, hi) for i in range(n) for lo, hi in renderer._pose_blocks()]
        self.n_blocks = len(self.blocks)
        self._next_trace = 0  # blocks below this index are claimed for tracing
        self._traced: list[tuple[int, dict]] = []  # traced, not yet claimed for shading
        self._finished = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None

    def _claim(self, shade_first: bool):
        """Next task under the lock: ("shade", k, hits), ("trace", k, None) or None (nothing to claim)."""
        if shade_first and self._traced:
            k, res = self._traced.pop(0)
            return "shade", k, res
        if self._next_trace < self.n_blocks:
            self._next_trace += 1
            return "trace", self._next_trace - 1, None
        if self._traced:
            k, res = self._traced.pop(0)
            return "shade", k, res
        return None

    def _run(self, task) -> None:
        kind, k, res = task
        r = self.renderer
        try:
            if kind == "trace":
                hits = r._trace_block(self, k)
                with self._cond:
                    self._traced.append((k, hits))
                    self._cond.notify_all()
                return
            r._shade_block(self, k, res)
        except BaseException as exc:  # surfaced by result()
            self._error = exc
        with self._cond:
            self._finished += 1
            self._cond.notify_all()

    def work(self) -> None:
        """Worker loop: trace unclaimed blocks, then shade traced ones, until none is left."""
        while True:
            with self._cond:
                task = self._claim(shade_first=False)
            if task is None:
                return
            self._run(task)

    def result(self) -> dict[str, np.ndarray]:
        """Shade traced blocks, trace unclaimed ones, wait for the rest, return the images."""
        while True:
            with self._cond:
                task = self._claim(shade_first=True)
                if task is None:
                    if self._finished >= self.n_blocks or self._error is not None:
                        break
                    self._cond.wait()  # a worker is tracing the last blocks
                    continue
            self._run(task)
        if self._error is not None:
            raise self._error
        c = self.renderer.config
        h, w = c.height, c.width
        shapes = {"rgb": (h, w, 3), "depth": (h, w, 1), "semantic": (h, w), "instance": (h, w)}
        out = {k: self.flat[k].reshape((self.n, *shapes[k])) for k in self.outputs}
        if not self.batched:
            out = {k: v[0] for k, v in out.items()}
        return out


def _flat_buffer(kind: str, size: int) -> np.ndarray:
    return {
        "rgb": lambda: np.empty((size, 3), np.uint8),
        "depth": lambda: np.empty(size, np.float32),
        "semantic": lambda: np.empty(size, np.int16),
        "instance": lambda: np.empty(size, np.int32),
    }[kind]()


def _check_outputs(outputs) -> tuple[str, ...]:
    if isinstance(outputs, str):
        outputs = (outputs,)
    outputs = tuple(outputs)
    bad = [o for o in outputs if o not in OUTPUTS]
    if bad or not outputs:
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {outputs}")
    return tuple(dict.fromkeys(outputs))
