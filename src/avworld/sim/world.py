"""What several simulators over one scene share: geometry, navigation, renderer,
acoustic engine, RIR cache and HRTF. Picklable for multiprocessing."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from avworld.acoustics.cache import RIRCache
from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.spatial_rir import AcousticEngine
from avworld.acoustics.stream import SplitRIR
from avworld.acoustics.stream_config import partition_spectra
from avworld.acoustics.synthesis import binaural_parts, binaural_rir
from avworld.geometry.navigation import NavConfig, NavGrid
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene
from avworld.sim.config import SimConfig
from avworld.vision.render import Renderer

#: bytes of camera views a world keeps at most, whatever ``SimConfig.render_cache_items`` allows (64 views of
#: 128x128 RGB-D take 7.3 MB; at 512x512 this keeps ~17)
VIEW_CACHE_BYTES = 32 << 20


class SharedWorld:
    """One scene's expensive state, built once and shared by any number of simulators."""

    def __init__(self, scene: Scene, config: SimConfig | None = None) -> None:
        self.scene = scene
        self.config = config or SimConfig()
        cfg = self.config
        self.raycaster = RayCaster(scene)
        self.nav = NavGrid.build(
            scene,
            NavConfig(resolution_m=cfg.nav_resolution_m, agent_radius_m=cfg.agent_radius_m,
                      agent_height_m=cfg.camera.height_m),
            raycaster=self.raycaster,
        )
        self.renderer = Renderer(scene, cfg.camera, self.raycaster, threads=cfg.threads)
        self.engine = AcousticEngine(scene, cfg.acoustics, self.raycaster)
        self.rirs = RIRCache(self.engine, max_items=cfg.rir_cache_items)
        self.hrtf = load_hrtf(cfg.hrtf, cfg.sample_rate_hz)
        self._binaural: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._split: OrderedDict[tuple, SplitRIR] = OrderedDict()
        self._tail_spectra: OrderedDict[int, _SpectrumCache] = OrderedDict()  # id(tail) -> spectra
        self._views: OrderedDict[tuple, dict] = OrderedDict()  # (pose, outputs) -> read-only images
        self._view_bytes = 0
        self.ear_height_m = cfg.camera.height_m
        self._dry_spectra: list[OrderedDict] = []

    def dry_spectrum_caches(self, num_sources: int) -> list[OrderedDict]:
        """Chunk-spectrum caches for :class:`BinauralStream` (one per source index) shared by every
        episode of every simulator of this world: a looping sound's chunks recur across episodes whose
        start phases lie on the step grid (the dataset generator's do). Entries are checked against
        the chunk's samples, so sharing never changes an output sample; they are not pickled."""
        while len(self._dry_spectra) < num_sources:
            self._dry_spectra.append(OrderedDict())
        return self._dry_spectra[:num_sources]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_dry_spectra"] = []  # a cache (up to tens of MB), rebuilt on use
        state["_views"], state["_view_bytes"] = OrderedDict(), 0  # likewise
        return state

    def ear_position(self, x: float, y: float) -> np.ndarray:
        return np.array([x, y, self.nav.floor_z + self.ear_height_m])

    def binaural(self, source, listener, yaw_rad: float) -> np.ndarray:
        """(2, L) binaural RIR; spatial RIRs and recent (pose, yaw) renders are cached."""
        yaw_q = round(float(yaw_rad), 4)  # render at the key's yaw: the result depends on the key alone
        key = self.rirs.key(source, listener) + (yaw_q,)
        rir = self._binaural.get(key)
        if rir is not None:
            self._binaural.move_to_end(key)
            return rir
        rir = self._binaural[key] = binaural_rir(self.rirs.get(source, listener), self.hrtf, yaw_q)
        if len(self._binaural) > self.config.binaural_cache_items:
            self._binaural.popitem(last=False)
        return rir

    def forget_rendered(self) -> None:
        """Drop the rendered binaural RIRs (whole and split) and tail spectra; spatial RIRs stay.

        For benchmarks of the rendering path; outputs never depend on these caches."""
        self._binaural.clear()
        self._split.clear()
        self._tail_spectra.clear()
        self._views.clear()
        self._view_bytes = 0

    def view(self, pose: np.ndarray, outputs: tuple[str, ...]) -> _View:
        """The camera's images at ``pose`` (x, y, yaw), started now: ``.result()`` returns them (new
        arrays each call). Rendering goes on in the renderer's threads meanwhile; a pose seen
        recently (the same floats: turning back, a pooled episode's start) comes from the last
        ``config.render_cache_items`` views (within :data:`VIEW_CACHE_BYTES`) instead, which are the
        same images (the renderer is deterministic)."""
        # the pose's bytes (0.0 and -0.0 differ) and the ray path (packets or single rays can differ at an edge)
        key = (np.asarray(pose, np.float64)[:3].tobytes(), tuple(outputs), self.renderer.uses_packets)
        hit = self._views.get(key)
        if hit is not None:
            self._views.move_to_end(key)
            return _View(None, hit, None)
        job = self.renderer.submit(pose, outputs=outputs, batched=False)
        return _View(job, None, self._keep_view(key) if self.config.render_cache_items > 0 else None)

    def _keep_view(self, key: tuple):
        def keep(images: dict) -> None:
            size = sum(v.nbytes for v in images.values())
            if size > VIEW_CACHE_BYTES:  # a view larger than the whole budget is not kept
                return
            old = self._views.pop(key, None)  # (two views of one pose were outstanding)
            if old is not None:
                self._view_bytes -= sum(v.nbytes for v in old.values())
            stored = {k: v.copy() for k, v in images.items()}
            for v in stored.values():
                v.flags.writeable = False
            self._views[key] = stored
            self._view_bytes += size
            while len(self._views) > self.config.render_cache_items or self._view_bytes > VIEW_CACHE_BYTES:
                _, old = self._views.popitem(last=False)
                self._view_bytes -= sum(v.nbytes for v in old.values())
        return keep

    def binaural_split(self, source, listener, yaw_rad: float) -> SplitRIR:
        """The binaural RIR of :meth:`binaural` as a :class:`SplitRIR` (early part + shared tail,
        with the tail's spectra cached): what the simulator streams, so that a turn on the spot
        reuses the tail's spectrum. ``split.full()`` equals ``binaural(...)`` exactly."""
        yaw_q = round(float(yaw_rad), 4)
        key = self.rirs.key(source, listener) + (yaw_q,)
        hit = self._split.get(key)
        if hit is not None:
            self._split.move_to_end(key)
            return hit
        early, start, tail = binaural_parts(self.rirs.get(source, listener), self.hrtf, yaw_q)
        spectra = self._tail_spectra.get(id(tail))
        if spectra is None or spectra.rir is not tail:
            spectra = self._tail_spectra[id(tail)] = _SpectrumCache(tail)
            if len(self._tail_spectra) > 16:
                self._tail_spectra.popitem(last=False)
        else:
            self._tail_spectra.move_to_end(id(tail))
        early.flags.writeable = False
        split = self._split[key] = SplitRIR(early, start, tail, spectra)
        if len(self._split) > self.config.binaural_cache_items:
            self._split.popitem(last=False)
        return split


