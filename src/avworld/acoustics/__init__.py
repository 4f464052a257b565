"""Physically based acoustics: image sources, ray-traced tails, HRTFs, binaural rendering (numpy only)."""
