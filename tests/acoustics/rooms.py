"""Small test rooms for the acoustic engine."""

from __future__ import annotations

from avworld.geometry.builder import SceneBuilder, extruded_room
from avworld.geometry.materials import Material


def uniform_material(absorption: float, scattering: float = 0.0, tl_db: float = 40.0, name: str | None = None):
    return Material(name or f"uniform_{absorption}_{scattering}", (0.7, 0.7, 0.7), (absorption,) * 7,
                    (scattering,) * 7, (tl_db,) * 7)


def shoebox(size=(6.0, 4.0, 3.0), absorption: float = 0.2, scattering: float = 0.0, t: float = 0.1):
    """Closed box room, interior [0, sx] x [0, sy] x [0, sz], one uniform material."""
    b = SceneBuilder()
    _shell(b, size, uniform_material(absorption, scattering), t)
    return b.build()


def _shell(b: SceneBuilder, size, m, t: float) -> None:
    """Floor, ceiling and four walls of thickness ``t`` around [0, sx] x [0, sy] x [0, sz]."""
    sx, sy, sz = size
    b.add_box((-t, -t, -t), (sx + t, sy + t, 0), m, "floor")
    b.add_box((-t, -t, sz), (sx + t, sy + t, sz + t), m, "ceiling")
    b.add_box((-t, -t, 0), (0, sy + t, sz), m, "wall")
    b.add_box((sx, -t, 0), (sx + t, sy + t, sz), m, "wall")
    b.add_box((0, -t, 0), (sx, 0, sz), m, "wall")
    b.add_box((0, sy, 0), (sx, sy + t, sz), m, "wall")


def two_rooms(door_open: bool = True, absorption: float = 0.2, wall_tl_db: float = 35.0, door_tl_db: float = 20.0):
    """10 x 4 x 3 m split at x in [5, 5.15] by a wall with a door (y in [0.5, 1.5], z < 2.1).

    With ``door_open=False`` a door leaf (own material, lower transmission loss) fills it.
    """
    m = uniform_material(absorption, 0.2, name="room")
    wall = uniform_material(0.05, 0.1, wall_tl_db, name="partition")
    door = uniform_material(0.1, 0.1, door_tl_db, name="door")
    sy, sz = 4.0, 3.0
    b = SceneBuilder()
    _shell(b, (10.0, sy, sz), m, 0.1)
    x0, x1 = 5.0, 5.15
    b.add_box((x0, 0, 0), (x1, 0.5, sz), wall, "wall")
    b.add_box((x0, 1.5, 0), (x1, sy, sz), wall, "wall")
    b.add_box((x0, 0.5, 2.1), (x1, 1.5, sz), wall, "wall")
    if not door_open:
        b.add_box((x0 + 0.05, 0.5, 0), (x1 - 0.05, 1.5, 2.1), door, "door_frame")
    return b.build()


def extruded_polygon(corners, height: float, absorption: float, scattering: float, t: float = 0.1):
    """Closed room whose floor plan is the counter-clockwise polygon ``corners`` (axis-aligned edges)."""
    return extruded_room(corners, height, uniform_material(absorption, scattering), thickness=t)
