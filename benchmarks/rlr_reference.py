"""The SoundSpaces 2 acoustic engine (rlr-audio-propagation) as a reference renderer for avworld scenes.

Benchmark/dev use only: ``rlr-audio-propagation`` (PyPI, Linux x86-64, a bundled closed binary) is
licensed CC-BY-NC 4.0 (non-commercial), so it is never a dependency of avworld itself. Install it
with the ``reference`` extra (``pip install -e .[reference]``; it also brings ``netCDF4``, used to
write the SOFA file rlr reads).

What this module does:

* **Scene.** The avworld mesh (z up) is loaded into one rlr object in rlr's y-up frame (see
  *Frames*), one mesh part per avworld material. Each material becomes an entry of rlr's material
  database (a JSON file): per-octave-band (125 Hz-8 kHz) ``absorption`` and ``scattering`` are
  avworld's coefficients as they are; ``transmission`` is the energy transmission of one face,
  ``10^(-TL/20)`` for the element's sound reduction index TL (dB): rlr attenuates at every face a
  path crosses, and a wall (a closed box) is crossed through two faces, where avworld applies the
  element's TL once (``python benchmarks/rlr_reference.py --check`` measures the transmitted level);
  no damping inside the material and the speed of sound in air through it (rlr requires one; avworld
  delays the transmitted sound by the straight path's d/c).
* **Ears.** Both engines hear through the same HRTF: avworld's ``load_hrtf("kemar")`` (MIT KEMAR,
  resampled to 16 kHz, diffuse-field scaled) is written to a SOFA SimpleFreeFieldHRIR file and set
  as every rlr listener's HRTF (without it rlr uses a built-in HRTF of its own).
* **Frames.** avworld: z up, yaw counter-clockwise from +x, head frame +x nose / +y left ear,
  channel 0 = left. rlr's listener frame is +x right, +y up, +z back (habitat-sim's), and it reads
  the SOFA file in SOFA's frame (+x front, +y left, +z up). Positions map as
  ``(x, y, z)_avworld -> (x, z, -y)_rlr`` (a proper rotation, so the mesh winding is unchanged),
  and a head yaw ``psi`` is the rlr listener orientation quaternion (w, x, y, z) =
  ``(cos(t/2), 0, sin(t/2), 0)`` with ``t = psi - pi/2`` (rlr's unrotated listener faces -z_rlr =
  +y_avworld). ``--check`` verifies it: a source to the listener's left is louder in the left
  channel in both engines, and for horizontal directions at several yaws the rlr direct sound
  matches avworld's HRIR of (nearly) the same head-frame direction best among all measured ones.
* **Settings.** SoundSpaces 2's defaults (rlr's ``Config()``: 5000 indirect rays of depth 200,
  200 source rays of depth 10, diffraction order 10, 4 frequency bands, 1 thread) at 16 kHz with
  direct sound, indirect sound, diffraction and transmission on, and the RIR cut at 1.5 s like
  avworld's ``AcousticConfig.max_rir_s``.

    .venv/bin/python benchmarks/rlr_reference.py --check   # frames, delays, transmission, timing
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avworld.acoustics.bands import SPEED_OF_SOUND_M_S
from avworld.geometry.materials import OCTAVE_BANDS_HZ
from avworld.geometry.scene import Scene

#: avworld (x, y, z), z up -> rlr / habitat-sim (x, y, z), y up: (x, z, -y).
TO_RLR = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def to_rlr(p) -> np.ndarray:
    """avworld world coordinates (..., 3) -> rlr world coordinates (..., 3)."""
    return np.asarray(p, dtype=np.float64) @ TO_RLR.T


def yaw_quaternion(yaw_rad: float) -> list[float]:
    """rlr listener orientation (w, x, y, z) for an avworld head yaw (counter-clockwise from +x)."""
    t = float(yaw_rad) - np.pi / 2
    return [float(np.cos(t / 2)), 0.0, float(np.sin(t / 2)), 0.0]


def write_sofa(hrtf, path: str | Path) -> Path:
    """Write an avworld :class:`~avworld.acoustics.hrtf.HRTF` as a SOFA SimpleFreeFieldHRIR file.

    Written with netCDF4 (the SOFA reader inside rlr, libmysofa, rejects the plain h5py layouts
    tried); directions go to SourcePosition in degrees (azimuth counter-clockwise from the nose,
    elevation up, 1 m), Data.IR keeps channel 0 = left ear.
    """
    import netCDF4

    dirs = np.asarray(hrtf.directions, np.float64)
    irs = np.asarray(hrtf.irs, np.float64)
    m, r, n = irs.shape
    az = np.degrees(np.arctan2(dirs[:, 1], dirs[:, 0])) % 360.0
    el = np.degrees(np.arcsin(np.clip(dirs[:, 2], -1.0, 1.0)))
    path = Path(path)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as f:
        attrs = {"Conventions": "SOFA", "Version": "1.0", "SOFAConventions": "SimpleFreeFieldHRIR",
                 "SOFAConventionsVersion": "1.0", "APIName": "avworld benchmarks", "APIVersion": "1.0",
                 "DataType": "FIR", "RoomType": "free field", "Title": f"avworld HRTF {hrtf.name}",
                 "DateCreated": time.strftime("%Y-%m-%d %H:%M:%S"), "DateModified": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "AuthorContact": "", "Organization": "", "License": "", "ApplicationName": "avworld",
                 "ApplicationVersion": "", "Comment": "", "History": "", "References": "", "Origin": "",
                 "ListenerShortName": hrtf.name, "DatabaseName": "avworld"}
        for k, v in attrs.items():
            f.setncattr(k, v)
        for name, size in (("M", m), ("R", r), ("E", 1), ("N", n), ("C", 3), ("I", 1)):
            f.createDimension(name, size)

        def var(name, dims, data, **a):
            v = f.createVariable(name, "f8", dims)
            v[:] = np.asarray(data, np.float64)
            for k, x in a.items():
                v.setncattr(k, x)

        cart = {"Type": "cartesian", "Units": "metre"}
        var("ListenerPosition", ("I", "C"), [[0.0, 0.0, 0.0]], **cart)
        var("ListenerUp", ("I", "C"), [[0.0, 0.0, 1.0]], **cart)
        var("ListenerView", ("I", "C"), [[1.0, 0.0, 0.0]], **cart)
        ears = np.array([[0.0, 0.0875, 0.0], [0.0, -0.0875, 0.0]])[:, :, None]  # left, right
        var("ReceiverPosition", ("R", "C", "I"), ears, **cart)
        var("SourcePosition", ("M", "C"), np.c_[az, el, np.ones(m)], Type="spherical", Units="degree, degree, metre")
        var("EmitterPosition", ("E", "C", "I"), np.zeros((1, 3, 1)), **cart)
        var("Data.IR", ("M", "R", "N"), irs)
        var("Data.SamplingRate", ("I",), [float(hrtf.sample_rate_hz)], Units="hertz")
        var("Data.Delay", ("I", "R"), np.zeros((1, r)))
    return path


#: rlr requires a density per material; avworld has none (the transmitted level comes from the
#: transmission coefficients, see ``--check``).
MATERIAL_DENSITY_KG_M3 = 1000.0


def material_category(index: int) -> str:
    """rlr category of avworld material ``index`` (no category is a substring of another)."""
    return f"avwmat_{index}_"


def material_database(scene: Scene) -> dict:
    """rlr's material JSON for the scene's materials (per octave band: absorption, scattering, transmission)."""
    mats = []
    for i, m in enumerate(scene.materials):
        tl = np.minimum(np.asarray(m.transmission_loss_db, float), 200.0)
        per_face = 10.0 ** (-tl / 20.0)  # energy; two faces per crossed element give the element's TL

        def pairs(values):
            return [float(v) for fv in zip(OCTAVE_BANDS_HZ, values) for v in fv]

        mats.append({"name": m.name, "labels": [material_category(i)], "absorption": pairs(m.absorption),
                     "scattering": pairs(m.scattering), "transmission": pairs(per_face),
                     "damping": pairs([0.0] * len(OCTAVE_BANDS_HZ)), "speed": SPEED_OF_SOUND_M_S,
                     "density": MATERIAL_DENSITY_KG_M3})
    return {"materials": mats}


@dataclass(frozen=True)
class RLRSettings:
    """rlr ``Config`` fields (defaults: SoundSpaces 2's, at 16 kHz, RIRs cut at 1.5 s)."""

    sample_rate_hz: int = 16000
    frequency_bands: int = 4
    indirect_ray_count: int = 5000
    indirect_ray_depth: int = 200
    source_ray_count: int = 200
    source_ray_depth: int = 10
    max_diffraction_order: int = 10
    thread_count: int = 1
    max_ir_length_s: float = 1.5
    direct: bool = True
    indirect: bool = True
    diffraction: bool = True
    transmission: bool = True

    def config(self):
        from rlr_audio_propagation import Config

        cfg = Config()
        cfg.sample_rate = float(self.sample_rate_hz)
        cfg.max_ir_length = float(self.max_ir_length_s)
        for name in ("frequency_bands", "indirect_ray_count", "indirect_ray_depth", "source_ray_count",
                     "source_ray_depth", "max_diffraction_order", "thread_count", "direct", "indirect",
                     "diffraction", "transmission"):
            setattr(cfg, name, getattr(self, name))
        return cfg


class RLRScene:
    """One rlr context holding an avworld scene; :meth:`render` gives binaural RIRs for head yaws.

    ``hrtf``: an avworld HRTF (default ``load_hrtf("kemar")`` at the settings' rate), written to a
    SOFA file in ``workdir`` (a temporary directory by default); ``None`` keeps rlr's own HRTF only
    when ``own_hrtf=True``.
    """

    def __init__(self, scene: Scene, settings: RLRSettings | None = None, hrtf=None, own_hrtf: bool = False,
                 workdir: str | Path | None = None) -> None:
        from rlr_audio_propagation import Context

        self.settings = settings or RLRSettings()
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="avworld-rlr-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sofa_path = None
        if not own_hrtf:
            if hrtf is None:
                from avworld.acoustics.hrtf import load_hrtf

                hrtf = load_hrtf("kemar", self.settings.sample_rate_hz)
            self.sofa_path = write_sofa(hrtf, self.workdir / "hrtf.sofa")
        mat_path = self.workdir / "materials.json"
        mat_path.write_text(json.dumps(material_database(scene), indent=1))
        self.ctx = Context(self.settings.config())
        self.ctx.set_material_database_json(str(mat_path))
        self.ctx.add_object()
        self.ctx.add_mesh_vertices(to_rlr(scene.vertices).astype(np.float32).ravel().tolist())
        for i in np.unique(scene.face_material):
            idx = scene.faces[scene.face_material == i].astype(np.uint32).ravel().tolist()
            self.ctx.add_mesh_indices(idx, 3, material_category(int(i)))
        self.ctx.finalize_object_mesh(0)
        self.ctx.add_source()
        self._listeners = 0

    def _ensure_listeners(self, n: int) -> None:
        from rlr_audio_propagation import ChannelLayout, ChannelLayoutType

        if n == self._listeners:
            return
        self.ctx.clear_listeners()
        for i in range(n):
            self.ctx.add_listener(ChannelLayout(ChannelLayoutType.Binaural, 2))
            if self.sofa_path is not None:
                self.ctx.set_listener_hrtf(i, str(self.sofa_path))
        self._listeners = n

    def render(self, source, listener, yaws_rad) -> tuple[list[np.ndarray], float]:
        """Binaural RIRs (2, n) float32 (channel 0 = left) for each yaw, and the seconds of ``simulate``.

        All yaws are listeners of one simulation (rlr traces from every listener, so the time
        grows with their number; divide by ``len(yaws_rad)`` for a per-RIR figure).
        """
        yaws = np.atleast_1d(np.asarray(yaws_rad, float))
        self._ensure_listeners(len(yaws))
        self.ctx.set_source_position(0, to_rlr(source).tolist())
        lp = to_rlr(listener).tolist()
        for i, yaw in enumerate(yaws):
            self.ctx.set_listener_position(i, lp)
            self.ctx.set_listener_orientation_quaternion(i, yaw_quaternion(yaw))
        t0 = time.perf_counter()
        self.ctx.simulate()
        seconds = time.perf_counter() - t0
        out = []
        for i in range(len(yaws)):
            chans = [np.asarray(self.ctx.get_ir_channel(i, 0, c), np.float32)
                     for c in range(self.ctx.get_ir_channel_count(i, 0))]
            n = max(len(c) for c in chans)
            out.append(np.stack([np.pad(c, (0, n - len(c))) for c in chans[:2]]))
        return out, seconds


def render_rlr(scene: Scene, sources, listeners, yaws_rad, settings: RLRSettings | None = None,
               hrtf=None) -> tuple[list[list[np.ndarray]], list[float]]:
    """rlr binaural RIRs for each (source, listener) pair and every yaw.

    Returns ``(rirs, seconds_per_rir)``: ``rirs[k][j]`` is the (2, n) RIR of pair k at
    ``yaws_rad[j]``; ``seconds_per_rir[k]`` the simulation time of pair k over its number of yaws.
    """
    rs = RLRScene(scene, settings, hrtf=hrtf)
    rirs, secs = [], []
    for s, ls in zip(sources, listeners):
        out, t = rs.render(s, ls, yaws_rad)
        rirs.append(out)
        secs.append(t / len(out))
    return rirs, secs


# ---------------------------------------------------------------------------------------- checks
def first_onset(rir: np.ndarray, rel: float = 0.3) -> int:
    """First sample (over both ears) reaching ``rel`` of the peak."""
    e = np.abs(rir).max(axis=0)
    return int(np.argmax(e >= rel * e.max()))


def _check(seed: int) -> dict:
    from avworld.acoustics.hrtf import load_hrtf
    from avworld.acoustics.spatial_rir import AcousticEngine
    from avworld.acoustics.synthesis import binaural_rir
    from avworld.geometry.navigation import NavGrid
    from avworld.geometry.procedural import HouseConfig, generate_house
    from avworld.geometry.raycast import RayCaster

    fs = 16000
    scene = generate_house(HouseConfig(num_rooms=4), seed=seed)
    nav, rc = NavGrid.build(scene), RayCaster(scene)
    hrtf = load_hrtf("kemar", fs)
    eng, rs = AcousticEngine(scene), RLRScene(scene, hrtf=hrtf)
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < 4:  # line-of-sight pairs 2-5 m apart
        a, b = nav.sample_navigable(rng, 2)
        src, lis = np.r_[a, 1.2], np.r_[b, 1.5]
        d = float(np.linalg.norm(src - lis))
        if not (2.0 < d < 5.0) or rc.occluded(src[None], lis[None])[0]:
            continue
        bearing = np.arctan2(*(src - lis)[1::-1])
        yaws = bearing + np.array([-np.pi / 2, np.pi / 2, 0.0, np.pi])  # source left, right, front, back
        srir = eng.spatial_rir(src, lis)
        av = [binaural_rir(srir, hrtf, y) for y in yaws]
        rl, secs = rs.render(src, lis, yaws)
        ild = lambda h: float(10 * np.log10((h[0, :first_onset(h) + 48] ** 2).sum()  # noqa: E731
                                            / (h[1, :first_onset(h) + 48] ** 2).sum()))
        rows.append({"distance_m": d, "direct_delay_ms": 1000 * d / 343.0,
                     "onset_ms": {"avworld": 1000 * first_onset(av[2]) / fs, "rlr": 1000 * first_onset(rl[2]) / fs},
                     "direct_ild_db_source_left": {"avworld": ild(av[0]), "rlr": ild(rl[0])},
                     "direct_ild_db_source_right": {"avworld": ild(av[1]), "rlr": ild(rl[1])},
                     "rlr_seconds_4_listeners": secs})
    t0 = time.perf_counter()
    rs.render(src, lis, [0.0])
    one = time.perf_counter() - t0
    return {"pairs": rows, "rlr_seconds_one_listener": one,
            "transmission": _check_transmission(scene, nav, rc, eng, hrtf, rng), "directions": _check_directions(hrtf)}


def _check_directions(hrtf, yaws_deg=(0.0, 57.0, -115.0)) -> dict:
    """Direct sound only, in a 40 m box: for 8 horizontal source directions around the head at each
    yaw, the avworld HRIR (of all measured directions) whose log spectrum is nearest to rlr's
    response; returns the largest angle between it and the true head-frame direction."""
    import trimesh

    from avworld.geometry.materials import BUILTIN_MATERIALS

    box = trimesh.creation.box(extents=(40.0, 40.0, 40.0))
    box.invert()
    scene = Scene(box.vertices, box.faces, np.zeros(len(box.faces), np.int16), (BUILTIN_MATERIALS["concrete"],))
    rs = RLRScene(scene, RLRSettings(indirect=False, diffraction=False), hrtf=hrtf)
    n = 512
    ref = np.log(np.abs(np.fft.rfft(hrtf.lookup(hrtf.directions), n))[..., 8:200] + 1e-6)  # (D, 2, F)
    worst = 0.0
    for yaw in np.radians(yaws_deg):
        for az in np.radians(np.arange(0.0, 360.0, 45.0)):
            head = np.array([np.cos(az), np.sin(az), 0.0])
            world = np.array([np.cos(az + yaw), np.sin(az + yaw), 0.0])
            h = rs.render(3.0 * world, np.zeros(3), [yaw])[0][0][:, :n]
            err = ref - np.log(np.abs(np.fft.rfft(h, n))[:, 8:200] + 1e-6)
            best = hrtf.directions[np.argmin(((err - err.mean(axis=(1, 2), keepdims=True)) ** 2).mean(axis=(1, 2)))]
            worst = max(worst, float(np.degrees(np.arccos(np.clip(best @ head, -1.0, 1.0)))))
    return {"yaws_deg": list(yaws_deg), "directions": 8, "largest_error_deg": worst}


def _check_transmission(scene, nav, rc, eng, hrtf, rng) -> list[dict]:
    """Level of the direct sound through walls, re the same path in line of sight (500 Hz and 1 kHz
    octaves, head facing the source, paths through one interior wall): rlr with direct sound only
    (no reflections, no diffraction) against avworld's transmitted arrival (its band gain x 4 pi d)."""
    from avworld.acoustics.bands import octave_band_filter

    fs = 16000
    direct_only = RLRScene(scene, RLRSettings(indirect=False, diffraction=False), hrtf=hrtf)

    def band_db(src, lis):
        bearing = float(np.arctan2(*(src - lis)[1::-1]))
        h = direct_only.render(src, lis, [bearing])[0][0].astype(np.float64)
        d = float(np.linalg.norm(src - lis))
        return np.array([10 * np.log10(sum((octave_band_filter(c, b, fs) ** 2).sum() for c in h) * d * d)
                         for b in (2, 3)])

    out, ref = [], None
    while ref is None or len(out) < 3:
        a, b = nav.sample_navigable(rng, 2)
        src, lis = np.r_[a, 1.2], np.r_[b, 1.5]
        if not 2.0 < np.linalg.norm(src - lis) < 6.0:
            continue
        occluded = bool(rc.occluded(src[None], lis[None])[0])
        if not occluded and ref is None:
            ref = band_db(src, lis)
        elif occluded and ref is not None:
            srir = eng.spatial_rir(src, lis)
            first = int(np.argmin(srir.delay_s))
            d = float(np.linalg.norm(src - lis))
            av = 20 * np.log10(np.maximum(srir.gain[first, 2:4] * 4 * np.pi * d, 1e-12))
            if srir.order[first] >= 0 or av[0] < -50.0:  # keep paths through one interior wall (TL 34/40 dB)
                continue
            out.append({"distance_m": d, "avworld_db": av.tolist(), "rlr_db": (band_db(src, lis) - ref).tolist()})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="frame mapping + direct delay + timing on a 4-room house")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not args.check:
        p.print_help()
        sys.exit(0)
    res = _check(args.seed)
    for r in res["pairs"]:
        print(f"d={r['distance_m']:.2f} m  d/c={r['direct_delay_ms']:.2f} ms  onset avworld "
              f"{r['onset_ms']['avworld']:.2f} / rlr {r['onset_ms']['rlr']:.2f} ms  direct ILD source left "
              f"{r['direct_ild_db_source_left']['avworld']:+.1f} / {r['direct_ild_db_source_left']['rlr']:+.1f} dB, "
              f"right {r['direct_ild_db_source_right']['avworld']:+.1f} / {r['direct_ild_db_source_right']['rlr']:+.1f}"
              f" dB  rlr 4 listeners {r['rlr_seconds_4_listeners']:.2f} s")
    print(f"rlr one listener: {res['rlr_seconds_one_listener']:.2f} s")
    d = res["directions"]
    print(f"direct sound of 8 horizontal directions at yaws {d['yaws_deg']} deg: the nearest avworld HRIR is at most "
          f"{d['largest_error_deg']:.1f} deg from the true head-frame direction")
    for r in res["transmission"]:
        print(f"through walls, d={r['distance_m']:.2f} m: direct level re line of sight at 500 Hz / 1 kHz: avworld "
              f"{r['avworld_db'][0]:+.1f} / {r['avworld_db'][1]:+.1f} dB, rlr {r['rlr_db'][0]:+.1f} / "
              f"{r['rlr_db'][1]:+.1f} dB")


if __name__ == "__main__":
    main()
