"""The discrete action space of the embodied agent (same ids and order as Habitat)."""

from __future__ import annotations

from enum import IntEnum


class Action(IntEnum):
    """Discrete agent actions.

    ``MOVE_FORWARD`` moves a fixed step along the heading (stopping at obstacles),
    ``TURN_LEFT`` / ``TURN_RIGHT`` rotate in place (left = counter-clockwise, i.e. the
    yaw increases), ``STOP`` ends the episode.
    """

    STOP = 0
    MOVE_FORWARD = 1
    TURN_LEFT = 2
    TURN_RIGHT = 3
