"""A ControlNet read from its shapes, in either naming: diffusers' ``ControlNetModel`` keys
(``controlnet_cond_embedding``, ``controlnet_down_blocks.N``) or the original cldm ones (``input_hint_block``,
``zero_convs.N.0``, ``middle_block_out.0``; under ``control_model.`` in full files, bare in ControlNet 1.1's),
rebuilt as the diffusers config unetviz traces (``table``, ``table --pair``).

``EXTRA_MODULES`` pairs the modules a ControlNet has beside the U-Net encoder it copies: diffusers'
conversion (``convert_controlnet_checkpoint`` in diffusers' single_file_utils) renames exactly these; the
encoder's own names are the U-Net's, paired by ``keymaps.twins``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..core.records import Shape
from .shapes import count_distinct, encoder_levels

UNION_KEYS = ("task_embedding", "control_add_embedding", "transformer_layes", "spatial_ch_projs", "control_type_proj")
"""Modules only ControlNet-union models have (diffusers' ``ControlNetUnionModel``, xinsir's union ControlNets)."""


def hint_convs(shapes: Mapping[str, Shape], naming: str) -> list[str]:
    """The conditioning embedding's convs in order, as module paths (the last one the zero conv out)."""
    if naming == "original":
        idx = sorted(int(m.group(1)) for k in shapes if (m := re.match(r"input_hint_block\.(\d+)\.weight$", k)))
        return [f"input_hint_block.{i}" for i in idx]
    n = count_distinct(set(shapes), r"controlnet_cond_embedding\.blocks\.(\d+)\.")
    return ["controlnet_cond_embedding.conv_in", *(f"controlnet_cond_embedding.blocks.{i}" for i in range(n)),
            "controlnet_cond_embedding.conv_out"]


def extra_modules(hint_blocks: int, zero_convs: int) -> dict[str, str]:
    """diffusers module -> original module for a ControlNet's own modules: the hint embedding (cldm's
    ``input_hint_block`` is a Sequential of convs with a SiLU between each, so its convs sit at even indices),
    the zero convs and the mid block's zero conv."""
    blocks = [f"controlnet_cond_embedding.blocks.{i}" for i in range(hint_blocks)]
    convs = ["controlnet_cond_embedding.conv_in", *blocks, "controlnet_cond_embedding.conv_out"]
    pairs = {c: f"input_hint_block.{2 * i}" for i, c in enumerate(convs)}
    pairs.update({f"controlnet_down_blocks.{i}": f"zero_convs.{i}.0" for i in range(zero_convs)})
    pairs["controlnet_mid_block"] = "middle_block_out.0"
    return pairs


def unet_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The UNet2DConditionModel whose encoder a ControlNet config copies (its decoder mirrored), for its
    names in both namings."""
    copied = ("in_channels", "block_out_channels", "layers_per_block", "down_block_types", "cross_attention_dim",
              "transformer_layers_per_block", "attention_head_dim", "use_linear_projection", "addition_embed_type",
              "projection_class_embeddings_input_dim", "addition_time_embed_dim", "class_embed_type")
    out = {k: config[k] for k in copied if k in config}
    down = list(config.get("down_block_types", []))
    up = ["CrossAttnUpBlock2D" if d == "CrossAttnDownBlock2D" else "UpBlock2D" for d in reversed(down)]
    return {"_class_name": "UNet2DConditionModel", **out, "out_channels": config.get("in_channels", 4),
            "up_block_types": up}


def controlnet_config(shapes: Mapping[str, Shape], naming: str) -> dict[str, Any]:
    """The diffusers ``ControlNetModel`` config these (prefix-free) shapes pin down; what they cannot show
    (heads, ``addition_time_embed_dim``) is left to ``fill``."""
    convs = hint_convs(shapes, naming)
    cond = [shapes[f"{c}.weight"] for c in convs]
    outs = [cond[0][0], *(cond[i][0] for i in range(2, len(cond) - 1, 2))]
    if naming == "original":
        enc = _original_encoder(shapes)
    else:
        enc = _diffusers_encoder(shapes)
    config: dict[str, Any] = {"_class_name": "ControlNetModel", **enc, "conditioning_channels": cond[0][1],
                              "conditioning_embedding_out_channels": outs}
    return config


def _original_encoder(shapes: Mapping[str, Shape]) -> dict[str, Any]:
    mc = shapes["input_blocks.0.0.weight"][0]
    levels = encoder_levels(dict(shapes), mc)
    depths = [max(lv["depths"], default=0) for lv in levels]
    enc = _encoder_common(shapes, shapes["input_blocks.0.0.weight"][1], [mc * lv["mult"] for lv in levels],
                          len(levels[0]["depths"]), depths)
    adm = shapes.get("label_emb.0.0.weight")
    return {**enc, **({} if adm is None else _text_time(adm[1]))}


def _diffusers_encoder(shapes: Mapping[str, Shape]) -> dict[str, Any]:
    keys = set(shapes)
    n = count_distinct(keys, r"down_blocks\.(\d+)\.")
    widths = [shapes[f"down_blocks.{i}.resnets.0.conv2.weight"][0] for i in range(n)]
    depths = [count_distinct(keys, rf"down_blocks\.{i}\.attentions\.0\.transformer_blocks\.(\d+)\.")
              for i in range(n)]
    enc = _encoder_common(shapes, shapes["conv_in.weight"][1], widths,
                          count_distinct(keys, r"down_blocks\.0\.resnets\.(\d+)\."), depths)
    adm = shapes.get("add_embedding.linear_1.weight")
    return {**enc, **({} if adm is None else _text_time(adm[1]))}


def _encoder_common(shapes: Mapping[str, Shape], in_channels: int, widths: list[int], per_level: int,
                    depths: list[int]) -> dict[str, Any]:
    to_k = next((s for k, s in shapes.items() if k.endswith("attn2.to_k.weight")), None)
    proj_in = next((s for k, s in shapes.items() if k.endswith(".proj_in.weight")), None)
    used = [d or 1 for d in depths]
    out: dict[str, Any] = {
        "in_channels": in_channels, "block_out_channels": widths, "layers_per_block": per_level,
        "down_block_types": ["CrossAttnDownBlock2D" if d else "DownBlock2D" for d in depths],
        "transformer_layers_per_block": used if len(set(used)) > 1 else used[0],
        "use_linear_projection": proj_in is not None and len(proj_in) == 2,
    }
    if to_k is not None:
        out["cross_attention_dim"] = to_k[1]
    return out


def _text_time(adm: int) -> dict[str, Any]:
    return {"addition_embed_type": "text_time", "projection_class_embeddings_input_dim": adm,
            "addition_time_embed_dim": 256}
