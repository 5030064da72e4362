"""``unetviz inspect``: what is this checkpoint? Naming, prefix, family and config, from names and shapes.

Pure: it reads a ``{key: shape}`` mapping (``checkpoint.read_shapes`` gives it from a safetensors
header) and rebuilds the constructor arguments the shapes pin down: channels, levels, res blocks
per level, transformer depth per block, context width, linear vs conv projections, the ADM/class
width, the extra input channels of inpainting/depth/pix2pix models. What a header cannot tell (heads
vs head width, prediction type, native resolution) is filled in from the known model it matches and
listed in ``undetermined``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Shape
from .bases import by_context
from .shapes import DIFFUSERS_PREFIXES, ORIGINAL_PREFIXES, count_distinct, encoder_levels, find_unet

__all__ = ["DIFFUSERS_PREFIXES", "ORIGINAL_PREFIXES", "SCHEMA", "Inspection", "count_distinct", "encoder_levels",
           "find_unet", "inspect_shapes", "to_dict"]

SCHEMA = "unetviz.inspect/1"


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """What a weights file is, as far as its names and shapes tell."""

    naming: str
    """``original`` (CompVis/Stability ``input_blocks...``) or ``diffusers`` (``down_blocks...``)."""
    prefix: str
    """The prefix of the U-Net's keys in the file (``model.diffusion_model.``, ``unet.`` or ``""``)."""
    family: str
    """The unetviz family the rebuilt config is for (``ldm`` or ``diffusers``)."""
    matches: str
    """The known model the shapes match (``SD 1.x``, ``SDXL base``...), or ``unknown``."""
    config: dict[str, Any]
    """A config ``--config`` accepts, rebuilt from the shapes."""
    tensors: int
    """Tensors of the U-Net in the file (under ``prefix``)."""
    other_components: dict[str, int] = field(default_factory=dict)
    """Other tensors in the file by their first key component (VAE, text encoders, EMA copies)."""
    undetermined: tuple[str, ...] = ()
    """Config keys the shapes cannot decide; their values come from the matched known model."""


def inspect_shapes(shapes: Mapping[str, Shape], name: str = "file") -> Inspection:
    """Detect naming and prefix, then rebuild the config. A file of another kind that unetviz traces (a
    ControlNet) gives that model's config; any other kind is refused in one line naming what it is."""
    found = find_unet(shapes)
    if found is not None:
        prefix, naming, unet = found
        config = _original_config(unet) if naming == "original" else _diffusers_config(unet)
        return _finish(shapes, prefix, naming, unet, config)
    from .kinds import identify  # the other kinds' readers, only for files that hold no U-Net

    other = identify(shapes, None, name)
    if other.config is None:
        raise UnetvizError(f"{name!r} is a {other.name} for {other.base}, not a model unetviz traces"
                           f" (`unetviz inspect {name}` says what it holds)")
    return Inspection(naming=str(other.details.get("naming", "diffusers")), prefix=other.prefix, family="diffusers",
                      matches=f"{other.name} for {other.base}", config=dict(other.config), tensors=other.tensors,
                      undetermined=tuple(other.details.get("undetermined", ())))


def _finish(shapes: Mapping[str, Shape], prefix: str, naming: str, unet: dict[str, Shape],
            found: tuple[dict[str, Any], str, tuple[str, ...]]) -> Inspection:
    config, matches, undetermined = found
    other: dict[str, int] = {}
    for k in shapes:
        if prefix and not k.startswith(prefix):  # VAE, text encoders, EMA copies: counted, set aside
            head = k.split(".")[0]
            other[head] = other.get(head, 0) + 1
    return Inspection(naming=naming, prefix=prefix, family=str(config.get("family", "diffusers")), matches=matches,
                      config=config, tensors=len(unet), other_components=other, undetermined=undetermined)


# ---- original (ldm / sgm) naming ------------------------------------------------------------------
def _original_config(unet: dict[str, Shape]) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    conv_in = unet["input_blocks.0.0.weight"]
    mc, in_channels = conv_in[0], conv_in[1]
    levels = encoder_levels(unet, mc)
    depths = [lv["depths"] for lv in levels]
    rates = [2 ** i for i, d in enumerate(depths) if any(d)]
    to_k = next((s for k, s in unet.items() if k.endswith("attn2.to_k.weight")), None)
    proj_in = next((s for k, s in unet.items() if k.endswith(".proj_in.weight")), None)
    config: dict[str, Any] = {
        "family": "ldm", "in_channels": in_channels, "out_channels": unet["out.2.weight"][0], "model_channels": mc,
        "num_res_blocks": len(depths[0]), "channel_mult": [lv["mult"] for lv in levels],
        "attention_resolutions": rates,
    }
    if to_k is not None:
        # one depth for every attention level is an int (SD 1.x/2.x); else a list per level, 0 where a
        # level has no attention (SDXL's [0, 2, 10])
        per_level = [max(d, default=0) for d in depths]
        used = {per_level[i] for i in range(len(per_level)) if 2 ** i in rates}
        depth: int | list[int] = used.pop() if len(used) == 1 else per_level
        config.update({"use_spatial_transformer": True, "context_dim": to_k[1],
                       "use_linear_in_transformer": proj_in is not None and len(proj_in) == 2,
                       "transformer_depth": depth})
        middle = count_distinct(set(unet), r"middle_block\.1\.transformer_blocks\.(\d+)\.")
        if middle != (depth[-1] if isinstance(depth, list) else depth):
            config["transformer_depth_middle"] = middle
    if "label_emb.0.0.weight" in unet:
        config.update({"num_classes": "sequential", "adm_in_channels": unet["label_emb.0.0.weight"][1]})
    elif "label_emb.weight" in unet:
        config["num_classes"] = unet["label_emb.weight"][0]
    matches, guess = _known_original(config)
    undetermined = tuple(k for k in guess if k not in config)
    return {**guess, **config}, matches, undetermined


