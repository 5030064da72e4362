"""Weights files: safetensors headers (never the data), what a checkpoint is, the original (ldm/sgm) naming."""
