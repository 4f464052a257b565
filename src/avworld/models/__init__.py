"""Torch models (no simulator imports): shared encoders and the navigation agents in :mod:`avworld.models.nav`."""
