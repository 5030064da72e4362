"""Family recognition of a live module: which upstream family it is, and its unetviz config.

A diffusers ``UNet2DModel``/``UNet2DConditionModel`` (and the other diffusers classes unetviz builds) or a
guided-diffusion ``UNetModel`` keeps its constructor arguments, so it can be traced symbolically from
them; lucidrains' ``Unet`` keeps too few and is observed with its family's inputs instead.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...families import Family, recognise


def family_of(module: nn.Module) -> Family | None:
    """The registry record of the upstream class ``module`` is an instance of, by its module and name."""
    return recognise(type(module).__module__, type(module).__name__)


def config_of(module: nn.Module) -> dict[str, Any] | None:
    """The unetviz config dict of a recognised upstream module, read from its own attributes."""
    record = family_of(module)
    family = None if record is None else record.family
    if family == "diffusers":
        config: Any = module.config  # diffusers' FrozenDict of the constructor arguments
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}
        return {"_class_name": type(module).__name__, **cfg}
    if family == "guided":
        return _guided_config(module)
    return None  # lucidrains' Unet keeps too few of its constructor arguments: observed instead


def _guided_config(m: Any) -> dict[str, Any]:
    ins = list(m.input_blocks)
    res = next((b[0] for b in ins if type(b[0]).__name__ == "ResBlock"), None)
    attn = next((layer for b in ins for layer in b if type(layer).__name__ == "AttentionBlock"), None)
    cfg: dict[str, Any] = {
        "family": "guided", "image_size": m.image_size, "in_channels": m.in_channels,
        "model_channels": m.model_channels, "out_channels": m.out_channels, "num_res_blocks": m.num_res_blocks,
        "attention_resolutions": sorted(m.attention_resolutions), "dropout": m.dropout,
        "channel_mult": list(m.channel_mult), "conv_resample": m.conv_resample, "num_classes": m.num_classes,
        "use_fp16": m.dtype == torch.float16, "num_heads": m.num_heads, "num_head_channels": m.num_head_channels,
        "num_heads_upsample": m.num_heads_upsample,
        "use_scale_shift_norm": bool(getattr(res, "use_scale_shift_norm", False)),
        "resblock_updown": any(type(b[0]).__name__ == "ResBlock" and getattr(b[0], "updown", False) for b in ins),
    }
    if attn is not None:
        cfg["use_new_attention_order"] = type(attn.attention).__name__ == "QKVAttention"
    return cfg
