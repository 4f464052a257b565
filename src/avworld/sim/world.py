"""What several simulators over one scene share: geometry, navigation, renderer,
acoustic engine, RIR cache and HRTF. Picklable for multiprocessing."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.fft as sfft

from avworld.acoustics.cache import RIRCache
from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.spatial_rir import AcousticEngine
from avworld.acoustics.synthesis import binaural_rir
from avworld.geometry.navigation import NavConfig, NavGrid
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene
from avworld.sim.config import SimConfig
from avworld.vision.render import Renderer


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
        self._binaural: OrderedDict[tuple, tuple[np.ndarray, _SpectrumCache]] = OrderedDict()
        self.ear_height_m = cfg.camera.height_m

    def ear_position(self, x: float, y: float) -> np.ndarray:
        return np.array([x, y, self.nav.floor_z + self.ear_height_m])

    def binaural(self, source, listener, yaw_rad: float) -> np.ndarray:
        """(2, L) binaural RIR; spatial RIRs and recent (pose, yaw) renders are cached."""
        return self.binaural_with_spectrum(source, listener, yaw_rad)[0]

    def binaural_with_spectrum(self, source, listener, yaw_rad: float):
        """(2, L) binaural RIR and a callable ``nfft -> rfft(rir, nfft)`` whose results are
        cached with the RIR (for :meth:`BinauralStream.step_per_source`)."""
        yaw_q = round(float(yaw_rad), 4)  # render at the key's yaw: the result depends on the key alone
        key = self.rirs.key(source, listener) + (yaw_q,)
        hit = self._binaural.get(key)
        if hit is not None:
            self._binaural.move_to_end(key)
            return hit
        rir = binaural_rir(self.rirs.get(source, listener), self.hrtf, yaw_q)
        entry = (rir, _SpectrumCache(rir))
        self._binaural[key] = entry
        if len(self._binaural) > self.config.binaural_cache_items:
            self._binaural.popitem(last=False)
        return entry


class _SpectrumCache:
    """Spectra of one binaural RIR per FFT size (most RIRs of a trajectory share one size)."""

    __slots__ = ("rir", "spectra")

    def __init__(self, rir: np.ndarray) -> None:
        self.rir = rir
        self.spectra: dict[int, np.ndarray] = {}

    def __call__(self, nfft: int) -> np.ndarray:
        spec = self.spectra.get(nfft)
        if spec is None:
            if len(self.spectra) >= 2:
                self.spectra.pop(next(iter(self.spectra)))
            spec = self.spectra[nfft] = sfft.rfft(self.rir, nfft, axis=-1)
            spec.flags.writeable = False  # shared by every stream that uses this RIR
        return spec
