"""diffusers UNet2DModel / UNet2DConditionModel on the meta device, and their forward inputs."""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace
from ...families.diffusers.added import hint_size, image_embeds_width
from ...families.diffusers.embed import pipeline_context, text_time_inputs
from ...families.diffusers.gligen import BOXES, GATED

BATCH = 2


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    return from_config(cls or "UNet2DConditionModel", kwargs)


def from_config(cls: str, config: dict[str, Any]) -> torch.nn.Module:
    """``diffusers.<cls>.from_config(config)`` on the meta device: a config file is loaded that way, so keys
    the constructor does not take (a published config's ``center_input_sample`` for UNet3DConditionModel, EMA
    bookkeeping, another version's options) are dropped, as ``unetviz table`` drops them, not a TypeError.
    diffusers' warning that lists them is silenced: the trace's ``warnings`` already name them."""
    import diffusers
    from diffusers.utils import logging

    model_cls = getattr(diffusers, cls)
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with torch.device("meta"):
            model: torch.nn.Module = model_cls.from_config(dict(config))
    finally:
        logging.set_verbosity(level)
    return model.eval()


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """sample, timestep, and for the conditional model the text context and SDXL's added embeds.

    Batch 2: at batch 1 torch's GroupNorm refuses a group holding a single value (a 1x1 map with one
    channel per group), an artefact of the batch size that the batch-agnostic trace does not model.
    """
    cfg: Any = model.config  # a diffusers FrozenDict; torch types it as Tensor | Module
    meta = torch.device("meta")
    b = BATCH
    sample = torch.empty(b, trace.in_channels, *trace.in_size, device=meta)
    timestep = torch.ones(b, dtype=torch.long, device=meta)
    kw: dict[str, Any] = {"return_dict": False}
    # only a model that has a class_embedding takes labels (UNet2DModel raises for unused ones)
    if getattr(model, "class_embedding", None) is not None:
        kw["class_labels"] = _class_labels(model, cfg, meta, b)
    if type(model).__name__ == "UNet2DModel":
        return (sample, timestep), kw
    # the context the trace was fed (what a pipeline passes, or --context; None if none); a live module's
    # shell trace has none of its own: then what a pipeline passes
    context = pipeline_context(cfg.cross_attention_dim, cfg.encoder_hid_dim, cfg.addition_embed_type,
                               cfg.get("dual_cross_attention")) if trace.family == "observed" else trace.context
    kw["encoder_hidden_states"] = None if context is None else torch.empty(b, *context, device=meta)
    if cfg.get("time_cond_proj_dim") is not None:
        kw["timestep_cond"] = torch.empty(b, cfg.time_cond_proj_dim, device=meta)
    kw["added_cond_kwargs"] = _added(cfg, trace, meta, b)
    if cfg.get("attention_type") in GATED and getattr(model, "position_net", None) is not None:
        kw["cross_attention_kwargs"] = {"gligen": _gligen(cfg, meta, b)}
    return (sample, timestep), kw


def _gligen(cfg: Any, meta: torch.device, b: int) -> dict[str, torch.Tensor]:
    """The grounding inputs StableDiffusionGLIGEN(TextImage)Pipeline passes: 30 boxes, their masks and embeds."""
    n, width = BOXES, cfg.cross_attention_dim
    kw = {"boxes": torch.empty(b, n, 4, device=meta), "masks": torch.empty(b, n, device=meta)}
    if cfg.attention_type == "gated":
        return {**kw, "positive_embeddings": torch.empty(b, n, width, device=meta)}
    return {**kw, "phrases_masks": torch.empty(b, n, device=meta), "image_masks": torch.empty(b, n, device=meta),
            "phrases_embeddings": torch.empty(b, n, width, device=meta),
            "image_embeddings": torch.empty(b, n, width, device=meta)}


def _added(cfg: Any, trace: Trace, meta: torch.device, b: int) -> dict[str, torch.Tensor]:
    """``added_cond_kwargs`` as the pipelines pass them: SDXL's text embeds and time ids, Kandinsky's image
    (and pooled text) embeds, the ControlNet-style hint image of Kandinsky 2.2."""
    add, hid_type = cfg.get("addition_embed_type"), cfg.get("encoder_hid_dim_type")
    if add == "text_time":
        text, n_ids = text_time_inputs(cfg.projection_class_embeddings_input_dim, cfg.addition_time_embed_dim)
        return {"text_embeds": torch.empty(b, text, device=meta), "time_ids": torch.empty(b, n_ids, device=meta)}
    kw: dict[str, torch.Tensor] = {}
    image = image_embeds_width(hid_type, add, cfg.encoder_hid_dim, cfg.cross_attention_dim)
    if image:
        kw["image_embeds"] = torch.empty(b, image, device=meta)
    if add == "text_image":
        kw["text_embeds"] = torch.empty(b, cfg.cross_attention_dim, device=meta)
    if add == "image_hint":
        kw["hint"] = torch.empty(b, 3, *hint_size(trace.in_size), device=meta)
    return kw


def _class_labels(model: torch.nn.Module, cfg: Any, meta: torch.device, b: int) -> torch.Tensor:
    kind = cfg.get("class_embed_type")
    if kind in ("projection", "simple_projection"):
        return torch.empty(b, cfg.projection_class_embeddings_input_dim, device=meta)
    if kind == "identity":
        embedding: Any = model.time_embedding
        # the time embedding's width, whatever decided it (fourier or positional, time_embedding_dim)
        return torch.empty(b, int(embedding.linear_1.out_features), device=meta)
    return torch.zeros(b, dtype=torch.long, device=meta)
