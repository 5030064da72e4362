"""The readers of ``kinds.KINDS``: each reads one kind's base model and details from its shapes.

The base is always a width looked up in ``bases``: the context a cross-attention reads, the class
embedding's in-width, the block widths, the latent channels; never a file name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ..core.records import Shape
from .bases import BASES, IMAGE_ENCODERS, TEXT_ENCODERS, Base, by_context, by_widths, named
from .controlnet import UNION_KEYS, controlnet_config
from .inspect import inspect_shapes
from .kinds import Identified
from .parts import parts
from .shapes import count_distinct, find_unet

T2I_FACTORS = ((8, ("SD 1.x", "SD 2.x")), (16, ("SDXL base",)))
"""Pixel-unshuffle factor of diffusers' T2IAdapter types -> bases: ``full_adapter``/``light_adapter`` turn the
image into the 64x64 latent grid of SD 1.x/2.x (factor 8), ``full_adapter_xl`` into SDXL's (factor 16)."""
HINT_CHANNELS = (3, 1)
"""Channels of a T2I-Adapter's condition image: RGB, or one (sketch, canny, depth)."""


def _under(shapes: Mapping[str, Shape], prefix: str) -> dict[str, Shape]:
    return {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}


def _context(shapes: Mapping[str, Shape]) -> int | None:
    to_k = next((s for k, s in shapes.items() if k.endswith("attn2.to_k.weight") and len(s) == 2), None)
    return None if to_k is None else to_k[1]


def _by_context(ctx: int | None, adm: int | None, widths: tuple[int, ...]) -> tuple[list[Base], str]:
    if ctx is not None:
        found = by_context(ctx, adm, exact_adm=True)
        return found, f"its cross-attention (attn2.to_k) reads {ctx}" + (f", its class embedding {adm}" if adm else "")
    return by_widths(widths), f"its block widths are {list(widths)}"


