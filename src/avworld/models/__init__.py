"""Torch models (no simulator imports): shared encoders, the navigation agents in :mod:`avworld.models.nav`
and the tokenizers in :mod:`avworld.models.tokenizers` (the binaural audio codec so far)."""
