"""The original ``ldm`` UNetModel (stable-diffusion-sdkit 2.1.5) on the meta device, and its forward inputs.

The package is Stability's SD 2.x ``ldm`` (which also builds every SD 1.x UNet). It has none of
sgm's SDXL keywords (per-level ``transformer_depth``, ``num_classes: "sequential"``, ...): ``sgm_only``
says which, such a config gets a clear error here, and the family's verify target (``upstream.original``)
builds it as ComfyUI's UNetModel instead (``upstream.comfy``).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import torch

from ...core.errors import UnetvizError
from ...core.inputs import TEXT_TOKENS
from ...core.records import Trace
from ...families.openai.ldm_parts import sgm_keyword

BATCH = 2
"""Batch size of the forward inputs. Not 1: torch's GroupNorm refuses a group holding a single value
(32 channels at 1x1) at batch 1, an artefact the batch-agnostic trace does not model."""

SGM_ONLY = {"spatial_transformer_attn_type": "softmax", "adm_in_channels": None, "use_fairscale_checkpoint": False,
            "offload_to_cpu": False, "transformer_depth_middle": None}
"""sgm's keywords with their defaults: ldm's constructor takes none of them."""


def sgm_only(kwargs: dict[str, Any]) -> str | None:
    """Why this ldm cannot build ``kwargs`` (a keyword only sgm has, set: ``ldm_parts.sgm_keyword``), or None."""
    key = sgm_keyword(kwargs)
    if key in ("transformer_depth", "num_classes"):
        return ("the installed ldm (stable-diffusion-sdkit 2.1.5, SD 1.x/2.x) has no per-level transformer_depth"
                " nor num_classes \"sequential\"/\"timestep\" (sgm's, SDXL)")
    return None if key is None else f"{key} is sgm's; the installed ldm (SD 1.x/2.x) has no such argument"


def _ldm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same network as ldm's constructor arguments, or an error for what this ldm cannot build."""
    reason = sgm_only(kwargs)
    if reason is not None:  # sgm's configs are verified against ComfyUI's UNetModel (upstream.original)
        raise UnetvizError(f"verify: {reason}")
    kw = {k: v for k, v in kwargs.items() if k not in SGM_ONLY}
    depth = kw.get("transformer_depth", 1)
    kw.setdefault("image_size", None)  # required positionally, never read by the network
    # use_fp16 only casts the forward's input (convert_to_fp16 is a dummy here): the modules are the same
    kw["use_fp16"] = False
    context = kw.get("context_dim")
    if isinstance(depth, int) and depth > 1 and isinstance(context, int):
        # this SpatialTransformer takes one context_dim per block (context_dim[d]); SD 1.x's and sgm's
        # give every block the same one, which is what unetviz traces
        kw["context_dim"] = [context] * depth
    return kw


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """``UNetModel(**kwargs)`` on the meta device, its constructor's prints kept off stdout."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ldm.modules.diffusionmodules.openaimodel import UNetModel  # type: ignore[import-untyped]

    kw = _ldm_kwargs(kwargs)
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
        model: torch.nn.Module = UNetModel(**kw)
    return model.eval()


def _transformer_depth(model: torch.nn.Module) -> int:
    depths = [len(list(m.get_submodule("transformer_blocks").children())) for m in model.modules()
              if type(m).__name__ == "SpatialTransformer"]
    return max(depths, default=0)


def context_width(model: torch.nn.Module) -> int | None:
    """The text context's width, as the first cross-attention's ``to_k`` reads it (None: no cross-attention)."""
    for name, m in model.named_modules():
        if name.endswith("attn2.to_k") and isinstance(m, torch.nn.Linear):
            return int(m.in_features)
    return None


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``x``, ``timesteps``, the text ``context`` (77 tokens) and, for a class-conditional model, ``y``.

    A model with transformers deeper than one block gets ``context`` as a list (one per block), the
    form this ldm's ``SpatialTransformer`` indexes; every entry is the same tensor.
    """
    meta = torch.device("meta")
    x = torch.empty(BATCH, trace.in_channels, *trace.in_size, device=meta)
    timesteps = torch.ones(BATCH, dtype=torch.long, device=meta)
    kw: dict[str, Any] = {}
    width = context_width(model)
    if width is not None:
        context = torch.empty(BATCH, TEXT_TOKENS, width, device=meta)
        depth = _transformer_depth(model)
        kw["context"] = [context] * depth if depth > 1 else context
    num_classes = getattr(model, "num_classes", None)
    if num_classes == "continuous":
        kw["y"] = torch.empty(BATCH, 1, device=meta)
    elif num_classes is not None:
        kw["y"] = torch.zeros(BATCH, dtype=torch.long, device=meta)
    return (x, timesteps), kw
