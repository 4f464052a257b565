"""Saving and loading scenes: a ``.glb`` for any glTF viewer plus an exact JSON sidecar.

``save_scene(scene, "out/")`` writes two files (see ``docs/scene-format.md``):

* ``scene.glb`` -- the triangle mesh (float32 positions, uint32 indices in the scene's
  exact vertex/face order, ``COLOR_0`` vertex colours from the material albedos) under
  one node that rotates the z-up world into glTF's y-up convention. It opens in any
  glTF viewer and is the source of the face topology when loading.
* ``scene.json`` -- the sidecar: format tag, schema version, materials, rooms, doors,
  objects, ``meta``, the exact float64 vertices and the per-face arrays
  (``face_material``, ``face_semantic``, ``face_instance``), counts, the ``.glb``'s
  SHA-256 and the scene's :attr:`~avworld.geometry.scene.Scene.content_hash`.

``load_scene`` returns a scene with the same ``content_hash``: every array is
bit-identical (glTF only stores float32 positions, so the float64 vertices live in
the sidecar) and every checksum and count is verified. All failures raise a subclass
of :class:`SceneFormatError` naming the file and the fix.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import zlib
from pathlib import Path

import numpy as np

from avworld.geometry.materials import Material, MaterialError
from avworld.geometry.scene import Scene, SceneError, _jsonable

FORMAT_NAME = "avworld-scene"
#: Version of the sidecar layout written by :func:`save_scene`.
SCENE_SCHEMA_VERSION = 1
#: Versions :func:`load_scene` can read.
SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)
DEFAULT_NAME = "scene"

# z-up world -> glTF y-up: (x, y, z) -> (x, z, -y). Applied as a node transform only.
_Z_UP_TO_Y_UP = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)
_FACE_ARRAYS = (("face_material", "<i2"), ("face_semantic", "<i2"), ("face_instance", "<i4"))


class SceneFormatError(ValueError):
    """A scene file pair cannot be written or read (base class of all I/O errors)."""


class MissingSceneFileError(SceneFormatError):
    """The ``.glb`` or the ``.json`` sidecar does not exist."""


class CorruptSceneFileError(SceneFormatError):
    """A file exists but cannot be parsed (not JSON / not a GLB / bad array data)."""


class SceneChecksumError(SceneFormatError):
    """The ``.glb`` or the decoded scene does not match the checksums in the sidecar."""


class NotASceneFileError(SceneFormatError):
    """The JSON file is not an avworld scene sidecar (wrong ``format`` field)."""


class UnsupportedSchemaVersionError(SceneFormatError):
    """The sidecar was written with a schema version this avworld cannot read."""


class SceneCountMismatchError(SceneFormatError):
    """Vertex/face/array counts differ between the sidecar and the ``.glb``."""


# --------------------------------------------------------------------------- arrays
def encode_array(arr: np.ndarray, dtype: str) -> dict:
    """Encode an array as JSON data: run-length for runs, else zlib+base64 of LE bytes."""
    a = np.ascontiguousarray(arr, dtype=np.dtype(dtype))
    flat = a.reshape(-1)
    out: dict = {"dtype": dtype, "shape": list(a.shape)}
    if a.ndim == 1 and a.dtype.kind == "i" and len(flat):
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        if 2 * len(starts) <= max(8, len(flat) // 8):
            lengths = np.diff(np.r_[starts, len(flat)])
            out.update(encoding="rle", values=flat[starts].tolist(), run_lengths=lengths.tolist())
            return out
    out.update(encoding="zlib+base64", data=base64.b64encode(zlib.compress(a.tobytes(), 6)).decode("ascii"))
    return out


def decode_array(spec: dict, where: str = "array") -> np.ndarray:
    """Inverse of :func:`encode_array` (raises :class:`CorruptSceneFileError`)."""
    try:
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(s) for s in spec["shape"])
        if spec["encoding"] == "rle":
            values = np.asarray(spec["values"], dtype=dtype)
            lengths = np.asarray(spec["run_lengths"], dtype=np.int64)
            if values.shape != lengths.shape or np.any(lengths <= 0):
                raise ValueError("values and run_lengths differ in length or a run is empty")
            arr = np.repeat(values, lengths)
        elif spec["encoding"] == "zlib+base64":
            arr = np.frombuffer(zlib.decompress(base64.b64decode(spec["data"], validate=True)), dtype=dtype)
        else:
            raise ValueError(f"unknown encoding {spec['encoding']!r} (expected 'rle' or 'zlib+base64')")
        return arr.reshape(shape).astype(dtype.newbyteorder("="))
    except (KeyError, TypeError, ValueError, zlib.error) as e:
        raise CorruptSceneFileError(f"{where}: cannot decode array data ({e}); re-save the scene") from e


# --------------------------------------------------------------------------- paths
def _pair_paths(path: str | os.PathLike, name: str | None = None) -> tuple[Path, Path]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".glb", ".json"):
        return p.with_suffix(".glb"), p.with_suffix(".json")
    if suffix and not p.is_dir():
        raise SceneFormatError(
            f"{p}: a scene is stored as a .glb + .json pair; pass a directory or a path ending in .glb"
        )
    stem = name or DEFAULT_NAME
    return p / f"{stem}.glb", p / f"{stem}.json"


def _find_sidecar(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() in (".glb", ".json"):
        side = p.with_suffix(".json")
        if not side.is_file():
            raise MissingSceneFileError(
                f"{side}: scene sidecar not found (needed next to {p.with_suffix('.glb').name}); "
                "save the scene with avworld.geometry.io.save_scene, or import a plain mesh with import_mesh"
            )
        return side
    if not p.is_dir():
        raise MissingSceneFileError(f"{p}: no such scene directory or .glb/.json file; check the path")
    default = p / f"{DEFAULT_NAME}.json"
    if default.is_file():
        return default
    candidates = sorted(p.glob("*.json"))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise MissingSceneFileError(f"{p}: directory holds no scene sidecar (*.json); save a scene into it first")
    raise SceneFormatError(
        f"{p}: several .json files {[c.name for c in candidates]}; pass the .glb or .json path of the scene to load"
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- glb
def scene_to_glb(scene: Scene) -> bytes:
    """The scene's mesh as GLB bytes (exact vertex/face order, albedo vertex colours)."""
    import trimesh

    albedo = np.array([m.albedo for m in scene.materials], dtype=np.float64)[scene.face_material]
    # glTF has no per-face colours: average the colours of the faces around each vertex.
    nv, corners = len(scene.vertices), scene.faces.reshape(-1)
    cnt = np.bincount(corners, minlength=nv).astype(np.float64)
    acc = np.stack([np.bincount(corners, np.repeat(albedo[:, c], 3), minlength=nv) for c in range(3)], axis=1)
    rgb = np.where(cnt[:, None] > 0, acc / np.maximum(cnt, 1.0)[:, None], 0.7)
    rgba = np.c_[np.round(np.clip(rgb, 0, 1) * 255), np.full(len(rgb), 255)].astype(np.uint8)
    material = trimesh.visual.material.PBRMaterial(
        name="avworld_albedo", baseColorFactor=[255, 255, 255, 255], metallicFactor=0.0, roughnessFactor=1.0,
        doubleSided=True,
    )
    visual = trimesh.visual.TextureVisuals(material=material)
    visual.vertex_attributes["color"] = rgba
    mesh = trimesh.Trimesh(scene.vertices, scene.faces, visual=visual, process=False, validate=False)
    tscene = trimesh.Scene()
    tscene.add_geometry(mesh, node_name="avworld_scene", geom_name="avworld_scene", transform=_Z_UP_TO_Y_UP)
    return tscene.export(file_type="glb", include_normals=False)


