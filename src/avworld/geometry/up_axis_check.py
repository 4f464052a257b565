"""Does an imported mesh stand the right way up? Warnings for a suspicious up-axis guess.

A mesh imported with the wrong ``up_axis`` (a y-up glTF read as z-up, say) still loads:
something is always the "lowest up-facing surface". These checks look for the signs
that the floor is not really a floor, and warn with :class:`UpAxisWarning` (a Python
warning the CLI prints) naming ``--up-axis``:

* :func:`shape_reasons` (cheap, run by :func:`~avworld.geometry.mesh_import.import_mesh`):
  the floor is not the lowest large horizontal surface, the furnishing hangs from the ceiling
  (a house upside down: :func:`furnishing_height`), or the scene is taller above its floor
  than it is wide (a house lying on its side);
* :func:`navigable_reasons` (needs a navigation grid, run by ``avworld scene show``): the
  navigable area is a small fraction of the floor-plan area (the area under any geometry).

Procedural houses and saved avworld scenes are never checked (they are z-up by
construction).
"""

from __future__ import annotations

import warnings

import numpy as np

#: The navigable area below this fraction of the floor-plan area is suspicious (procedural
#: houses: 0.52-0.68; the same houses upside down: 0.21-0.46, on their side: 0.33-0.41; so
#: only clear cases warn, and a house on its side is caught by :func:`shape_reasons`).
MIN_NAVIGABLE_FRACTION = 0.3
#: A large horizontal surface this far (m) below the detected floor is suspicious (floor
#: slabs and rugs are thinner).
MAX_BELOW_FLOOR_M = 0.5
#: Furnishing whose area-weighted mean height lies above this fraction of the floor-to-ceiling
#: height hangs from the ceiling: the mesh is upside down (procedural houses: 0.33-0.44 standing,
#: 0.54-0.65 upside down, 24 houses of 3-7 rooms), when it has at least MIN_FURNISHING_M2 of area.
MAX_FURNISHING_HEIGHT = 0.5
MIN_FURNISHING_M2 = 2.0
#: The scene may be this many metres tall above its floor before the height/width check applies
#: (a few storeys of a narrow house are fine).
MIN_SUSPICIOUS_HEIGHT_M = 4.0

_AXES = ("x", "y", "z")


class UpAxisWarning(UserWarning):
    """An imported mesh looks as if it was read with the wrong up axis (see ``--up-axis``)."""


def _face_areas(scene) -> np.ndarray:
    t = scene.triangles
    return 0.5 * np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)


def _horizontal_levels(scene, bin_m: float = 0.05, min_share: float = 0.2, highest: bool = False) -> float | None:
    """Height of the lowest (``highest``: the highest) bin of horizontal (up- or down-facing) area
    holding at least ``min_share`` of the largest bin's area; None without horizontal faces."""
    t = scene.triangles
    n = scene.face_normals
    area = _face_areas(scene)
    sel = np.abs(n[:, 2]) > 0.9
    if not np.any(sel) or area[sel].sum() <= 0:
        return None
    z = t[sel, :, 2].mean(axis=1)
    idx = np.floor((z - z.min()) / bin_m).astype(np.int64)
    hist = np.bincount(idx, weights=area[sel])
    big = np.flatnonzero(hist >= min_share * hist.max())
    return float(z.min() + int(big[-1] if highest else big[0]) * bin_m)


def furnishing_height(scene) -> tuple[float, float] | None:
    """(area-weighted mean height of the furnishing, as a fraction of the floor-to-ceiling height;
    its area in m^2). Furnishing: every face whose centre lies more than 0.1 m above the floor and
    below the ceiling (the highest large horizontal surface) and that spans less than 60 % of that
    height (full-height walls excluded). None for scenes under 1.5 m tall."""
    floor_z = float(scene.floor_z)
    top = _horizontal_levels(scene, highest=True)
    if top is None or top - floor_z < 1.5:
        return None
    height = top - floor_z
    z = scene.triangles[:, :, 2]
    zc = z.mean(axis=1)
    keep = (zc > floor_z + 0.1) & (zc < top - 0.1) & (np.ptp(z, axis=1) < 0.6 * height)
    area = _face_areas(scene)[keep]
    if area.sum() <= 0:
        return None
    return float(((zc[keep] - floor_z) / height * area).sum() / area.sum()), float(area.sum())


