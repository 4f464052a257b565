"""Configuration of the procedural house generator."""

from __future__ import annotations

import numbers
from dataclasses import dataclass


class HouseConfigError(ValueError):
    """A :class:`HouseConfig` field is out of range."""


@dataclass(frozen=True)
class HouseConfig:
    """Parameters of :func:`avworld.geometry.procedural.generate_house`.

    Rooms are rectangles from a binary space partition of a rectangular footprint;
    ``room_size_m`` bounds the side lengths the partition aims for (wall centre
    lines). Doors connect the rooms as a random spanning tree plus extra doors with
    probability ``extra_door_prob``. ``furniture_density`` in [0, 1] scales how many
    catalogue items each room gets.

    ``acoustic_damping`` sets how dry the house sounds. Homes get soft furnishings
    (sofas, beds, rugs or carpet, curtains, upholstered chairs, filled bookshelves,
    towels, coats) with published octave-band absorption, and their walls and floors a
    calibrated allowance for the contents not modelled as geometry (see
    :mod:`avworld.geometry.materials`: ``SOFT_MATERIALS``, ``CONTENTS_ABSORPTION``).
    1.0 is a typical furnished home: living rooms and bedrooms around 0.5 s RT60 (T30 at
    500 Hz-1 kHz), kitchens and bathrooms below 1 s. Other values change every soft
    material's absorption ``a`` to ``1 - (1 - a) ** acoustic_damping`` (about
    ``acoustic_damping`` times the soft items' absorption area while it is small) and
    raise the allowance the same way: above 1 a drier, more heavily furnished home, below
    1 a wetter, sparser one (0.5: living rooms ~0.7 s; 2: ~0.35 s). Other materials keep
    their coefficients; with ``furniture_density == 0`` there is no allowance. The knob
    draws no random numbers, so houses of the same seed have the same geometry for every
    value (only the absorption differs). Measured: docs/benchmarks.md, "Acoustics: house
    reverberation times (issue 16)".
    """

    num_rooms: int = 5
    room_size_m: tuple[float, float] = (2.8, 5.5)
    wall_height_m: float = 2.7
    wall_thickness_m: float = 0.15
    door_width_m: float = 0.9
    door_height_m: float = 2.1
    furniture_density: float = 0.6
    extra_door_prob: float = 0.25
    windows: bool = True
    open_plan: bool = False
    outdoor: bool = False
    #: clearance radius (m) kept free around furniture so every room stays walkable
    clearance_radius_m: float = 0.25
    #: soft-furnishing absorption: 1 typical home, < 1 wetter, > 1 drier; in [0.25, 4]
    acoustic_damping: float = 1.0

    def __post_init__(self) -> None:
        def bad(field: str, msg: str):
            raise HouseConfigError(f"HouseConfig.{field}: {msg}")

        if not isinstance(self.num_rooms, int) or not 1 <= self.num_rooms <= 12:
            bad("num_rooms", f"must be an integer in 1..12, got {self.num_rooms!r}")
        lo, hi = (float(v) for v in self.room_size_m)
        object.__setattr__(self, "room_size_m", (lo, hi))
        if not 2.0 <= lo <= hi <= 15.0:
            bad("room_size_m", f"needs 2.0 <= min <= max <= 15.0 metres, got {self.room_size_m}")
        if not 2.2 <= self.wall_height_m <= 6.0:
            bad("wall_height_m", f"must lie in [2.2, 6.0] m, got {self.wall_height_m}")
        if not 0.05 <= self.wall_thickness_m <= 0.5:
            bad("wall_thickness_m", f"must lie in [0.05, 0.5] m, got {self.wall_thickness_m}")
        if not 0.6 <= self.door_width_m <= lo - 0.6:
            bad("door_width_m", f"must lie in [0.6, room_size_m[0] - 0.6] m, got {self.door_width_m}")
        if not 1.8 <= self.door_height_m <= self.wall_height_m - 0.1:
            bad("door_height_m", f"must lie in [1.8, wall_height_m - 0.1] m, got {self.door_height_m}")
        if not 0.0 <= self.furniture_density <= 1.0:
            bad("furniture_density", f"must lie in [0, 1], got {self.furniture_density}")
        if not 0.0 <= self.extra_door_prob <= 1.0:
            bad("extra_door_prob", f"must lie in [0, 1], got {self.extra_door_prob}")
        if not 0.05 <= self.clearance_radius_m <= 0.5:
            bad("clearance_radius_m", f"must lie in [0.05, 0.5] m, got {self.clearance_radius_m}")
        damping = self.acoustic_damping
        if isinstance(damping, bool) or not isinstance(damping, numbers.Real) or not 0.25 <= damping <= 4.0:
            bad("acoustic_damping", f"must be a number in [0.25, 4.0] (1.0 = typical furnished home, "
                                    f"< 1 wetter, > 1 drier), got {damping!r}")
        object.__setattr__(self, "acoustic_damping", float(damping))
