"""Scenes, procedural houses, mesh import, ray casting and navigation (numpy only, no torch)."""
