"""diffusers UNet1DModel on the meta device, and its forward inputs: a (B, C, L) signal and a timestep."""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace
from .diffusers import from_config

BATCH = 2
"""As for the U-Nets: batch 2 keeps every GroupNorm group above a single value."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return from_config(cls or "UNet1DModel", kwargs)


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample (B, in_channels, L) and one timestep per sample (a float: the Fourier features take its value)."""
    meta = torch.device("meta")
    sample = torch.empty(BATCH, trace.in_channels, trace.in_size[-1], device=meta)
    timestep = torch.ones(BATCH, device=meta)
    return (sample, timestep), {"return_dict": False}
