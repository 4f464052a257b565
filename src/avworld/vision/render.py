"""Fast CPU rendering of RGB, depth and semantic images with Embree ray casting.

One primary ray per pixel. Where Embree 4's packet interface is available
(:mod:`avworld.geometry.embree_packets`, the default), rays are traced as 16-ray packets of
4x4 pixel tiles against a high-quality BVH and shaded in that tile order, then put back in
image order; otherwise every pose of a batch goes through a single ``embreex`` call.
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
joins in on the remaining blocks with :meth:`RenderJob.result` (the scheduling lives in
:mod:`avworld.vision.render_jobs`).

Outputs (see :meth:`Renderer.render_batch`): ``rgb`` uint8, ``depth`` float32
planar (z) depth in metres along the optical axis like Habitat's depth sensor,
``semantic`` int16 ids from :data:`~avworld.geometry.semantics.SEMANTIC_CLASSES`
and, on request, ``instance`` int32 object ids (-1 for the building shell / misses).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from avworld.geometry.embree_packets import PacketTracer, tile_order
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene
from avworld.vision.camera import Camera, CameraConfig, CameraError, as_poses
from avworld.vision.render_jobs import MIN_BLOCK_RAYS, RenderJob, resolve_threads
from avworld.vision.textures import DEFAULT_TEXTURE_SIZE, TextureAtlas

__all__ = ["DEFAULT_OUTPUTS", "OUTPUTS", "Lighting", "RenderJob", "Renderer", "resolve_threads"]

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
        self._depth_scale = np.float32(scale)
        self._set_tracer(PacketTracer.create(scene.triangles, check=self.raycaster))
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

        # texel coordinates as complex64 (u + i v): one gather serves both axes; the vertex-0
        # coordinates and the two edges share a row (padded to 32 bytes: a single fast gather)
        c64 = np.complex64
        uv0 = table(np.mod(tu[:, 0], size) + margin + 1j * (np.mod(tv[:, 0], size) + margin), c64)
        duv1 = table((tu[:, 1] - tu[:, 0]) + 1j * (tv[:, 1] - tv[:, 0]), c64)
        duv2 = table((tu[:, 2] - tu[:, 0]) + 1j * (tv[:, 2] - tv[:, 0]), c64)
        self._uv_rows = np.ascontiguousarray(np.stack([duv1, uv0, duv2, np.zeros_like(uv0)], axis=1))
        f32 = np.float32
        # headlight |n . d| from Embree's per-hit geometric normal Ng = (v1 - v0) x (v2 - v0)
        # up to sign, whose length is twice the face area: scale by headlight / |Ng| per face;
        # packed with the per-face ambient + key light as one complex64 (headlight + i lit)
        ng = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        inv_ng = np.divide(1.0, ng, out=np.zeros_like(ng), where=ng > 0)
        light = np.empty(nf + 1, c64)
        light.real = table(L.headlight * _GAMMA_LUT_STEPS * inv_ng, f32)
        light.imag = table(lit * _GAMMA_LUT_STEPS, f32)
        self._light = light
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

    @property
    def uses_packets(self) -> bool:
        """Whether rays go through Embree's packet interface (see the module docstring)."""
        return self._packets is not None

    def _set_tracer(self, tracer: PacketTracer | None) -> None:
        """Use ``tracer`` (None: embreex single rays) and derive what depends on it: with packets,
        per-pixel data is held in packet (tile) order, pixel ``self._order[j]`` at position j."""
        c = self.config
        self._packets = tracer
        self._order = tile_order(c.width, c.height) if tracer is not None else None
        self._inverse = None if self._order is None else np.argsort(self._order)
        self._block_perms: dict[tuple[int, int], np.ndarray] = {}
        self.__dict__.pop("_blocks_cache", None)
        self._depth_factor = self._to_internal(self.camera.cos_forward.reshape(-1) * self._depth_scale)

    def _to_internal(self, values: np.ndarray) -> np.ndarray:
        """Per-pixel values (..., P) in image order -> contiguous float32 in the internal pixel order."""
        v = np.asarray(values, np.float32)
        return np.ascontiguousarray(v if self._order is None else v[..., self._order])

    def _block_perm(self, lo: int, hi: int) -> np.ndarray | None:
        """Image-order pixels ``lo..hi`` of a block as positions in its internal-order results."""
        if self._order is None:
            return None
        perm = self._block_perms.get((lo, hi))
        if perm is None:
            perm = self._block_perms[(lo, hi)] = self._inverse[lo:hi] - lo
        return perm

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pool"] = None  # threads do not pickle; the copy starts its own pool when it needs one
        state["_pool_pid"] = 0
        state["_packets"] = state["_packets"] is not None  # Embree handles: rebuilt by __setstate__
        state.pop("_dir_cache", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # packets again if they were used and are available here; else image order and embreex
        self._set_tracer(PacketTracer.create(self.scene.triangles, check=self.raycaster) if self._packets else None)

    def _directions(self, yaw: float) -> np.ndarray:
        """(3, P) read-only planar world directions for one yaw (cached: discrete turns repeat yaws)."""
        cache = self.__dict__.setdefault("_dir_cache", {})
        d = cache.get(yaw)
        if d is None:
            d = np.empty((3, 1, self.config.num_pixels), np.float32)
            self.camera.world_directions(np.array([yaw]), out=d.transpose(1, 2, 0), pixel_order=self._order)
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
            k = max(1, min(h, 2 * self.threads, h * w // MIN_BLOCK_RAYS)) if self.threads > 1 else 1
            rows = [round(i * h / k) for i in range(k + 1)]
            if self._order is not None:  # whole bands of 4x4 tiles: a block is a range in tile order too
                inner = {4 * round(r / 4) for r in rows[1:-1]}
                rows = sorted({0, h} | {b for b in inner if 0 < b < h})
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
        if self._packets is not None:
            return self._packets.trace(job.origins[i], planar, hold_gil=self.threads > 1)
        emb = self.raycaster.embree
        if need_rgb or (need_face and "depth" in outputs):
            res = emb.run(o, planar.T, output=1)  # as fast as the plain call; gives t and barycentrics
            ng = res["Ng"]
            res["ngx"], res["ngy"], res["ngz"] = ng[:, 0], ng[:, 1], ng[:, 2]
            return res
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
        perm = self._block_perm(lo, hi)  # None: results are in image order already
        t = res.get("tfar")  # left at its initial 1e37 for misses
        if "primID" in res:
            f1 = res["primID"].astype(np.intp)
            f1 += 1  # row 0 of every table = miss
        if "depth" in outputs:
            depth = out["depth"][g0:g1] if perm is None else np.empty(hi - lo, np.float32)
            np.multiply(t, self._depth_factor[lo:hi], out=depth)
            np.minimum(depth, self._depth_hi, out=depth)
            if self._depth_lo > 0:
                np.maximum(depth, self._depth_lo, out=depth)
            if perm is not None:
                np.take(depth, perm, out=out["depth"][g0:g1])
        if perm is not None and ("semantic" in outputs or "instance" in outputs):
            f1_image = f1[perm]
        else:
            f1_image = f1 if "primID" in res else None
        if "semantic" in outputs:
            np.take(self._sem, f1_image, mode="clip", out=out["semantic"][g0:g1])
        if "instance" in outputs:
            np.take(self._inst, f1_image, mode="clip", out=out["instance"][g0:g1])
        if "rgb" in outputs:
            out["rgb"][g0:g1] = self._shade(f1, t, res["u"], res["v"], (res["ngx"], res["ngy"], res["ngz"]),
                                            job.planar[:, g0:g1], perm)

    def _shade(self, f1, t, bu, bv, ng, planar, perm=None) -> np.ndarray:
        """sRGB (P, 3) uint8 for hits given by ``f1`` (face + 1), distance ``t``,
        barycentrics ``bu, bv``, Embree's unnormalized normals ``ng`` (three (P,) components)
        and directions in planar layout (3, P); the result is reordered by ``perm`` if given."""

        def take(tab):
            return np.take(tab, f1, mode="clip")

        at = self.atlas
        mask = at.size - 1
        # texel index: interpolate per-face planar texel coordinates (u + i v) with the barycentrics
        rows = np.take(self._uv_rows, f1, axis=0, mode="clip")  # (P, 4): duv1, uv0, duv2, pad
        uv = rows[:, 0] * bu
        uv += rows[:, 1]
        uv2 = rows[:, 2] * bv
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
            light = ng[0] * planar[0]
            light += ng[1] * planar[1]
            light += ng[2] * planar[2]
            np.abs(light, out=light)
            face_light = take(self._light)
            light *= face_light.real
            light += face_light.imag
            if L.falloff_per_m > 0:
                den = t * np.float32(L.falloff_per_m)
                den += np.float32(1.0)
                light /= den
            scale = np.take(self._gamma_lut, light.astype(np.intp), mode="clip")

        if sys.byteorder != "little":  # pragma: no cover - the byte-lane trick below assumes little-endian
            rgb = np.take(self.atlas.texels, idx, axis=0) * (scale.astype(np.float32) / 256.0)[:, None]
            return rgb.astype(np.uint8) if perm is None else rgb.astype(np.uint8)[perm]
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
        if perm is not None:
            rb = np.take(rb, perm)
        rgb = np.empty((len(rb), 3), np.uint8)
        b = rb.view(np.uint8)
        for k in range(3):  # three strided byte copies beat one (P, 3)-from-(P, 4) copy 4x
            rgb[:, k] = b[k::4]
        return rgb


def _check_outputs(outputs) -> tuple[str, ...]:
    if isinstance(outputs, str):
        outputs = (outputs,)
    outputs = tuple(outputs)
    bad = [o for o in outputs if o not in OUTPUTS]
    if bad or not outputs:
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {outputs}")
    return tuple(dict.fromkeys(outputs))
