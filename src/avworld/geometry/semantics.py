"""Semantic classes shared by scenes, the semantic renderer and top-down maps."""

from __future__ import annotations

#: Semantic class names; the index is the semantic id written per face and per pixel.
#: Id 0 means "nothing" (a ray that hit no geometry).
SEMANTIC_CLASSES: tuple[str, ...] = (
    "void",
    "wall",
    "floor",
    "ceiling",
    "door_frame",
    "window",
    "bed",
    "nightstand",
    "wardrobe",
    "sofa",
    "armchair",
    "coffee_table",
    "tv_stand",
    "bookshelf",
    "table",
    "chair",
    "desk",
    "counter",
    "fridge",
    "stove",
    "toilet",
    "sink",
    "bathtub",
    "plant",
    "cabinet",
    "curtain",
    "object",
)

SEMANTIC_ID: dict[str, int] = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}

#: Classes that belong to the building shell rather than to furniture.
STRUCTURAL_CLASSES = frozenset({"void", "wall", "floor", "ceiling", "door_frame", "window", "curtain"})


def semantic_id(name: str) -> int:
    """Semantic id of a class name (``KeyError`` lists the known names)."""
    try:
        return SEMANTIC_ID[name]
    except KeyError:
        raise KeyError(f"unknown semantic class {name!r}; known: {list(SEMANTIC_CLASSES)}") from None