def read_unet(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    found = inspect_shapes(shapes)
    unet = find_unet(shapes)
    ctx = found.config.get("context_dim", found.config.get("cross_attention_dim"))
    return Identified(kind="unet", name=f"{found.matches} U-Net", base=found.matches,
                      evidence=f"its cross-attention reads {ctx}" if ctx else "its widths",
                      tensors=found.tensors, config=found.config, prefix=found.prefix, unet=found,
                      parts=tuple(parts(shapes, found.prefix)) if found.prefix else (),
                      details={"naming": unet[1] if unet else found.naming})


def read_controlnet(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    original = anchor.endswith("input_hint_block.0.weight")
    prefix = anchor[: -len("input_hint_block.0.weight" if original else "controlnet_cond_embedding.conv_in.weight")]
    mine = _under(shapes, prefix)
    naming = "original" if original else "diffusers"
    union = [k for k in UNION_KEYS if any(key.startswith(k + ".") or key == k for key in mine)]
    config = controlnet_config(mine, naming)
    adm = config.get("projection_class_embeddings_input_dim")
    bases, evidence = _by_context(config.get("cross_attention_dim"), adm, tuple(config["block_out_channels"]))
    undetermined = ["attention_head_dim"] + (["addition_time_embed_dim"] if adm else [])
    if bases and bases[0].preset:
        config["attention_head_dim"] = 8 if bases[0].name == "SD 1.x" else [w // 64 for w in
                                                                           config["block_out_channels"]]
    name = "ControlNet union" if union else "ControlNet"
    details: dict[str, Any] = {
        "naming": naming, "conditioning_channels": config["conditioning_channels"],
        "zero_convs": count_distinct(set(mine), r"(?:zero_convs|controlnet_down_blocks)\.(\d+)\."),
        "undetermined": undetermined}
    if union:
        details["union_modules"] = union
    rest = parts(shapes, prefix) if prefix else []
    return Identified(kind="controlnet", name=f"{name} ({naming} naming)", base=named(bases), evidence=evidence,
                      tensors=len(mine), details=details, config=None if union else config, prefix=prefix,
                      parts=tuple(rest))


def read_t2i(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    prefix = "adapter." if anchor.startswith("adapter.") else ""
    mine = _under(shapes, prefix)
    first = mine.get("conv_in.weight") or mine.get("body.0.in_conv.weight")
    factor = channels = None
    if first is not None:
        for c in HINT_CHANNELS:
            root = math.isqrt(first[1] // c) if first[1] % c == 0 else 0
            if root and root * root * c == first[1] and any(root == f for f, _ in T2I_FACTORS):
                factor, channels = root, c
                break
    names = next((b for f, b in T2I_FACTORS if f == factor), ())
    evidence = (f"its first conv reads {first[1]} = {channels} x {factor}x{factor} pixel-unshuffled channels"
                if factor and first else "its first conv's in-width is no known pixel-unshuffle")
    levels = count_distinct(set(mine), r"body\.(\d+)\.")
    details = {"naming": "diffusers" if prefix else "original (TencentARC)", "conditioning_channels": channels,
               "downscale_factor": factor, "body_blocks": levels, "light": "conv_in.weight" not in mine}
    return Identified(kind="t2i-adapter", name="T2I-Adapter" + (" (light)" if details["light"] else ""),
                      base=" / ".join(names) or "unknown", evidence=evidence, tensors=len(mine), details=details,
                      prefix=prefix)


def read_ip_adapter(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    ctx = shapes[anchor][1]
    layers = count_distinct(set(shapes), r"ip_adapter\.(\d+)\.to_k_ip\.weight$")
    proj = {k[len("image_proj."):]: s for k, s in shapes.items() if k.startswith("image_proj.")}
    variant, reads, field = _ip_variant(proj)
    encoder = next((e.name for e in IMAGE_ENCODERS if reads is not None and getattr(e, field) == reads), None)
    details: dict[str, Any] = {"variant": variant, "image_encoder": encoder or f"unknown ({reads} wide)",
                               "image_encoder_width": reads, "reads": "hidden states" if field == "hidden"
                               else "image embeddings", "cross_attention_layers": layers, "context": ctx}
    if variant.startswith("FaceID"):  # MLPProjModel / ProjPlusModel read an InsightFace embedding first
        face = proj["proj.0.weight"][1]
        details["face_embedding"] = face
        details["image_encoder"] = (f"{encoder or f'unknown ({reads} wide)'}, its hidden states, and an InsightFace"
                                    f" face embedding ({face} wide)" if field == "hidden" else
                                    f"an InsightFace face embedding ({face} wide), not a CLIP image encoder")
        details["reads"] = "a face embedding" + (" and CLIP hidden states" if field == "hidden" else "")
    downs = [s for k, s in shapes.items() if _IP_LORA.match(k) and len(s) == 2]
    if downs:  # FaceID's LoRA on every attention processor
        ranks = sorted({s[0] for s in downs})
        details["lora_rank"] = ranks[0] if len(ranks) == 1 else ranks
        details["lora_layers"] = count_distinct(set(shapes), r"^ip_adapter\.(\d+)\.to_q_lora\.down\.weight$")
    return Identified(kind="ip-adapter", name=f"IP-Adapter ({variant})", base=named(by_context(ctx)),
                      evidence=f"its to_k_ip reads {ctx}", tensors=len(shapes), details=details)


_IP_LORA = re.compile(r"^ip_adapter\.\d+\.to_(q|k|v|out)_lora\.down\.weight$")


def _ip_variant(proj: Mapping[str, Shape]) -> tuple[str, int | None, str]:
    """(variant, the image encoder width its projection reads, which width: ``embeds`` or ``hidden``)."""
    if "perceiver_resampler.proj_in.weight" in proj:  # ProjPlusModel: a face embedding, then CLIP hidden states
        return "FaceID plus", proj["perceiver_resampler.proj_in.weight"][1], "hidden"
    if "proj_in.weight" in proj:  # the Resampler of IP-Adapter plus: reads the encoder's hidden states
        return "plus", proj["proj_in.weight"][1], "hidden"
    if "proj.weight" in proj:  # ImageProjModel: one Linear from the image embedding
        return "plain", proj["proj.weight"][1], "embeds"
    if "proj.0.weight" in proj and "proj.3.weight" in proj:  # MLPProjModel: full face
        return "full face", proj["proj.0.weight"][1], "embeds"
    if "proj.0.weight" in proj:  # ip_adapter_faceid's MLPProjModel: Linear(512, 1024), GELU, Linear, norm
        return "FaceID", None, "embeds"
    return "unknown", None, "embeds"


def read_control_lora(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    """Stability's Control-LoRA: a cldm ControlNet whose U-Net copy is low-rank ``.up``/``.down`` pairs over the
    base's own weights (ComfyUI's ``ControlLora``), its hint block and zero convs whole."""
    downs = {k[: -len(".down")]: s for k, s in shapes.items() if k.endswith(".down") and len(s) >= 2}
    ctx = next((s[1] for k, s in downs.items() if k.endswith("attn2.to_k")), None)
    label = downs.get("label_emb.0.0") or shapes.get("label_emb.0.0.weight")
    adm = label[1] if label is not None and len(label) == 2 else None
    bases = by_context(ctx, adm, exact_adm=True) if ctx is not None else []
    ranks = sorted({s[0] for s in downs.values()})
    hint = shapes.get("input_hint_block.0.weight")
    details: dict[str, Any] = {
        "naming": "original (cldm)", "rank": ranks[0] if len(ranks) == 1 else ranks, "lora_modules": len(downs),
        "conditioning_channels": hint[1] if hint is not None and len(hint) > 1 else None,
        "zero_convs": count_distinct(set(shapes), r"^zero_convs\.(\d+)\."), "context": ctx, "class_embedding": adm,
        "note": "its U-Net copy is the base's own weights plus these low-rank updates: it loads only beside its base"}
    evidence = (f"its attn2.to_k down-projection reads {ctx}" + (f", its class embedding {adm}" if adm else "")
                if ctx is not None else "no cross-attention pair whose width tells the base")
    return Identified(kind="control-lora", name="Control-LoRA (Stability)", base=named(bases), evidence=evidence,
                      tensors=len(shapes), details=details)


MOTION_PRESETS = ("animatediff",)
"""UNetMotionModel presets a motion module with the same widths, frames and mid block is
traced as (on their own base U-Net)."""


def _motion_matches(preset: str, details: Mapping[str, Any]) -> bool:
    from ..presets import PRESETS

    c = PRESETS[preset].config
    return bool(list(c.get("block_out_channels", [])) == details["widths"]
                and c.get("motion_max_seq_length") == details["max_frames"]
                and bool(c.get("use_motion_mid_block")) == details["mid_block"])


_MOTION_IN = re.compile(r"^down_blocks\.(\d+)\.motion_modules\.0\.(?:temporal_transformer\.)?proj_in\.weight$")
_POS = re.compile(r"\.pos_(?:encoder|embed)\.pe$")


def read_motion(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    found = {int(m.group(1)): s[0] for k, s in shapes.items() if (m := _MOTION_IN.match(k))}
    widths = tuple(found[i] for i in sorted(found))
    pe = next((s for k, s in shapes.items() if _POS.search(k)), None)
    naming = "diffusers" if any(".transformer_blocks.0.attn1." in k for k in shapes) else "original"
    bases = by_widths(widths)
    details: dict[str, Any] = {"naming": naming, "widths": list(widths), "max_frames": pe[1] if pe else None,
                               "mid_block": any(k.startswith("mid_block.") for k in shapes),
                               "whole_unet": "conv_in.weight" in shapes}
    details["traced_as"] = next((name for name in MOTION_PRESETS if _motion_matches(name, details)), None)
    return Identified(kind="motion-module", name="AnimateDiff motion module" + (
        " with its U-Net (UNetMotionModel)" if details["whole_unet"] else ""), base=named(bases),
        evidence=f"its motion modules are {list(widths)} wide", tensors=len(shapes), details=details)


_VAE_PREFIXES = ("first_stage_model.", "vae.", "")


def read_vae(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    prefix = next(p for p in _VAE_PREFIXES if anchor.startswith(p))
    mine = _under(shapes, prefix)
    naming = "diffusers" if any(".down_blocks." in k or ".up_blocks." in k for k in mine) else "original"
    quant = mine.get("quant_conv.weight")
    dec_in = mine.get("decoder.conv_in.weight")
    latent = quant[0] // 2 if quant else dec_in[1] if dec_in else None
    bases = [b for b in BASES if b.latent == latent and not b.variant]
    details = {"naming": naming, "latent_channels": latent, "encoder": any(k.startswith("encoder.") for k in mine),
               "decoder": any(k.startswith("decoder.") for k in mine),
               "note": "the SD 1.x/2.x and SDXL VAEs have the same shapes; their scaling factors are not in the file"}
    return Identified(kind="vae", name=f"VAE ({naming} naming)", base=named(bases),
                      evidence=f"its latent has {latent} channels", tensors=len(mine), details=details, prefix=prefix)


_TE_LAYER = re.compile(r"^(?:text_model\.)?(?:encoder\.layers|transformer\.resblocks)\.(\d+)\.")


def read_text_encoder(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    width = shapes[anchor][1] if len(shapes[anchor]) == 2 else None
    hf = anchor.endswith("embeddings.token_embedding.weight")  # transformers' CLIPTextModel; else open_clip's
    prefix = anchor[: -len("embeddings.token_embedding.weight" if hf else "token_embedding.weight")]
    prefix = prefix[: -len("text_model.")] if hf and prefix.endswith("text_model.") else prefix
    mine = _under(shapes, prefix)
    layers = len({m.group(1) for k in mine if (m := _TE_LAYER.match(k))})
    enc = next((e for e in TEXT_ENCODERS if e.width == width), None)
    # in a checkpoint, where the encoder sits tells the base (SDXL's bigG is embedder 1, the refiner's 0)
    known = bool(prefix) and any(prefix in t.checkpoint for b in BASES for t in b.text)
    bases = [b for b in BASES if enc is not None and not b.variant and any(
        t.encoder == enc.key and (prefix in t.checkpoint or not known) for t in b.text)]
    details = {"naming": "transformers" if hf else "open_clip", "width": width, "layers": layers,
               "projection": any(k.startswith("text_projection") for k in mine),
               "encoder": enc.name if enc else None}
    return Identified(kind="text-encoder", name=enc.name if enc else f"text encoder ({width} wide)",
                      base=named(bases), evidence=f"its token embedding is {width} wide" + (
                          f", under {prefix} (where {named(bases)} keeps it)" if known and bases else ""),
                      tensors=len(mine),
                      details=details, prefix=prefix)


def read_ema(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    to_k = next((s for k, s in shapes.items() if k.startswith("model_ema.") and k.endswith("attn2to_kweight")), None)
    bases = by_context(to_k[1]) if to_k and len(to_k) == 2 else []
    return Identified(kind="ema", name="EMA copy of a U-Net (LitEma's names without dots)", base=named(bases),
                      evidence=f"its cross-attention reads {to_k[1]}" if to_k else "no cross-attention",
                      tensors=sum(1 for k in shapes if k.startswith("model_ema.")), prefix="model_ema.",
                      parts=tuple(parts(shapes, "model_ema.")))
