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

Outputs (see :meth:`Renderer.render_batch`): ``rgb`` uint8, ``depth`` float32
planar (z) depth in metres along the optical axis like Habitat's depth sensor,
``semantic`` int16 ids from :data:`~avworld.geometry.semantics.SEMANTIC_CLASSES`
and, on request, ``instance`` int32 object ids (-1 for the building shell / misses).
"""

from __future__ import annotations

import sys
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
    ) -> None:
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
        p = as_poses(pose)
        if len(p) != 1:
            raise CameraError(f"render() takes one pose (3,), got {len(p)}; use render_batch()")
        return {k: v[0] for k, v in self.render_batch(p, outputs).items()}

    def render_batch(self, poses, outputs=DEFAULT_OUTPUTS) -> dict[str, np.ndarray]:
        """Render N poses (N, 3) (a single (3,) pose counts as N = 1) in one Embree call.

        Returns a dict with the requested ``outputs`` (any of :data:`OUTPUTS`, in that
        order): ``rgb`` (N, H, W, 3) uint8, ``depth`` (N, H, W, 1) float32 planar depth,
        ``semantic`` (N, H, W) int16, ``instance`` (N, H, W) int32.
        """
        outputs = _check_outputs(outputs)
        p = as_poses(poses)
        n = len(p)
        c = self.config
        h, w = c.height, c.width
        npix = h * w
        total = n * npix
        if n == 0:
            return {k: _empty(k, h, w) for k in outputs}

        # directions in planar layout (3, N * P): contiguous components for shading;
        # Embree takes the (N * P, 3) strided view
        planar = np.empty((3, n, npix), np.float32)
        self.camera.world_directions(p[:, 2], out=planar.transpose(1, 2, 0))
        planar = planar.reshape(3, total)
        org = self.camera.origins(p, self.floor_z).astype(np.float32)
        o = np.broadcast_to(org[0], (total, 3)) if n == 1 else np.repeat(org, npix, axis=0)
        need_rgb = "rgb" in outputs
        need_face = need_rgb or "semantic" in outputs or "instance" in outputs
        emb = self.raycaster.embree
        if need_rgb or (need_face and "depth" in outputs):
            res = emb.run(o, planar.T, output=1)  # as fast as the plain call; gives t and barycentrics
            face = res["primID"]
            t = res["tfar"]  # left at its initial 1e37 for misses
        elif need_face:
            face = emb.run(o, planar.T)
        else:
            t = emb.run(o, planar.T, query="DISTANCE")
        if need_face:
            f1 = face.astype(np.intp)
            f1 += 1  # row 0 of every table = miss

        out: dict[str, np.ndarray] = {}
        if "depth" in outputs:
            depth = t.reshape(n, h, w) * self._depth_factor
            np.minimum(depth, self._depth_hi, out=depth)
            if self._depth_lo > 0:
                np.maximum(depth, self._depth_lo, out=depth)
            out["depth"] = depth[..., None]
        if "semantic" in outputs:
            out["semantic"] = np.take(self._sem, f1, mode="clip").reshape(n, h, w)
        if "instance" in outputs:
            out["instance"] = np.take(self._inst, f1, mode="clip").reshape(n, h, w)
        if need_rgb:
            out["rgb"] = self._shade(f1, t, res["u"], res["v"], res["Ng"], planar).reshape(n, h, w, 3)
        return {k: out[k] for k in outputs}

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


def _empty(kind: str, h: int, w: int) -> np.ndarray:
    shape, dtype = {
        "rgb": ((0, h, w, 3), np.uint8),
        "depth": ((0, h, w, 1), np.float32),
        "semantic": ((0, h, w), np.int16),
        "instance": ((0, h, w), np.int32),
    }[kind]
    return np.empty(shape, dtype)


def _check_outputs(outputs) -> tuple[str, ...]:
    if isinstance(outputs, str):
        outputs = (outputs,)
    outputs = tuple(outputs)
    bad = [o for o in outputs if o not in OUTPUTS]
    if bad or not outputs:
        raise ValueError(f"outputs must be a non-empty subset of {OUTPUTS}, got {outputs}")
    return tuple(dict.fromkeys(outputs))
