"""guided-diffusion's ``UNetModel`` on the meta device, and its forward inputs."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from ...core.records import Trace
from ...families.openai.guided import attention_rates, channel_mult

BATCH = 2
"""Batch size of the forward inputs. Not 1: with one sample, ``F.group_norm`` refuses a GroupNorm
that sees a single value per group (32 channels at 1x1), a batch artefact unetviz does not trace."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """``UNetModel(**kwargs)``, with create_model's string / empty forms turned into what it passes."""
    with warnings.catch_warnings():  # its nn.py uses torch.cuda.amp.custom_fwd, deprecated in torch 2.4
        warnings.simplefilter("ignore", FutureWarning)
        from guided_diffusion.unet import UNetModel

    kw = dict(kwargs)
    size = kw.get("image_size")
    if kw.get("channel_mult") in ("", []) or isinstance(kw.get("channel_mult"), str):
        kw["channel_mult"] = tuple(channel_mult(kw["channel_mult"], size))
    if isinstance(kw.get("attention_resolutions"), str):
        kw["attention_resolutions"] = tuple(attention_rates(kw["attention_resolutions"], size))
    with torch.device("meta"):
        model: Any = UNetModel(**kw)
    if kw.get("use_fp16"):
        model.convert_to_fp16()  # what guided-diffusion's scripts do right after create_model
    out: torch.nn.Module = model.eval()
    return out


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``x``, ``timesteps`` and, for a class-conditional model, the labels ``y``."""
    meta = torch.device("meta")
    x = torch.empty(BATCH, trace.in_channels, *trace.in_size, device=meta)
    timesteps = torch.ones(BATCH, dtype=torch.long, device=meta)
    kw: dict[str, Any] = {}
    if getattr(model, "num_classes", None) is not None:
        kw["y"] = torch.zeros(BATCH, dtype=torch.long, device=meta)
    return (x, timesteps), kw
