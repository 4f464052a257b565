"""avworld: embodied audio-visual AI worlds that agents see and hear."""

__version__ = "0.1.0"
