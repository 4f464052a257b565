"""The simulator: one scene, one agent, N sound sources -> synchronized sight and sound per step."""