class _View:
    """A view being rendered (``job``) or taken from the cache (``images``); see :meth:`SharedWorld.view`."""

    __slots__ = ("job", "images", "keep")

    def __init__(self, job, images: dict | None, keep) -> None:
        self.job, self.images, self.keep = job, images, keep

    def result(self) -> dict[str, np.ndarray]:
        if self.images is None:
            self.images = self.job.result()
            if self.keep is not None:
                self.keep(self.images)
                self.keep = None
            return dict(self.images)
        return {k: v.copy() for k, v in self.images.items()}


class _SpectrumCache:
    """Partition spectra of one binaural RIR tail (:func:`~avworld.acoustics.stream_config.partition_spectra`),
    per (block, FFT size): every stream of a world uses one chunk length, so there is one entry."""

    __slots__ = ("rir", "spectra")

    def __init__(self, rir: np.ndarray) -> None:
        self.rir = rir
        self.spectra: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, block: int, nfft: int) -> np.ndarray:
        spec = self.spectra.get((block, nfft))
        if spec is None:
            if len(self.spectra) >= 2:
                self.spectra.pop(next(iter(self.spectra)))
            # read-only: shared by every stream that uses this tail
            spec = self.spectra[(block, nfft)] = partition_spectra(self.rir, block, nfft)
        return spec