def thinnest_source_axis(scene) -> str | None:
    """The source axis along which the mesh is thinnest (a house is wider than tall), from
    the recorded ``up_axis``; None if the scene was not imported."""
    up = scene.meta.get("up_axis")
    if up not in ("x", "y", "z", "-x", "-y", "-z"):
        return None
    from avworld.geometry.mesh_import import up_axis_rotation

    # output axis k came from source direction rot.T[:, k] (the rotation is a signed permutation)
    rot = up_axis_rotation(up)
    ext = np.ptp(scene.vertices, axis=0)
    k = int(np.argmin(ext))
    src = rot[k]  # row k: output k = sum_j rot[k, j] * source_j
    j = int(np.argmax(np.abs(src)))
    return _AXES[j]


def _hint(scene) -> str:
    up = scene.meta.get("up_axis", "?")
    guess = thinnest_source_axis(scene)
    tip = f"; the mesh is thinnest along its {guess} axis, so try --up-axis {guess}" if guess and guess != up else ""
    return (f"it was imported with --up-axis {up}: if it lies on its side or upside down, pass the source's up "
            f"axis with --up-axis (x, y, z, -x, -y or -z; glTF files are y-up, Replica .ply is z-up){tip}")


def shape_reasons(scene) -> list[str]:
    """Signs, from the geometry alone, that the floor of an imported mesh is not a floor."""
    reasons = []
    floor_z = float(scene.floor_z)
    lowest = _horizontal_levels(scene)
    if lowest is not None and lowest < floor_z - MAX_BELOW_FLOOR_M:
        reasons.append(f"the floor (z={floor_z:.2f} m) is not the lowest large horizontal surface "
                       f"(one lies at z={lowest:.2f} m)")
    furnishing = furnishing_height(scene)
    if furnishing is not None and furnishing[0] > MAX_FURNISHING_HEIGHT and furnishing[1] >= MIN_FURNISHING_M2:
        reasons.append(f"the furnishing ({furnishing[1]:.0f} m^2) hangs from the ceiling: its mean height is "
                       f"{100 * furnishing[0]:.0f} % of the floor-to-ceiling height (the mesh looks upside down)")
    ext = np.ptp(scene.vertices[:, :2], axis=0)
    height = float(scene.vertices[:, 2].max()) - floor_z
    if height > MIN_SUSPICIOUS_HEIGHT_M and height > float(ext.min()):
        reasons.append(f"the scene is {height:.1f} m tall above its floor but only {float(ext.min()):.1f} m wide "
                       "(a house is wider than it is tall)")
    return reasons


def floor_plan_area_m2(scene, nav) -> float:
    """Area (m^2) of the navigation grid's cells with any geometry below a ray from above the scene."""
    from avworld.geometry.raycast import RayCaster

    h, w = nav.free.shape
    iy, ix = np.mgrid[0:h, 0:w]
    xy = np.asarray(nav.origin_xy, float) + nav.resolution_m * np.stack([ix.ravel(), iy.ravel()], axis=1)
    top = float(scene.bounds[1, 2]) + 1.0
    origins = np.c_[xy, np.full(len(xy), top)]
    hits = RayCaster(scene).cast(origins, np.tile([0.0, 0.0, -1.0], (len(xy), 1)))
    return float(hits.hit.sum() * nav.resolution_m**2)


def navigable_reasons(scene, nav) -> list[str]:
    """Signs, from the navigation grid, that the floor of an imported mesh is not a floor."""
    plan = floor_plan_area_m2(scene, nav)
    area = float(nav.navigable_area_m2)
    if plan > 0 and area < MIN_NAVIGABLE_FRACTION * plan:
        return [f"the navigable area ({area:.1f} m^2) is only {100 * area / plan:.0f} % of the floor-plan "
                f"area ({plan:.1f} m^2)"]
    return []


def is_imported(scene) -> bool:
    """True for a scene made by the mesh importer (the only kind whose up axis is a guess)."""
    return scene.meta.get("importer") == "avworld.geometry.mesh_import"


def warn_if_suspect(scene, nav=None, stacklevel: int = 2) -> list[str]:
    """Warn (:class:`UpAxisWarning`) when an imported scene looks wrongly oriented; returns the reasons.

    Without ``nav`` only the cheap :func:`shape_reasons` run. Scenes not made by the importer
    are not checked.
    """
    if not is_imported(scene):
        return []
    reasons = shape_reasons(scene) if nav is None else navigable_reasons(scene, nav)
    if reasons:
        src = scene.meta.get("source", "the mesh")
        warnings.warn(f"{src}: the up axis looks wrong: {'; '.join(reasons)}; {_hint(scene)}",
                      UpAxisWarning, stacklevel=stacklevel + 1)
    return reasons
