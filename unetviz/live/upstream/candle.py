"""candle's UNet2DConditionModel, as the diffusers model it ports (same modules, same safetensors).

candle is Rust, so there is nothing of it to run from Python; its config is translated with
``unetviz.families.candle.from_config`` and diffusers' ``UNet2DConditionModel`` is built from it.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace
from ...families.candle import from_config
from . import diffusers


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """diffusers' UNet2DConditionModel with the translated candle config, on the meta device."""
    return diffusers.build("UNet2DConditionModel", from_config(kwargs))


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample, timestep and a 77-token text context of ``cross_attention_dim`` channels."""
    return diffusers.inputs(model, trace)