def glb_topology(data: bytes, where: str = "glb") -> tuple[np.ndarray, np.ndarray]:
    """(float32 vertices, int32 faces) of the single mesh in GLB ``data`` (untransformed)."""
    import trimesh

    try:
        tscene = trimesh.load(io.BytesIO(data), file_type="glb", force="scene", process=False)
        meshes = [g for g in tscene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    except Exception as e:  # trimesh raises many exception types on bad input
        raise CorruptSceneFileError(
            f"{where}: not a readable GLB file ({type(e).__name__}: {e}); re-save the scene"
        ) from e
    if len(meshes) != 1:
        raise CorruptSceneFileError(
            f"{where}: expected exactly one triangle mesh in the GLB, found {len(meshes)}; "
            "files not written by save_scene can be read with avworld.geometry.mesh_import.import_mesh"
        )
    return np.asarray(meshes[0].vertices, dtype=np.float32), np.asarray(meshes[0].faces, dtype=np.int32)


# --------------------------------------------------------------------------- save / load
def save_scene(scene: Scene, path: str | os.PathLike, name: str | None = None) -> Path:
    """Write ``scene`` as ``<name>.glb`` + ``<name>.json``; return the ``.glb`` path.

    ``path`` is a directory (created if needed; files are named ``name``, default
    ``"scene"``) or a path ending in ``.glb`` (the sidecar gets the same stem).
    """
    glb_path, json_path = _pair_paths(path, name)
    glb_path.parent.mkdir(parents=True, exist_ok=True)
    glb = scene_to_glb(scene)
    meta = _jsonable(scene.metadata_dict())
    doc = {
        "format": FORMAT_NAME,
        "schema_version": SCENE_SCHEMA_VERSION,
        "glb_file": glb_path.name,
        "glb_sha256": hashlib.sha256(glb).hexdigest(),
        "content_hash": scene.content_hash,
        "counts": {
            "vertices": len(scene.vertices),
            "faces": scene.num_faces,
            "materials": len(scene.materials),
            "rooms": len(scene.rooms),
            "doors": len(scene.doors),
            "objects": len(scene.objects),
        },
        **meta,
        "arrays": {
            "vertices": encode_array(scene.vertices, "<f8"),
            **{key: encode_array(getattr(scene, key), dt) for key, dt in _FACE_ARRAYS},
        },
    }
    try:
        text = json.dumps(doc, allow_nan=False, indent=1)
    except (TypeError, ValueError) as e:
        raise SceneFormatError(
            f"{json_path}: scene.meta is not JSON-serialisable ({e}); keep meta to plain data"
        ) from e
    _atomic_write(glb_path, glb)
    _atomic_write(json_path, text.encode("utf-8"))
    return glb_path


def _read_sidecar(json_path: Path) -> dict:
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptSceneFileError(
            f"{json_path}: not valid JSON ({e}); the sidecar is damaged, re-save the scene"
        ) from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise NotASceneFileError(
            f"{json_path}: not an avworld scene sidecar (format={found!r}, expected {FORMAT_NAME!r}); "
            "pass the .json written by save_scene"
        )
    version = doc.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        raise UnsupportedSchemaVersionError(
            f"{json_path}: schema_version {version!r} is not supported; this avworld reads schema versions "
            f"{list(SUPPORTED_SCHEMA_VERSIONS)} -- upgrade avworld or re-save the scene with this version"
        )
    return doc


def _reject_constant(token: str):
    raise ValueError(f"non-standard JSON constant {token}")


def load_scene(path: str | os.PathLike) -> Scene:
    """Read a scene written by :func:`save_scene` (directory, ``.glb`` or ``.json`` path)."""
    json_path = _find_sidecar(path)
    doc = _read_sidecar(json_path)
    try:
        glb_name = str(doc["glb_file"])
        glb_sha = str(doc["glb_sha256"])
        counts = {k: int(v) for k, v in doc["counts"].items()}
        arrays = dict(doc["arrays"])
        expected_hash = str(doc["content_hash"])
        materials = tuple(Material.from_dict(m) for m in doc["materials"])
        rooms = Scene.rooms_from_dicts(doc["rooms"])
        doors = Scene.doors_from_dicts(doc["doors"])
        objects = Scene.objects_from_dicts(doc["objects"])
        meta = doc["meta"]
    except (KeyError, TypeError, ValueError, AttributeError, MaterialError) as e:
        raise CorruptSceneFileError(
            f"{json_path}: sidecar field missing or invalid ({type(e).__name__}: {e}); re-save the scene"
        ) from e
    glb_path = json_path.parent / glb_name
    if not glb_path.is_file():
        raise MissingSceneFileError(
            f"{glb_path}: mesh file named by {json_path.name} not found; keep the .glb next to it"
        )
    glb = glb_path.read_bytes()
    if hashlib.sha256(glb).hexdigest() != glb_sha:
        raise SceneChecksumError(
            f"{glb_path}: SHA-256 does not match {json_path.name} (the .glb was modified or replaced); "
            "restore the original file or re-save the scene"
        )
    verts32, faces = glb_topology(glb, str(glb_path))
    vertices = decode_array(arrays.get("vertices", {}), f"{json_path}: vertices")
    per_face = {key: decode_array(arrays.get(key, {}), f"{json_path}: {key}") for key, _ in _FACE_ARRAYS}
    _check_counts(json_path, glb_path, counts, vertices, faces, verts32, per_face, len(materials))
    if not np.array_equal(vertices.astype(np.float32), verts32):
        raise SceneChecksumError(f"{glb_path}: positions disagree with the sidecar's vertices; re-save the scene")
    try:
        scene = Scene(vertices, faces, per_face["face_material"], materials, per_face["face_semantic"],
                      per_face["face_instance"], rooms, doors, objects, meta)
    except SceneError as e:
        raise CorruptSceneFileError(f"{json_path}: decoded data is not a valid scene ({e}); re-save the scene") from e
    if scene.content_hash != expected_hash:
        raise SceneChecksumError(
            f"{json_path}: content hash {scene.content_hash} != stored {expected_hash} "
            "(the sidecar was edited); restore it or re-save the scene"
        )
    return scene


def _check_counts(json_path, glb_path, counts, vertices, faces, verts32, per_face, num_materials) -> None:
    nv, nf = counts.get("vertices"), counts.get("faces")
    checks = [("vertices in sidecar", len(vertices), nv), ("vertices in glb", len(verts32), nv),
              ("faces in glb", len(faces), nf), ("materials", num_materials, counts.get("materials"))]
    checks += [(f"{key} entries", len(arr), nf) for key, arr in per_face.items()]
    bad = [f"{what}: {got} != {want}" for what, got, want in checks if got != want]
    if vertices.ndim != 2 or vertices.shape[1:] != (3,):
        bad.append(f"vertices shape {vertices.shape} is not (V, 3)")
    if bad:
        raise SceneCountMismatchError(
            f"{json_path} / {glb_path.name}: counts do not match ({'; '.join(bad)}); "
            "the two files belong to different scenes -- keep the pair written together"
        )
