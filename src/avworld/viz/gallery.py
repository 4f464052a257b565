"""A scene gallery: procedural houses shown top-down and through the agent's eyes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from avworld.geometry.navigation import NavConfig, NavGrid
from avworld.geometry.procedural import HouseConfig, generate_house
from avworld.geometry.raycast import RayCaster
from avworld.geometry.scene import Scene
from avworld.vision.camera import CameraConfig
from avworld.vision.pose_check import check_camera_poses
from avworld.vision.render import Renderer
from avworld.vision.topdown import colorize_semantic
from avworld.viz.colorize import depth_to_rgb
from avworld.viz.html import HtmlReport
from avworld.viz.map_figure import map_figure


@dataclass(frozen=True)
class GalleryConfig:
    houses: tuple[tuple[int, int], ...] = ((0, 1), (1, 3), (2, 5), (3, 6), (4, 8), (5, 12))  # (seed, rooms)
    views_per_house: int = 4
    image_size: int = 256
    seed: int = 0


def informative_poses(scene: Scene, nav: NavGrid, n: int, rng: np.random.Generator, height_m: float = 1.5):
    """``n`` navigable poses, each facing the most open of 36 directions."""
    rc = RayCaster(scene)
    pts = nav.sample_navigable(rng, n)
    yaws = np.linspace(-np.pi, np.pi, 36, endpoint=False)
    dirs = np.stack([np.cos(yaws), np.sin(yaws), np.zeros_like(yaws)], axis=1)
    poses = []
    for p in pts:
        origin = np.array([p[0], p[1], nav.floor_z + height_m])
        d = rc.cast(origin[None], dirs).distance
        d = np.where(np.isfinite(d), d, 0.0)
        poses.append([p[0], p[1], yaws[int(np.argmax(d))]])
    return np.array(poses)


def write_scene_views(scene: Scene, nav: NavGrid, out_dir: Path, stem: str, n_views: int, size: int,
                      rng: np.random.Generator, check_poses_fix: str | None = None
                      ) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Top-down map plus ``n_views`` RGB / depth / semantic views; returns (figures, poses).

    The map is written first. With ``check_poses_fix`` (the fix to name), a view pose whose
    camera is inside a solid or outside the scene raises
    :class:`~avworld.vision.pose_check.CameraPoseError` before anything is rendered.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(map_figure(scene, nav)).save(out_dir / f"{stem}_topdown.png")
    figs = [(f"{stem}_topdown.png", "top-down map: navigable area shaded, axes and scale bar in metres")]
    poses = informative_poses(scene, nav, n_views, rng)
    cam = CameraConfig(width=size, height=size)
    if check_poses_fix is not None:
        check_camera_poses(scene, poses, cam.height_m, labels=[f"view {k}" for k in range(len(poses))],
                           fix=check_poses_fix)
    views = Renderer(scene, cam).render_batch(poses)
    for k, pose in enumerate(poses):
        depth = depth_to_rgb(views["depth"][k])
        strip = np.concatenate([views["rgb"][k], depth, colorize_semantic(views["semantic"][k])], axis=1)
        name = f"{stem}_view{k}.png"
        Image.fromarray(strip).save(out_dir / name)
        caption = f"pose x={pose[0]:.2f} y={pose[1]:.2f} yaw={np.degrees(pose[2]):.0f}°: rgb | depth | semantic"
        figs.append((name, caption))
    return figs, poses


def render_gallery(out_dir: str | Path, config: GalleryConfig = GalleryConfig(),  # noqa: B008
                   progress: Callable[[str], None] | None = None) -> Path:
    """Generate the houses of ``config`` and write ``index.html`` with their pictures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = HtmlReport("avworld scene gallery")
    report.paragraph(
        "Procedural houses generated from a seed (same seed, same bytes). Each row: the top-down map "
        "with the navigable area, then egocentric RGB, depth and semantic views at navigable poses."
    )
    rows = []
    for seed, rooms in config.houses:
        t0 = time.perf_counter()
        scene = generate_house(HouseConfig(num_rooms=rooms), seed=seed)
        nav = NavGrid.build(scene, NavConfig())
        t_build = time.perf_counter() - t0
        rng = np.random.default_rng([config.seed, seed])
        figs, _ = write_scene_views(scene, nav, out, f"house{seed}", config.views_per_house, config.image_size, rng)
        report.heading(f"house seed={seed}, {rooms} room(s), hash {scene.content_hash}")
        report.figures(figs[:1])
        report.figures(figs[1:])
        types = ", ".join(r.room_type for r in scene.rooms)
        rows.append([seed, rooms, len(scene.doors), len(scene.objects), scene.num_faces,
                     f"{nav.free.sum() * nav.resolution_m**2:.1f}", f"{t_build * 1e3:.0f}", types])
        if progress:
            progress(f"house seed={seed} ({rooms} rooms)")
    report.heading("summary")
    report.table(["seed", "rooms", "doors", "objects", "faces", "navigable m²", "generate+navgrid ms", "room types"],
                 rows)
    return report.write(out / "index.html")
