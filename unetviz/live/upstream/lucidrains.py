"""``denoising_diffusion_pytorch.Unet`` (2.3.4) on the meta device, and its forward inputs."""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace

TUPLE_KEYS = ("dim_mults", "full_attn", "attn_heads", "attn_dim_head")
"""JSON has no tuples: a list under these keys stands for the tuple upstream's ``cast_tuple`` expects."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    from denoising_diffusion_pytorch import Unet

    kw = {k: tuple(v) if k in TUPLE_KEYS and isinstance(v, list) else v for k, v in kwargs.items()}
    with torch.device("meta"):
        model: torch.nn.Module = Unet(**kw)
    return model.eval()


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """x, a time per batch item and, for a self-conditioned model, ``x_self_cond`` (an input too)."""
    meta = torch.device("meta")
    x = torch.empty(1, trace.in_channels, *trace.in_size, device=meta)
    time = torch.ones(1, device=meta)
    kw: dict[str, Any] = {}
    if getattr(model, "self_condition", False):
        kw["x_self_cond"] = torch.empty_like(x)
    return (x, time), kw
