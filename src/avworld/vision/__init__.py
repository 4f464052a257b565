"""Pinhole camera rendering (RGB, depth, semantics) and top-down maps."""
