"""Import a user mesh (``.glb``/``.gltf``/``.obj``/``.ply``) as a :class:`Scene`.

Typical sources are scanned houses: Replica ``mesh.ply`` (z-up), Matterport3D / HM3D
``.glb`` (y-up, as every glTF file). The importer

1. loads the file with trimesh and concatenates all triangle geometries, applying their
   scene-graph transforms and remembering each geometry's material / node names;
2. rotates the chosen ``up_axis`` onto +z (a proper rotation, never a mirror) and scales;
   ``"auto"`` (the default) is ``y`` for ``.glb``/``.gltf`` (y-up by the glTF spec) and
   ``z`` for ``.obj``/``.ply`` (see :data:`DEFAULT_UP_AXES`);
3. drops degenerate faces (repeated indices or zero area) and unused vertices;
4. maps source material names to built-in materials by substring (config first, then
   keyword defaults such as ``floor`` -> ``wood_floor``);
5. finds the floor height (:func:`detect_floor_z`) and labels faces heuristically:
   up-facing near the floor -> ``floor``, down-facing in the upper part -> ``ceiling``,
   near-vertical -> ``wall``, everything else -> ``object``;
6. warns (:class:`~avworld.geometry.up_axis_check.UpAxisWarning`) when the result looks
   wrongly oriented (:func:`~avworld.geometry.up_axis_check.shape_reasons`).

Coordinates are not shifted: the floor stays wherever the source put it and its height
is recorded in ``scene.meta["floor_z"]`` (which :attr:`Scene.floor_z` falls back to).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avworld.geometry.materials import BUILTIN_MATERIALS
from avworld.geometry.scene import Scene
from avworld.geometry.semantics import semantic_id
from avworld.geometry.up_axis_check import warn_if_suspect

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".glb", ".gltf", ".obj", ".ply")
UP_AXES: tuple[str, ...] = ("x", "y", "z", "-x", "-y", "-z")
#: What ``up_axis="auto"`` means per file extension: glTF is y-up by its specification;
#: OBJ and PLY have no convention (Replica's ``mesh.ply`` is z-up).
DEFAULT_UP_AXES: dict[str, str] = {".glb": "y", ".gltf": "y", ".obj": "z", ".ply": "z"}

#: Rotation taking each source up axis to +z (det +1, so handedness is preserved).
_UP_ROTATIONS: dict[str, np.ndarray] = {
    "z": np.eye(3),
    "-z": np.array([[1, 0, 0], [0, -1, 0], [0, 0, -1]], float),
    "y": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], float),  # glTF / Blender convention
    "-y": np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float),
    "x": np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], float),
    "-x": np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float),
}

#: Keyword -> built-in material, tried in order after ``MeshImportConfig.material_map``.
DEFAULT_MATERIAL_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("wall_tile", "wall_tile"), ("carpet", "carpet"), ("rug", "carpet"), ("curtain", "curtain"),
    ("drape", "curtain"), ("glass", "glass"), ("window", "glass"), ("mirror", "glass"),
    ("ceiling", "ceiling_plaster"), ("marble", "marble"), ("tile", "tile"), ("floor", "wood_floor"),
    ("door", "wood_door"), ("brick", "brick"), ("concrete", "concrete"), ("wall", "plaster"),
    ("plaster", "plaster"), ("sofa", "upholstery"), ("couch", "upholstery"), ("cushion", "upholstery"),
    ("fabric", "upholstery"), ("bed", "bedding"), ("pillow", "bedding"), ("blanket", "bedding"),
    ("metal", "metal"), ("steel", "metal"), ("ceramic", "ceramic"), ("porcelain", "ceramic"),
    ("plant", "plant"), ("grass", "grass"), ("wood", "wood_furniture"),
)

_UP_NZ = 0.9  # |normal z| above this counts as horizontal (up- or down-facing)
_WALL_NZ = 0.2  # |normal z| below this counts as vertical


class MeshImportError(ValueError):
    """A mesh file cannot be imported (message names the file and the fix)."""


@dataclass(frozen=True)
class MeshImportConfig:
    """How to interpret a source mesh.

    ``up_axis``: source axis pointing up (``"y"`` for glTF/Matterport/HM3D, ``"z"`` for
    Replica), or ``"auto"``: the format's convention (:data:`DEFAULT_UP_AXES`);
    ``scale``: source units -> metres; ``default_material``: built-in material
    for faces whose source names match nothing; ``material_map``: ``(substring,
    material)`` pairs matched case-insensitively against source material / geometry /
    node names before :data:`DEFAULT_MATERIAL_KEYWORDS`; ``floor_z``: floor height in
    the output frame (metres), or ``None`` to detect it; ``floor_tolerance_m``: how
    far from ``floor_z`` an up-facing face may be to be labelled floor.
    """

    up_axis: str = "auto"
    scale: float = 1.0
    default_material: str = "default"
    material_map: tuple[tuple[str, str], ...] = ()
    floor_z: float | None = None
    floor_tolerance_m: float = 0.1

    def validate(self) -> None:
        """Raise :class:`MeshImportError` for invalid values."""
        if self.up_axis != "auto" and self.up_axis not in UP_AXES:
            raise MeshImportError(f"up_axis must be 'auto' or one of {list(UP_AXES)}, got {self.up_axis!r}")
        if not (_is_real(self.scale) and math.isfinite(self.scale) and self.scale > 0):
            raise MeshImportError(f"scale must be a finite number > 0 (source units to metres), got {self.scale!r}")
        for pair in self.material_map:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not isinstance(pair[0], str) or not pair[0]:
                raise MeshImportError(f"material_map entries must be (non-empty substring, material), got {pair!r}")
        for name in [self.default_material] + [m for _, m in self.material_map]:
            if name not in BUILTIN_MATERIALS:
                raise MeshImportError(
                    f"unknown material {name!r} in MeshImportConfig; built-in materials: {sorted(BUILTIN_MATERIALS)}"
                )
        if self.floor_z is not None and not (_is_real(self.floor_z) and math.isfinite(self.floor_z)):
            raise MeshImportError(f"floor_z must be a finite height in metres or None, got {self.floor_z!r}")
        if not (_is_real(self.floor_tolerance_m) and self.floor_tolerance_m > 0):
            raise MeshImportError(f"floor_tolerance_m must be > 0, got {self.floor_tolerance_m!r}")


def _is_real(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def resolve_up_axis(up_axis: str, path: str | os.PathLike) -> str:
    """``up_axis`` itself, or for ``"auto"`` the convention of ``path``'s format (:data:`DEFAULT_UP_AXES`)."""
    if up_axis != "auto":
        return up_axis
    return DEFAULT_UP_AXES.get(Path(path).suffix.lower(), "z")


