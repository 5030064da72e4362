"""diffusers ControlNetModel on the meta device, and the inputs a ControlNet pipeline feeds it."""

from __future__ import annotations

from typing import Any

import torch

from ...core.inputs import TEXT_TOKENS
from ...core.records import Trace
from ...families.diffusers.controlnet import HINT_SCALE
from ...families.diffusers.embed import text_time_inputs
from .diffusers import from_config

BATCH = 2
"""As for the U-Nets: at batch 1 GroupNorm refuses a group holding a single value on a 1x1 map."""


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return from_config(cls or "ControlNetModel", kwargs)


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample, timestep, the text context, the hint at 8x the latent, labels and SDXL's added embeds."""
    cfg: Any = model.config  # a diffusers FrozenDict; torch types it as Tensor | Module
    meta = torch.device("meta")
    b = BATCH
    sample = torch.empty(b, trace.in_channels, *trace.in_size, device=meta)
    timestep = torch.ones(b, dtype=torch.long, device=meta)
    hint = torch.empty(b, cfg.conditioning_channels, *(HINT_SCALE * d for d in trace.in_size), device=meta)
    kw: dict[str, Any] = {"encoder_hidden_states": torch.empty(b, TEXT_TOKENS, cfg.cross_attention_dim, device=meta),
                          "controlnet_cond": hint, "return_dict": False}
    if getattr(model, "class_embedding", None) is not None:
        kind = cfg.get("class_embed_type")
        if kind == "projection":
            kw["class_labels"] = torch.empty(b, cfg.projection_class_embeddings_input_dim, device=meta)
        elif kind == "identity":
            kw["class_labels"] = torch.empty(b, 4 * cfg.block_out_channels[0], device=meta)
        else:
            kw["class_labels"] = torch.zeros(b, dtype=torch.long, device=meta)
    if cfg.get("addition_embed_type") == "text_time":
        text, n_ids = text_time_inputs(cfg.projection_class_embeddings_input_dim, cfg.addition_time_embed_dim)
        kw["added_cond_kwargs"] = {"text_embeds": torch.empty(b, text, device=meta),
                                   "time_ids": torch.empty(b, n_ids, device=meta)}
    return (sample, timestep), kw