def _known_original(c: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The published model these shapes match, and what it sets that shapes cannot show."""
    ctx, mc, adm = c.get("context_dim"), c["model_channels"], c.get("adm_in_channels")
    extra = {9: " inpainting", 8: " InstructPix2Pix", 5: " depth-to-image"}.get(c["in_channels"], "")
    sd1 = {"num_heads": 8, "legacy": False, "image_size": 64}
    sd2 = {"num_head_channels": 64, "legacy": False, "image_size": 96 if not extra else 64}
    # the base its widths declare: the context and the class embedding's in-width (unCLIP's 2048 or 1536)
    found = by_context(ctx, adm, exact_adm=True) if isinstance(ctx, int) else []
    base = found[0].name if found and found[0].widths[0] == mc else ""
    if base == "SD 1.x":
        return "SD 1.x" + extra, sd1
    if base.startswith("SD 2"):
        return base + extra, sd2
    if ctx == 2048 and adm == 2816:
        standard = c.get("transformer_depth") == [0, 2, 10]
        return ("SDXL base" if standard else "SDXL-derived (SSD-1B / Vega style)") + extra, \
            {"num_head_channels": 64, "legacy": False, "image_size": 128}
    if ctx == 1280 and adm == 2560:
        return "SDXL refiner", {"num_head_channels": 64, "legacy": False, "image_size": 128}
    return "unknown", {"num_head_channels": 64, "legacy": False, "image_size": 64}


# ---- diffusers naming ----------------------------------------------------------------------------
def _diffusers_config(unet: dict[str, Shape]) -> tuple[dict[str, Any], str, tuple[str, ...]]:
    keys = set(unet)
    n = count_distinct(keys, r"down_blocks\.(\d+)\.")
    boc = [unet[f"down_blocks.{i}.resnets.0.conv2.weight"][0] for i in range(n)]
    cross = [f"down_blocks.{i}.attentions.0.transformer_blocks.0.attn2.to_k.weight" in unet for i in range(n)]
    lpb = count_distinct(keys, r"down_blocks\.0\.resnets\.(\d+)\.")
    depth = [count_distinct(keys, rf"down_blocks\.{i}\.attentions\.0\.transformer_blocks\.(\d+)\.") or 1
             for i in range(n)]
    to_k = next((s for k, s in unet.items() if k.endswith("attn2.to_k.weight")), None)
    proj_in = next((s for k, s in unet.items() if k.endswith(".proj_in.weight")), None)
    config: dict[str, Any] = {
        "_class_name": "UNet2DConditionModel", "in_channels": unet["conv_in.weight"][1],
        "out_channels": unet["conv_out.weight"][0], "block_out_channels": boc, "layers_per_block": lpb,
        "down_block_types": ["CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross],
        "up_block_types": ["CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)],
        "transformer_layers_per_block": depth if len(set(depth)) > 1 else depth[0],
        "use_linear_projection": proj_in is not None and len(proj_in) == 2,
    }
    if to_k is not None:
        config["cross_attention_dim"] = to_k[1]
    if "class_embedding.linear_1.weight" in unet:  # unCLIP's image-embedding input
        config.update({"class_embed_type": "projection",
                       "projection_class_embeddings_input_dim": unet["class_embedding.linear_1.weight"][1]})
    if "add_embedding.linear_1.weight" in unet:
        config.update({"addition_embed_type": "text_time", "addition_time_embed_dim": 256,
                       "projection_class_embeddings_input_dim": unet["add_embedding.linear_1.weight"][1]})
    ctx = config.get("cross_attention_dim")
    extra = {9: " inpainting", 8: " InstructPix2Pix", 5: " depth-to-image"}.get(config["in_channels"], "")
    guess: dict[str, Any]
    unclip = by_context(1024, config.get("projection_class_embeddings_input_dim"), exact_adm=True)
    if ctx == 768:
        matches, guess = "SD 1.x" + extra, {"attention_head_dim": 8, "sample_size": 64}
    elif ctx == 1024:
        name = unclip[0].name if unclip and "class_embed_type" in config else "SD 2.x"
        matches, guess = name + extra, {"attention_head_dim": [c // 64 for c in boc], "sample_size": 96}
    elif ctx == 2048:
        matches = ("SDXL base" if config["transformer_layers_per_block"] == [1, 2, 10] else "SDXL-derived") + extra
        guess = {"attention_head_dim": [c // 64 for c in boc], "sample_size": 128}
    else:
        matches, guess = "unknown", {"attention_head_dim": [max(1, c // 64) for c in boc], "sample_size": 64}
    undetermined = tuple(k for k in guess if k not in config) + (("addition_time_embed_dim",)
                                                                 if "addition_embed_type" in config else ())
    return {**config, **guess}, matches, undetermined


def to_dict(i: Inspection, file: str, matched: int | None) -> dict[str, Any]:
    """The ``inspect --format json`` document of the interface."""
    return {"schema": SCHEMA, "file": file, "naming": i.naming, "prefix": i.prefix, "family": i.family,
            "matches": i.matches, "config": i.config, "tensors": i.tensors, "matched": matched,
            "other_components": i.other_components, "undetermined": list(i.undetermined)}