def up_axis_rotation(up_axis: str) -> np.ndarray:
    """(3, 3) rotation matrix mapping ``up_axis`` to +z."""
    if up_axis not in _UP_ROTATIONS:
        raise MeshImportError(f"up_axis must be one of {list(UP_AXES)}, got {up_axis!r}")
    return _UP_ROTATIONS[up_axis].copy()


def material_for_names(names, config: MeshImportConfig = MeshImportConfig()) -> str:  # noqa: B008
    """Built-in material name for a list of source names (first match wins)."""
    lowered = [n.lower() for n in names if n]
    for table in (config.material_map, DEFAULT_MATERIAL_KEYWORDS):
        for key, material in table:
            if any(key.lower() in n for n in lowered):
                return material
    return config.default_material


# --------------------------------------------------------------------------- loading
def _load_parts(path: Path):
    """[(vertices (V, 3) float64 in the file frame, faces (F, 3), [names])] of a mesh file."""
    import trimesh

    try:
        tscene = trimesh.load(str(path), force="scene", process=False)
        parts = []
        for node in tscene.graph.nodes_geometry:
            transform, geom_name = tscene.graph[node]
            geom = tscene.geometry[geom_name]
            if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
                continue
            v = np.asarray(geom.vertices, dtype=np.float64)
            v = v @ np.asarray(transform, float)[:3, :3].T + np.asarray(transform, float)[:3, 3]
            mat = getattr(getattr(geom.visual, "material", None), "name", None)
            names = [str(n) for n in (mat, geom_name, node, geom.metadata.get("name")) if n]
            parts.append((v, np.asarray(geom.faces, dtype=np.int64), names))
    except MeshImportError:
        raise
    except Exception as e:  # trimesh raises many exception types on corrupt input
        raise MeshImportError(
            f"{path}: cannot read the file as {path.suffix.lower()} ({type(e).__name__}: {e}); "
            "the file is corrupt or truncated, or the extension does not match its content"
        ) from e
    return parts


