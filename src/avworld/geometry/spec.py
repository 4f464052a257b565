"""Scene specs: one string that names a scene, for command lines, episode files and datasets.

``house:SEED[:ROOMS]`` is a procedural house (:func:`~avworld.geometry.procedural.generate_house`
with ``HouseConfig(num_rooms=ROOMS)``); anything else is a path to a saved avworld scene
(directory, ``.glb`` with its ``.json`` sidecar, or the ``.json``) or a user mesh
(``.ply/.obj/.glb/.gltf``, imported with ``up_axis``; ``"auto"``: y-up for glTF, z-up
otherwise). A saved avworld scene is recognised by its ``.json`` sidecar and loaded
exactly (z-up, as saved); a ``.glb`` without its sidecar is imported as a glTF mesh (y-up).
"""

from __future__ import annotations

from pathlib import Path

from avworld.geometry.scene import Scene


class SceneSpecError(ValueError):
    """A scene spec names no loadable scene."""


def house_spec(seed: int, rooms: int) -> str:
    """The spec string of procedural house ``seed`` with ``rooms`` rooms."""
    return f"house:{int(seed)}:{int(rooms)}"


def load_scene_spec(spec: str, up_axis: str = "auto") -> Scene:
    """A :class:`Scene` from ``house:SEED[:ROOMS]``, a saved scene, or a mesh file to import."""
    from avworld.geometry.io import load_scene
    from avworld.geometry.mesh_import import MeshImportConfig, import_mesh
    from avworld.geometry.procedural import HouseConfig, generate_house

    spec = str(spec)
    if spec.startswith("house:"):
        parts = spec.split(":")[1:]
        try:
            seed = int(parts[0])
            rooms = int(parts[1]) if len(parts) > 1 else HouseConfig().num_rooms
            if len(parts) > 2:
                raise ValueError
        except (ValueError, IndexError):
            raise SceneSpecError(f"scene {spec!r}: use house:SEED or house:SEED:ROOMS, e.g. house:3:6") from None
        return generate_house(HouseConfig(num_rooms=rooms), seed=seed)
    path = Path(spec)
    if not path.exists():
        raise SceneSpecError(f"scene {spec!r} does not exist; give a saved scene, a mesh file or house:SEED[:ROOMS]")
    if path.is_dir() or path.suffix == ".json":
        return load_scene(path)
    if path.suffix == ".glb" and path.with_suffix(".json").exists():
        return load_scene(path)
    return import_mesh(path, MeshImportConfig(up_axis=up_axis))
