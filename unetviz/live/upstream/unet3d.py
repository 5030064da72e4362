"""diffusers UNet3DConditionModel on the meta device, and the inputs a text-to-video pipeline feeds it.

The sample is ``(B, C, F, H, W)``; the forward folds the frames into the batch, so the observer reads the
blocks' ``(B*F, C, H, W)`` tensors per frame (``OBSERVE``).
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.inputs import TEXT_TOKENS
from ...core.records import Trace
from ...families.diffusers.unet3d import MODELSCOPE_FRAMES
from .diffusers import from_config

BATCH = 2
"""As for the U-Nets: batch 2 keeps every GroupNorm group above a single value."""
UNETVIZ_KEYS = ("frames",)
"""Config keys of unetviz's own (the frame count to trace at): no constructor argument, left out of the build."""
OBSERVE: dict[str, Any] = {"frames_axis": 2}
"""How ``observe`` reads this model: its sample and output are (B, C, F, H, W), its blocks fold F into B."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return build_video(cls or "UNet3DConditionModel", kwargs)


def build_video(cls: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    """A diffusers video U-Net on meta, without unetviz's own ``frames`` key. Moved to meta once more:
    SVD's AlphaBlender makes its ``mix_factor`` with the legacy ``torch.Tensor([alpha])``, which ignores
    the device context, and the forward's ``torch.where`` would then mix devices."""
    kwargs = {k: v for k, v in kwargs.items() if k not in UNETVIZ_KEYS}
    return from_config(cls, kwargs).to(torch.device("meta"))


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample (B, C, F, H, W), a timestep and the text context (77 tokens of cross_attention_dim)."""
    cfg: Any = model.config  # a diffusers FrozenDict; torch types it as Tensor | Module
    meta = torch.device("meta")
    size = tuple(trace.in_size)
    frames, hw = (size[0], size[1:]) if len(size) == 3 else (MODELSCOPE_FRAMES, size[-2:])
    sample = torch.empty(BATCH, trace.in_channels, frames, *hw, device=meta)
    kw: dict[str, Any] = {"encoder_hidden_states": torch.empty(BATCH, TEXT_TOKENS, cfg.cross_attention_dim,
                                                               device=meta), "return_dict": False}
    if cfg.get("time_cond_proj_dim") is not None:
        kw["timestep_cond"] = torch.empty(BATCH, cfg.time_cond_proj_dim, device=meta)
    return (sample, torch.ones(BATCH, dtype=torch.long, device=meta)), kw