def _clean(vertices: np.ndarray, faces: np.ndarray, *arrays):
    """Drop faces with repeated indices or (near-)zero area, then unused vertices."""
    t = vertices[faces]
    area2 = np.linalg.norm(np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]), axis=1)
    ext = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    keep = ~repeated & np.isfinite(area2) & (area2 > max(ext, 1e-9) ** 2 * 1e-14)
    faces = faces[keep]
    used, inverse = np.unique(faces.reshape(-1), return_inverse=True)
    return vertices[used], inverse.reshape(-1, 3).astype(np.int32), [a[keep] for a in arrays]


# --------------------------------------------------------------------------- floor
def detect_floor_z(
    vertices,
    faces,
    bin_m: float = 0.05,
    min_share: float = 0.2,
    min_area_m2: float = 0.05,
    source: str = "mesh",
) -> float:
    """Height of the floor: the lowest substantial level of upward-facing area.

    Builds an area-weighted histogram (bins of ``bin_m``) of the centroid heights of
    faces whose unit normal has z > 0.9, picks the lowest bin holding at least
    ``min_share`` of the largest bin's area (so a few stray low triangles are
    ignored), and returns the area-weighted mean height of that bin's faces. Raises
    :class:`MeshImportError` if the up-facing area is below ``min_area_m2``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = v[np.asarray(faces)]
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    area = 0.5 * norm
    nz = np.divide(cross[:, 2], norm, out=np.zeros_like(norm), where=norm > 0)
    up = nz > _UP_NZ
    if area[up].sum() < min_area_m2:
        raise MeshImportError(
            f"{source}: no floor found: the mesh has no upward-facing horizontal surface "
            f"(up-facing area {area[up].sum():.3g} m^2 < {min_area_m2} m^2); check --up-axis "
            "(glTF/Matterport/HM3D meshes are y-up, Replica is z-up) and the face winding, or set floor_z"
        )
    z = t[up, :, 2].mean(axis=1)
    a = area[up]
    z0 = z.min()
    idx = np.floor((z - z0) / bin_m).astype(np.int64)
    hist = np.bincount(idx, weights=a)
    lowest = int(np.flatnonzero(hist >= min_share * hist.max())[0])
    sel = idx == lowest
    return float(np.average(z[sel], weights=a[sel]))


# --------------------------------------------------------------------------- import
def import_mesh(path: str | os.PathLike, config: MeshImportConfig = MeshImportConfig()) -> Scene:  # noqa: B008
    """Load a ``.glb``/``.gltf``/``.obj``/``.ply`` mesh as a z-up, metre-scale :class:`Scene`.

    Warns with :class:`~avworld.geometry.up_axis_check.UpAxisWarning` when the result
    looks wrongly oriented (the floor is not the lowest large horizontal surface, or the
    scene is taller than it is wide).
    """
    p = Path(path)
    config.validate()
    if p.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise MeshImportError(
            f"{p}: unsupported mesh format {p.suffix or '(no extension)'!r}; supported: {list(SUPPORTED_EXTENSIONS)} "
            "(convert other formats, e.g. with Blender or trimesh)"
        )
    if not p.is_file():
        raise MeshImportError(f"{p}: mesh file not found; check the path")
    if p.suffix.lower() in (".obj", ".gltf"):
        with open(p, "rb") as fh:
            if b"\x00" in fh.read(1 << 16):
                raise MeshImportError(
                    f"{p}: {p.suffix.lower()} is a text format but the file holds binary data; "
                    "the file is corrupt or its extension is wrong (binary glTF must end in .glb)"
                )
    parts = _load_parts(p)
    if not parts:
        raise MeshImportError(f"{p}: the file contains no triangles (empty mesh, or only points/lines)")

    mat_names = sorted({material_for_names(names, config) for _, _, names in parts} | {config.default_material})
    mat_index = {name: i for i, name in enumerate(mat_names)}
    verts, faces, fmat, offset = [], [], [], 0
    for v, f, names in parts:
        verts.append(v)
        faces.append(f + offset)
        fmat.append(np.full(len(f), mat_index[material_for_names(names, config)], np.int16))
        offset += len(v)
    up_axis = resolve_up_axis(config.up_axis, p)
    rot = up_axis_rotation(up_axis) * float(config.scale)
    vertices = np.concatenate(verts) @ rot.T
    if not np.all(np.isfinite(vertices)):
        raise MeshImportError(f"{p}: vertices contain NaN or infinite coordinates; repair the mesh first")
    vertices, faces_arr, (face_material,) = _clean(vertices, np.concatenate(faces), np.concatenate(fmat))
    if len(faces_arr) == 0:
        raise MeshImportError(f"{p}: every triangle is degenerate (zero area); the mesh is empty")

    floor_z = config.floor_z
    if floor_z is None:
        floor_z = detect_floor_z(vertices, faces_arr, source=str(p))
    face_semantic = label_faces(vertices, faces_arr, float(floor_z), config.floor_tolerance_m)

    # Keep only materials that are used, in a stable order.
    used = np.unique(face_material)
    remap = np.full(len(mat_names), -1, np.int16)
    remap[used] = np.arange(len(used), dtype=np.int16)
    materials = tuple(BUILTIN_MATERIALS[mat_names[i]] for i in used)
    meta = {
        "source": str(p),
        "source_format": p.suffix.lower().lstrip("."),
        "importer": "avworld.geometry.mesh_import",
        "up_axis": up_axis,
        "scale": float(config.scale),
        "floor_z": float(floor_z),
        "floor_z_detected": config.floor_z is None,
        "source_geometries": len(parts),
    }
    scene = Scene(vertices, faces_arr, remap[face_material], materials, face_semantic, None, meta=meta)
    warn_if_suspect(scene, stacklevel=2)
    return scene


def label_faces(vertices, faces, floor_z: float, floor_tolerance_m: float = 0.1) -> np.ndarray:
    """(F,) int16 semantic ids from orientation and height (floor/ceiling/wall/object).

    Floor: normal z > 0.9 and centroid within ``floor_tolerance_m`` of ``floor_z``.
    Ceiling: normal z < -0.9 and centroid in the upper 30 % of the range from
    ``floor_z`` to the mesh top. Wall: |normal z| < 0.2. Everything else: object.
    """
    v = np.asarray(vertices, dtype=np.float64)
    t = v[np.asarray(faces)]
    cross = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    norm = np.linalg.norm(cross, axis=1)
    nz = np.divide(cross[:, 2], norm, out=np.zeros_like(norm), where=norm > 0)
    cz = t[:, :, 2].mean(axis=1)
    top = float(v[:, 2].max())
    out = np.full(len(t), semantic_id("object"), np.int16)
    out[np.abs(nz) < _WALL_NZ] = semantic_id("wall")
    out[(nz > _UP_NZ) & (np.abs(cz - floor_z) <= floor_tolerance_m)] = semantic_id("floor")
    out[(nz < -_UP_NZ) & (cz >= floor_z + 0.7 * (top - floor_z))] = semantic_id("ceiling")
    return out
