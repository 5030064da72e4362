"""diffusers UNetMotionModel (AnimateDiff) on the meta device, and the inputs an AnimateDiff pipeline feeds it.

The sample is ``(B, C, F, H, W)``; the forward folds the frames into the batch, so the observer reads the
blocks' ``(B*F, C, H, W)`` tensors per frame (``OBSERVE``).
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.inputs import TEXT_TOKENS
from ...core.records import Trace
from ...families.diffusers.embed import text_time_inputs
from ...families.diffusers.motion import ANIMATEDIFF_FRAMES
from .unet3d import build_video

BATCH = 2
"""As for the U-Nets: batch 2 keeps every GroupNorm group above a single value."""
OBSERVE: dict[str, Any] = {"frames_axis": 2}
"""How ``observe`` reads this model: its sample and output are (B, C, F, H, W), its blocks fold F into B."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return build_video(cls or "UNetMotionModel", kwargs)


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample (B, C, F, H, W), a timestep, the text context (77 tokens of the first block's width) repeated per
    frame, (B*F, 77, width), as AnimateDiffPipeline passes ``prompt_embeds.repeat_interleave(num_frames, dim=0)``
    for the spatial attentions' B*F rows; and for an SDXL-style ``text_time`` model its text embeds and time ids."""
    cfg: Any = model.config  # a diffusers FrozenDict; torch types it as Tensor | Module
    meta = torch.device("meta")
    size = tuple(trace.in_size)
    frames, hw = (size[0], size[1:]) if len(size) == 3 else (ANIMATEDIFF_FRAMES, size[-2:])
    cross = cfg.cross_attention_dim
    width = cross[0] if isinstance(cross, (list, tuple)) else cross
    sample = torch.empty(BATCH, trace.in_channels, frames, *hw, device=meta)
    kw: dict[str, Any] = {"encoder_hidden_states": torch.empty(BATCH * frames, TEXT_TOKENS, width, device=meta),
                          "return_dict": False}
    if cfg.get("time_cond_proj_dim") is not None:
        kw["timestep_cond"] = torch.empty(BATCH, cfg.time_cond_proj_dim, device=meta)
    if cfg.get("addition_embed_type") == "text_time":
        text, n_ids = text_time_inputs(cfg.projection_class_embeddings_input_dim, cfg.addition_time_embed_dim)
        kw["added_cond_kwargs"] = {"text_embeds": torch.empty(BATCH, text, device=meta),
                                   "time_ids": torch.empty(BATCH, n_ids, device=meta)}
    return (sample, torch.ones(BATCH, dtype=torch.long, device=meta)), kw
