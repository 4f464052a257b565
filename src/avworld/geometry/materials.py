"""Materials: colour/texture parameters for vision and octave-band acoustics.

Every surface of a scene carries one material. Acoustic coefficients are given per
octave band (:data:`OCTAVE_BANDS_HZ`, 125 Hz to 8 kHz):

* ``absorption``: random-incidence energy absorption coefficient in [0, 1).
* ``scattering``: fraction of reflected energy scattered diffusely, in [0, 1].
* ``transmission_loss_db``: sound reduction index of the element (dB) when sound
  passes *through* it (walls, doors, glass). ``inf`` for elements that are never
  crossed (furniture interiors are solid; we still give finite values where a
  thin element makes sense).

Values for the built-in library are typical textbook figures (random-incidence
absorption tables as collected e.g. in Vorlaender, *Auralization*, Appendix A, and
common sound-reduction indices of building elements). They are plausible,
documented defaults, not measurements of any particular building.

Soft furnishings (:data:`SOFT_MATERIALS`; issue 16) and where their numbers come from.
"Vorlaender" is the table of *Auralization* (Springer 2008), Appendix A, read from its
machine-readable copy in pyroomacoustics 0.10 (``pyroomacoustics/data/materials.json``,
whose ``parameters.py`` names that appendix as the source; the key is given). Rows with
six bands stop at 4 kHz; the 8 kHz value repeats the 4 kHz one. Scattering of soft items
is an estimate (no table is used):

* ``carpet_underlay`` -- wall-to-wall carpet on underlay: Vorlaender "Carpet 1.35 kg/m2,
  on hair felt or foam rubber" (``carpet_1.35_kg_m2``), ISO 354-type chamber data.
* ``rug`` / ``rug_blue`` / ``rug_beige`` -- a pile rug on a felt pad over a hard floor:
  Vorlaender "9 mm tufted pile carpet on felt underlay" (``carpet_tufted_9m``).
* ``curtain`` (existing) -- medium velour (14 oz/yd2) draped to half area, the classic
  Sabine-table row reproduced in standard texts (e.g. Long, *Architectural Acoustics*).
* ``drape`` -- heavier living-room / bedroom curtains: Vorlaender "Cotton curtains
  (0.5 kg/m2) draped to 3/4 area approx. 130 mm from wall" (``curtains_cotton_0.5``).
* ``sheer_curtain`` -- light kitchen / bathroom curtains: Vorlaender "Curtains
  (0.2 kg/m2) hung 90 mm from wall" (``curtains_0.2``).
* ``upholstery`` (existing) -- Vorlaender "Empty chairs, upholstered with cloth cover"
  (``chairs_upholstered_cloth``). The table is per m2 of floor covered by seating; the
  procedural sofas and armchairs apply it to every exposed face of their boxes (about
  2-3 times their footprint), which puts a box sofa at the upper end of what whole
  sofas absorb. Treat it as a per-object calibration, not a surface measurement.
* ``bedding`` (existing) -- a made bed (mattress, duvet, pillows). No table row exists and
  the library's values carry no recorded source: an estimate, a little below Vorlaender's
  upholstered seating rows (e.g. ``chairs_medium_upholstered``) at low frequencies.
* ``books`` -- the front of a filled bookshelf. No standard table; an estimate (a
  porous, very uneven surface: modest absorption, strong scattering).
* ``coats`` -- coats on hooks: the ``drape`` row as a proxy (heavy fabric hanging in folds;
  an estimate by analogy).
* ``towel`` -- hanging terry towels: Vorlaender's "Cotton carpet" (``carpet_cotton``) as a
  proxy for a looped cotton pile (an estimate by analogy, not a towel measurement).

Procedural homes also give their walls and floors :data:`CONTENTS_ABSORPTION`, a
calibrated allowance (not a table value) for what they do not model. :func:`damped`
applies both, scaled by ``HouseConfig.acoustic_damping``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

OCTAVE_BANDS_HZ: tuple[float, ...] = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
NUM_BANDS = len(OCTAVE_BANDS_HZ)

#: Procedural texture kinds understood by :mod:`avworld.vision`.
TEXTURE_KINDS = ("plain", "noise", "wood", "tile", "carpet", "brick", "fabric", "marble", "grass")


class MaterialError(ValueError):
    """A material definition is invalid (wrong band count, out-of-range value...)."""


def _bands(values, name: str, lo: float, hi: float) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (NUM_BANDS,):
        raise MaterialError(
            f"{name} needs {NUM_BANDS} octave-band values ({OCTAVE_BANDS_HZ} Hz), got {arr.size}"
        )
    if np.any(np.isnan(arr)) or np.any(arr < lo) or np.any(arr > hi):
        raise MaterialError(f"{name} values must lie in [{lo}, {hi}], got {arr.tolist()}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class Material:
    """One surface material.

    ``albedo`` is linear RGB in [0, 1]; ``texture`` is one of :data:`TEXTURE_KINDS`,
    evaluated in world coordinates with period ``texture_scale_m`` and strength
    ``texture_contrast`` (0 = flat colour).
    """

    name: str
    albedo: tuple[float, float, float]
    absorption: tuple[float, ...]
    scattering: tuple[float, ...]
    transmission_loss_db: tuple[float, ...]
    texture: str = "plain"
    texture_scale_m: float = 0.5
    texture_contrast: float = 0.15
    secondary: tuple[float, float, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.name:
            raise MaterialError("material name must be non-empty")
        alb = tuple(float(c) for c in self.albedo)
        if len(alb) != 3 or min(alb) < 0 or max(alb) > 1:
            raise MaterialError(f"material {self.name!r}: albedo must be 3 values in [0, 1]")
        object.__setattr__(self, "albedo", alb)
        if self.secondary is not None:
            sec = tuple(float(c) for c in self.secondary)
            if len(sec) != 3 or min(sec) < 0 or max(sec) > 1:
                raise MaterialError(f"material {self.name!r}: secondary must be 3 values in [0, 1]")
            object.__setattr__(self, "secondary", sec)
        object.__setattr__(self, "absorption", _bands(self.absorption, f"{self.name}.absorption", 0.0, 0.999))
        object.__setattr__(self, "scattering", _bands(self.scattering, f"{self.name}.scattering", 0.0, 1.0))
        object.__setattr__(
            self,
            "transmission_loss_db",
            _bands(self.transmission_loss_db, f"{self.name}.transmission_loss_db", 0.0, float("inf")),
        )
        if self.texture not in TEXTURE_KINDS:
            raise MaterialError(f"material {self.name!r}: texture {self.texture!r} not in {TEXTURE_KINDS}")
        if not self.texture_scale_m > 0:
            raise MaterialError(f"material {self.name!r}: texture_scale_m must be > 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["transmission_loss_db"] = [v if np.isfinite(v) else "inf" for v in self.transmission_loss_db]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Material:
        d = dict(d)
        d["transmission_loss_db"] = [float(v) for v in d["transmission_loss_db"]]
        for key in ("albedo", "absorption", "scattering", "secondary"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


def _m(name, albedo, absorption, scattering, tl, texture="plain", scale=0.5, contrast=0.15, secondary=None):
    return Material(name, albedo, absorption, scattering, tl, texture, scale, contrast, secondary)


_INTERIOR_WALL_TL = (17, 26, 34, 40, 44, 38, 42)  # single stud, gypsum both sides
# painted gypsum board on studs: the panel resonance absorbs low frequencies
_GYPSUM_WALL = (0.29, 0.10, 0.05, 0.04, 0.07, 0.09, 0.09)
_EXTERIOR_WALL_TL = (38, 42, 48, 54, 58, 62, 64)  # masonry / concrete
_SLAB_TL = (42, 46, 52, 58, 62, 66, 68)
_SOLID = (60, 60, 60, 60, 60, 60, 60)

#: The built-in material library, keyed by name.
BUILTIN_MATERIALS: dict[str, Material] = {
    m.name: m
    for m in [
        _m("plaster", (0.82, 0.80, 0.75), _GYPSUM_WALL, (0.1,) * 7,
           _INTERIOR_WALL_TL, "noise", 0.3, 0.05),
        _m("painted_plaster_blue", (0.55, 0.66, 0.78), _GYPSUM_WALL, (0.1,) * 7,
           _INTERIOR_WALL_TL, "noise", 0.3, 0.05),
        _m("painted_plaster_green", (0.62, 0.74, 0.58), _GYPSUM_WALL, (0.1,) * 7,
           _INTERIOR_WALL_TL, "noise", 0.3, 0.05),
        _m("painted_plaster_warm", (0.86, 0.72, 0.56), _GYPSUM_WALL, (0.1,) * 7,
           _INTERIOR_WALL_TL, "noise", 0.3, 0.05),
        _m("concrete", (0.55, 0.55, 0.53), (0.01, 0.02, 0.04, 0.06, 0.08, 0.10, 0.10), (0.2,) * 7,
           _EXTERIOR_WALL_TL, "noise", 0.8, 0.25),
        _m("brick", (0.62, 0.32, 0.24), (0.03, 0.03, 0.03, 0.04, 0.05, 0.07, 0.07), (0.3,) * 7,
           _EXTERIOR_WALL_TL, "brick", 0.25, 0.35, (0.78, 0.75, 0.70)),
        _m("wood_floor", (0.55, 0.36, 0.20), (0.15, 0.11, 0.10, 0.07, 0.06, 0.07, 0.07), (0.1,) * 7,
           _SLAB_TL, "wood", 0.6, 0.35),
        _m("carpet", (0.45, 0.40, 0.52), (0.02, 0.06, 0.14, 0.37, 0.60, 0.65, 0.65), (0.15,) * 7,
           _SLAB_TL, "carpet", 0.05, 0.25),
        _m("tile", (0.85, 0.85, 0.82), (0.01, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02), (0.05,) * 7,
           _SLAB_TL, "tile", 0.4, 0.45, (0.45, 0.45, 0.45)),
        _m("wall_tile", (0.70, 0.82, 0.85), (0.01, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02), (0.05,) * 7,
           _INTERIOR_WALL_TL, "tile", 0.2, 0.4, (0.9, 0.9, 0.9)),
        _m("marble", (0.88, 0.87, 0.84), (0.01, 0.01, 0.01, 0.01, 0.02, 0.02, 0.02), (0.05,) * 7,
           _SLAB_TL, "marble", 0.5, 0.3, (0.5, 0.5, 0.52)),
        _m("ceiling_plaster", (0.92, 0.92, 0.90), (0.29, 0.10, 0.05, 0.04, 0.07, 0.09, 0.09), (0.1,) * 7,
           _SLAB_TL, "noise", 0.4, 0.03),
        _m("acoustic_tile", (0.90, 0.90, 0.88), (0.50, 0.70, 0.60, 0.70, 0.70, 0.50, 0.50), (0.3,) * 7,
           _SLAB_TL, "tile", 0.6, 0.15, (0.7, 0.7, 0.7)),
        _m("curtain", (0.60, 0.22, 0.22), (0.07, 0.31, 0.49, 0.75, 0.70, 0.60, 0.60), (0.5,) * 7,
           (2, 3, 4, 6, 8, 10, 12), "fabric", 0.08, 0.3),
        _m("glass", (0.55, 0.70, 0.78), (0.35, 0.25, 0.18, 0.12, 0.07, 0.04, 0.04), (0.05,) * 7,
           (18, 22, 26, 30, 32, 30, 34), "plain", 1.0, 0.0),
        _m("wood_door", (0.50, 0.33, 0.18), (0.14, 0.10, 0.06, 0.08, 0.10, 0.10, 0.10), (0.1,) * 7,
           (15, 19, 23, 26, 28, 29, 30), "wood", 0.5, 0.3),
        _m("wood_furniture", (0.60, 0.42, 0.25), (0.19, 0.14, 0.09, 0.06, 0.06, 0.05, 0.05), (0.4,) * 7,
           _SOLID, "wood", 0.4, 0.3),
        _m("dark_wood", (0.30, 0.19, 0.11), (0.19, 0.14, 0.09, 0.06, 0.06, 0.05, 0.05), (0.4,) * 7,
           _SOLID, "wood", 0.4, 0.3),
        _m("upholstery", (0.35, 0.45, 0.60), (0.44, 0.60, 0.77, 0.89, 0.82, 0.70, 0.70), (0.6,) * 7,
           _SOLID, "fabric", 0.04, 0.2),
        # soft furnishings of procedural homes (sources in the module docstring)
        _m("carpet_underlay", (0.50, 0.44, 0.40), (0.08, 0.24, 0.57, 0.69, 0.71, 0.73, 0.73), (0.15,) * 7,
           _SLAB_TL, "carpet", 0.05, 0.25),
        _m("rug", (0.55, 0.22, 0.20), (0.08, 0.08, 0.30, 0.60, 0.75, 0.80, 0.80), (0.2,) * 7,
           _SLAB_TL, "carpet", 0.04, 0.35),
        _m("rug_blue", (0.22, 0.30, 0.50), (0.08, 0.08, 0.30, 0.60, 0.75, 0.80, 0.80), (0.2,) * 7,
           _SLAB_TL, "carpet", 0.04, 0.35),
        _m("rug_beige", (0.74, 0.66, 0.52), (0.08, 0.08, 0.30, 0.60, 0.75, 0.80, 0.80), (0.2,) * 7,
           _SLAB_TL, "carpet", 0.04, 0.3),
        _m("drape", (0.45, 0.50, 0.40), (0.30, 0.45, 0.65, 0.56, 0.59, 0.71, 0.71), (0.5,) * 7,
           (2, 3, 4, 6, 8, 10, 12), "fabric", 0.08, 0.3),
        _m("sheer_curtain", (0.88, 0.86, 0.80), (0.05, 0.06, 0.39, 0.63, 0.70, 0.73, 0.73), (0.3,) * 7,
           (1, 1, 2, 3, 4, 5, 6), "fabric", 0.05, 0.15),
        _m("books", (0.45, 0.30, 0.25), (0.10, 0.15, 0.20, 0.25, 0.30, 0.30, 0.30), (0.7,) * 7,
           _SOLID, "noise", 0.06, 0.5, (0.25, 0.35, 0.45)),
        _m("towel", (0.85, 0.85, 0.80), (0.07, 0.31, 0.49, 0.81, 0.66, 0.54, 0.48), (0.5,) * 7,
           _SOLID, "fabric", 0.03, 0.2),
        _m("coats", (0.25, 0.26, 0.32), (0.30, 0.45, 0.65, 0.56, 0.59, 0.71, 0.71), (0.6,) * 7,
           _SOLID, "fabric", 0.1, 0.35),
        _m("bedding", (0.90, 0.88, 0.80), (0.40, 0.55, 0.70, 0.80, 0.80, 0.75, 0.75), (0.6,) * 7,
           _SOLID, "fabric", 0.06, 0.15),
        _m("metal", (0.75, 0.76, 0.78), (0.01, 0.01, 0.01, 0.01, 0.02, 0.02, 0.02), (0.2,) * 7,
           _SOLID, "noise", 0.2, 0.05),
        _m("ceramic", (0.95, 0.95, 0.95), (0.01, 0.01, 0.01, 0.02, 0.02, 0.02, 0.02), (0.1,) * 7,
           _SOLID, "plain", 1.0, 0.0),
        _m("plant", (0.20, 0.50, 0.20), (0.03, 0.06, 0.11, 0.17, 0.27, 0.31, 0.31), (0.7,) * 7,
           _SOLID, "noise", 0.05, 0.4),
        _m("grass", (0.30, 0.55, 0.22), (0.11, 0.26, 0.60, 0.69, 0.92, 0.99, 0.99), (0.5,) * 7,
           _SLAB_TL, "grass", 0.1, 0.3),
        _m("default", (0.70, 0.70, 0.70), (0.05, 0.05, 0.06, 0.08, 0.10, 0.12, 0.12), (0.2,) * 7,
           _INTERIOR_WALL_TL, "noise", 0.5, 0.1),
    ]
}


#: Soft furnishings: the materials whose absorption ``HouseConfig.acoustic_damping`` scales.
SOFT_MATERIALS = frozenset({
    "carpet", "carpet_underlay", "rug", "rug_blue", "rug_beige", "curtain", "drape", "sheer_curtain",
    "upholstery", "bedding", "books", "towel", "coats",
})


#: Room surfaces of furnished procedural homes that carry :data:`CONTENTS_ABSORPTION`.
CONTENTS_SURFACES = frozenset({
    "plaster", "painted_plaster_blue", "painted_plaster_green", "painted_plaster_warm", "wall_tile",
    "concrete", "wood_floor", "tile", "marble",
})

#: Absorption of the contents of a furnished room that the procedural houses do not model as
#: geometry (small objects, clothes, books, kitchenware and toiletries, pictures, cushions,
#: leaks round doors and windows), spread over its walls and floor. CALIBRATED, not taken from a
#: table: with the tabulated hard surfaces and the soft furnishings alone, living rooms and
#: bedrooms measured a median T30 of ~0.75 s and kitchens ~1.2 s (rooms are coupled through
#: open doorways, and bare kitchens, bathrooms and hallways with ~0.02 mean absorption dominate
#: every room's late decay); this allowance brings them to the measured range of furnished
#: dwellings (docs/acoustics.md, "Home-like acoustics").
CONTENTS_ABSORPTION: tuple[float, ...] = (0.03, 0.05, 0.08, 0.10, 0.10, 0.10, 0.10)


def damped(material: Material, factor: float, contents: bool = False) -> Material:
    """``material`` as it acts in a furnished procedural home of ``acoustic_damping`` ``factor``.

    Soft materials (:data:`SOFT_MATERIALS`): absorption ``1 - (1 - a) ** factor`` per
    band; for small ``a`` the soft item's absorption area scales about linearly with
    ``factor`` and it stays below 1 for any factor. With ``contents``, room surfaces
    (:data:`CONTENTS_SURFACES`) get ``1 - (1 - a) (1 - c) ** factor`` with the calibrated
    allowance ``c`` = :data:`CONTENTS_ABSORPTION`. Everything else, and everything at
    ``factor`` 1 without ``contents``, is returned unchanged. The name, colours and
    scattering are kept.
    """
    a = np.asarray(material.absorption)
    if material.name in SOFT_MATERIALS and factor != 1.0:
        a = 1.0 - (1.0 - a) ** float(factor)
    elif material.name in CONTENTS_SURFACES and contents:
        a = 1.0 - (1.0 - a) * (1.0 - np.asarray(CONTENTS_ABSORPTION)) ** float(factor)
    else:
        return material
    return replace(material, absorption=tuple(float(v) for v in np.clip(a, 0.0, 0.99)))


def get_material(name: str) -> Material:
    """Return a built-in material by name, with a helpful error for unknown names."""
    try:
        return BUILTIN_MATERIALS[name]
    except KeyError:
        raise MaterialError(
            f"unknown material {name!r}; built-in materials are: {sorted(BUILTIN_MATERIALS)}"
        ) from None
