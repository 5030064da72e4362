"""diffusers UNetSpatioTemporalConditionModel (Stable Video Diffusion) on the meta device, and the inputs an SVD
pipeline feeds it: a (B, F, C, H, W) sample, one CLIP image token and three added time ids."""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace
from ...families.diffusers.svd import IMAGE_TOKENS, TIME_IDS
from .unet3d import build_video

BATCH = 2
"""As for the U-Nets: batch 2 keeps every GroupNorm group above a single value."""
OBSERVE: dict[str, Any] = {"frames_axis": 1}
"""How ``observe`` reads this model: its sample and output are (B, F, C, H, W), its blocks fold F into B."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return build_video(cls or "UNetSpatioTemporalConditionModel", kwargs)


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample (B, F, C, H, W), a timestep, the image embedding (B, 1, width of the first block's cross-attention)
    and the added time ids (B, 3)."""
    cfg: Any = model.config  # a diffusers FrozenDict; torch types it as Tensor | Module
    meta = torch.device("meta")
    size = tuple(trace.in_size)
    frames, hw = (size[0], size[1:]) if len(size) == 3 else (int(cfg.num_frames), size[-2:])
    cross = cfg.cross_attention_dim
    width = cross[0] if isinstance(cross, (list, tuple)) else cross
    sample = torch.empty(BATCH, frames, trace.in_channels, *hw, device=meta)
    kw: dict[str, Any] = {"encoder_hidden_states": torch.empty(BATCH, IMAGE_TOKENS, width, device=meta),
                          "added_time_ids": torch.empty(BATCH, TIME_IDS, device=meta), "return_dict": False}
    return (sample, torch.ones(BATCH, device=meta)), kw
