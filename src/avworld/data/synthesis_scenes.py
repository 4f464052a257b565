"""The two physics of π-AVAS data: the true scene (x_rx) and the cheap simplified one (x_sim).

x_rx, the stand-in for recordings, is the full acoustic engine on the furnished procedural house
with its true materials, the measured KEMAR HRTF, the directional late field, image sources up to
order 3 and microphone noise. x_sim, the cheap physics, is by default the same engine on the
house's shell without furniture, every face given one guessed material, a rigid-sphere head and
first-order image sources with an isotropic tail (:class:`SimPhysics` configures each choice).
Both are rendered for the same (source, listener, yaw) and the same dry source audio x_tx.
Torch-free (the simulator layer).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import fftconvolve

from avworld.acoustics.hrtf import load_hrtf
from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.synthesis import binaural_rir
from avworld.geometry.materials import _INTERIOR_WALL_TL, NUM_BANDS, Material, get_material
from avworld.geometry.navigation import NavGrid
from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.geometry.scene import Scene

#: pressure gain that puts the direct sound at 1 m at the source's own level (the engine's
#: amplitudes follow 1 / (4 pi d))
REFERENCE_GAIN = 4.0 * np.pi


class SynthesisDataError(ValueError):
    """Bad π-AVAS data: configuration, folder or example."""


class LengthMismatchError(SynthesisDataError):
    """x_tx, x_sim and x_rx of one example do not cover the same samples."""


class SampleRateMismatchError(SynthesisDataError):
    """x_tx, x_sim and x_rx of one example (or a folder and a config) differ in sample rate."""


class PoseOutsideSceneError(SynthesisDataError):
    """A listener pose lies outside the scene (or off its walkable floor)."""


@dataclass(frozen=True)
class SimPhysics:
    """How x_sim is simulated: which simplifications of the true scene and engine it makes."""

    #: keep the furniture (False: the room shells only)
    furniture: bool = False
    #: one guessed material for every face: "flat:A" (absorption A in every band, scattering 0.3, an
    #: interior wall's transmission loss), a built-in material name, or "" to keep the true materials
    material: str = "flat:0.2"
    #: "spherical" (analytic rigid sphere), "kemar" or a SOFA path
    hrtf: str = "spherical"
    ism_order: int = 1
    directional_tail: bool = False
    diffraction: bool = False

    def __post_init__(self) -> None:
        if self.material:
            try:
                guessed_material(self.material)
            except Exception as exc:  # noqa: BLE001 - re-raised typed with the fix
                raise SynthesisDataError(f"SimPhysics.material: unknown material {self.material!r} ({exc})") from None
        if not 0 <= self.ism_order <= 6:
            raise SynthesisDataError(f"SimPhysics.ism_order must lie in 0..6, got {self.ism_order}")


def guessed_material(spec: str) -> Material:
    """The material of a :attr:`SimPhysics.material` spec ("flat:0.2" or a built-in name)."""
    if spec.startswith("flat:"):
        try:
            a = float(spec[5:])
        except ValueError:
            raise SynthesisDataError(f"material {spec!r}: write flat:A with A a number in (0, 1)") from None
        if not 0 < a < 1:
            raise SynthesisDataError(f"material {spec!r}: the absorption must lie in (0, 1)")
        base = get_material("ceiling_plaster")
        return Material(name=f"guessed_flat_{a:g}", albedo=base.albedo, absorption=(a,) * NUM_BANDS,
                        scattering=(0.3,) * NUM_BANDS, transmission_loss_db=_INTERIOR_WALL_TL)
    return get_material(spec)


def simplified_scene(scene: Scene, furniture: bool = False, material: str = "flat:0.2") -> Scene:
    """The scene without its furniture (faces of objects) and/or with one material on every face."""
    keep = np.ones(scene.num_faces, bool) if furniture else scene.face_instance < 0
    if material:
        mats = (guessed_material(material),)
        fm = np.zeros(int(keep.sum()), np.int16)
    else:
        mats = scene.materials
        fm = scene.face_material[keep]
    return Scene(vertices=scene.vertices, faces=scene.faces[keep], face_material=fm, materials=mats,
                 face_semantic=scene.face_semantic[keep], face_instance=scene.face_instance[keep],
                 rooms=scene.rooms, doors=scene.doors, objects=scene.objects if furniture else (),
                 meta={**scene.meta, "simplified": {"furniture": furniture, "material": material}})


class Environment:
    """One procedural house with its true and simplified acoustic engines (x_rx and x_sim)."""

    def __init__(self, seed: int, num_rooms: int, sample_rate_hz: int, sim: SimPhysics,
                 rx_ism_order: int = 3, hrtfs: dict | None = None) -> None:
        self.seed = int(seed)
        self.scene = generate_house(HouseConfig(num_rooms=num_rooms), seed=self.seed)
        self.nav = NavGrid.build(self.scene)
        self.sample_rate_hz = int(sample_rate_hz)
        cfg = AcousticConfig(sample_rate_hz=sample_rate_hz, ism_order=rx_ism_order, seed=self.seed)
        self.rx_engine = AcousticEngine(self.scene, cfg)
        self.sim_scene = simplified_scene(self.scene, sim.furniture, sim.material)
        sim_cfg = replace(cfg, ism_order=sim.ism_order, directional_tail=sim.directional_tail,
                          diffraction=sim.diffraction)
        self.sim_engine = AcousticEngine(self.sim_scene, sim_cfg)
        hrtfs = hrtfs if hrtfs is not None else {}
        for name in ("kemar", sim.hrtf):
            if name not in hrtfs:
                hrtfs[name] = load_hrtf(name, sample_rate_hz)
        self.rx_hrtf = hrtfs["kemar"]
        self.sim_hrtf = hrtfs[sim.hrtf]

    def check_pose(self, listener_xyz) -> np.ndarray:
        """The listener position as an array; :class:`PoseOutsideSceneError` when off the scene."""
        p = np.asarray(listener_xyz, dtype=np.float64)
        lo, hi = self.scene.bounds
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise PoseOutsideSceneError(f"a listener position is 3 finite numbers (x, y, z), got {p.tolist()}")
        if np.any(p < lo) or np.any(p > hi):
            raise PoseOutsideSceneError(
                f"listener {p.round(3).tolist()} lies outside the scene's bounds {lo.round(2).tolist()} - "
                f"{hi.round(2).tolist()}; pick a point inside the house")
        if not bool(self.nav.is_navigable(p[:2])):
            raise PoseOutsideSceneError(
                f"listener {p.round(3).tolist()} is not on the walkable floor (inside a wall or furniture); "
                "use Environment.nav.snap() or another point")
        return p

    def render(self, source_xyz, listener_xyz, yaw_rad: float, dry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x_sim, x_rx) (2, len(dry)) each: ``dry`` through the simplified and the true binaural RIR.

        Both are the causal convolution cut to the length of ``dry`` (no microphone noise yet).
        """
        lst = self.check_pose(listener_xyz)
        out = []
        for engine, hrtf in ((self.sim_engine, self.sim_hrtf), (self.rx_engine, self.rx_hrtf)):
            rir = binaural_rir(engine.spatial_rir(source_xyz, lst), hrtf, float(yaw_rad)) * REFERENCE_GAIN
            out.append(fftconvolve(dry[None, :], rir, axes=1)[:, : len(dry)].astype(np.float32))
        return out[0], out[1]
