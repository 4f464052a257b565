"""Training: recurrent PPO / DD-PPO (:mod:`avworld.train.ppo`), configs and presets, checkpoints, logs, CLI.

Importing the package is cheap (no torch); the submodules import torch.
"""
