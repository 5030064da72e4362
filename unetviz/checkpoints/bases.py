"""The base models add-ons are made for, declared by the widths a file's shapes show.

A file's base is read from a width its tensors carry (the cross-attention context a LoRA's ``attn2.to_k``
reads, a ControlNet's block widths, an IP-Adapter's ``to_k_ip``), looked up here; never from a file name.
Where two bases share every width a file shows (SD 1.x and 2.x have the same block widths), the answer
names both.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class TextEncoder:
    """A text encoder a base conditions on."""

    key: str
    """Short name (``clip-l``)."""
    name: str
    """What people call it."""
    width: int
    """Its hidden width (the token embedding's and every layer's)."""
    layers: int
    """Transformer layers in the published model."""


TEXT_ENCODERS = (
    TextEncoder(key="clip-l", name="CLIP ViT-L/14 text encoder", width=768, layers=12),
    TextEncoder(key="openclip-h", name="OpenCLIP ViT-H/14 text encoder", width=1024, layers=24),
    TextEncoder(key="openclip-bigg", name="OpenCLIP ViT-bigG/14 text encoder", width=1280, layers=32),
)


@dataclass(frozen=True, kw_only=True)
class ImageEncoder:
    """A CLIP image encoder an IP-Adapter reads."""

    name: str
    """What people call it (and the checkpoint IP-Adapter's authors ship as ``image_encoder``)."""
    embeds: int
    """Width of its projected image embedding (what a plain IP-Adapter's ``image_proj.proj`` reads)."""
    hidden: int
    """Width of its hidden states (what the Resampler of an IP-Adapter plus reads in ``proj_in``)."""


IMAGE_ENCODERS = (
    ImageEncoder(name="OpenCLIP ViT-H/14 (laion2B-s32B-b79K, IP-Adapter's models/image_encoder)", embeds=1024,
                 hidden=1280),
    ImageEncoder(name="OpenCLIP ViT-bigG/14 (laion2B-39B-b160k, IP-Adapter's sdxl_models/image_encoder)",
                 embeds=1280, hidden=1664),
    ImageEncoder(name="CLIP ViT-L/14 (openai/clip-vit-large-patch14)", embeds=768, hidden=1024),
)


@dataclass(frozen=True, kw_only=True)
class TextPart:
    """Where one of a base's text encoders sits in a LoRA's keys."""

    kohya: str
    """kohya's prefix (``lora_te``, ``lora_te1``, ``lora_te2``)."""
    diffusers: str
    """diffusers' prefix (``text_encoder``, ``text_encoder_2``)."""
    encoder: str
    """``TEXT_ENCODERS`` key."""
    checkpoint: tuple[str, ...] = ()
    """Its key prefixes in a single-file checkpoint (ldm's ``cond_stage_model.``, sgm's ``conditioner.embedders.N.``),
    as ComfyUI's ``supported_models`` reads them (``process_clip_state_dict``): the index tells SDXL's bigG
    (``embedders.1``) from the refiner's (``embedders.0``)."""


@dataclass(frozen=True, kw_only=True)
class Base:
    """A base model family, by the widths its U-Net and encoders have."""

    name: str
    """What people call it (``SD 1.x``)."""
    preset: str | None
    """The unetviz preset that traces its U-Net (diffusers naming), when there is one."""
    context: int
    """Cross-attention width: what every ``attn2.to_k`` / ``to_v`` reads."""
    adm: int | None
    """In-width of the class/vector embedding (``label_emb`` / ``add_embedding``), None when it has none."""
    widths: tuple[int, ...]
    """The U-Net's block widths (``block_out_channels``)."""
    text: tuple[TextPart, ...]
    """Its text encoders, as LoRA files name them."""
    latent: int = 4
    """Latent channels (the VAE's and the U-Net's output)."""
    note: str = ""
    """What else tells it apart."""
    variant: bool = False
    """A variant with the plain base's U-Net widths (unCLIP): named only when its own widths show (the class
    embedding's), never from the block widths alone."""


_SD_WIDTHS = (320, 640, 1280, 1280)
_SD2_TEXT = TextPart(kohya="lora_te", diffusers="text_encoder", encoder="openclip-h",
                     checkpoint=("cond_stage_model.model.", "conditioner.embedders.0.model."))
BASES = (
    Base(name="SD 1.x", preset="sd15", context=768, adm=None, widths=_SD_WIDTHS,
         text=(TextPart(kohya="lora_te", diffusers="text_encoder", encoder="clip-l",
                        checkpoint=("cond_stage_model.transformer.",)),)),
    Base(name="SD 2.x", preset="sd21", context=1024, adm=None, widths=_SD_WIDTHS, text=(_SD2_TEXT,)),
    Base(name="SD 2.1 unCLIP-H", preset=None, context=1024, adm=2048, widths=_SD_WIDTHS, text=(_SD2_TEXT,),
         note="its class embedding reads a 1024-wide ViT-H image embedding and a 1024-wide noise-level embedding",
         variant=True),
    Base(name="SD 2.1 unCLIP-L", preset=None, context=1024, adm=1536, widths=_SD_WIDTHS, text=(_SD2_TEXT,),
         note="its class embedding reads a 768-wide ViT-L image embedding and a 768-wide noise-level embedding",
         variant=True),
    Base(name="SDXL base", preset="sdxl", context=2048, adm=2816, widths=(320, 640, 1280),
         text=(TextPart(kohya="lora_te1", diffusers="text_encoder", encoder="clip-l",
                        checkpoint=("conditioner.embedders.0.transformer.",)),
               TextPart(kohya="lora_te2", diffusers="text_encoder_2", encoder="openclip-bigg",
                        checkpoint=("conditioner.embedders.1.model.",)))),
    Base(name="SDXL refiner", preset=None, context=1280, adm=2560, widths=(384, 768, 1536, 1536),
         text=(TextPart(kohya="lora_te2", diffusers="text_encoder_2", encoder="openclip-bigg",
                        checkpoint=("conditioner.embedders.0.model.",)),)),
)


def by_name(name: str) -> Base | None:
    return next((b for b in BASES if b.name == name), None)


def by_context(context: int, adm: int | None = None, *, exact_adm: bool = False) -> list[Base]:
    """The bases whose cross-attention reads ``context``: with ``exact_adm``, the one whose class embedding
    reads ``adm`` (None: none); otherwise the plain bases (a LoRA cannot tell an unCLIP from its base)."""
    found = [b for b in BASES if b.context == context and (b.adm == adm if exact_adm else not b.variant)]
    return found


def by_widths(widths: tuple[int, ...]) -> list[Base]:
    """The bases whose U-Net has exactly these block widths (the plain ones, not their unCLIP variants)."""
    return [b for b in BASES if b.widths == widths and not b.variant]


def text_encoder(width: int) -> TextEncoder | None:
    return next((e for e in TEXT_ENCODERS if e.width == width), None)


def named(bases: list[Base]) -> str:
    """``SD 1.x`` or ``SD 1.x / SD 2.x`` (when the shapes cannot tell them apart), ``unknown`` for none."""
    return " / ".join(b.name for b in bases) or "unknown"


@dataclass(frozen=True, kw_only=True)
class TransformerBase:
    """A base whose denoiser is a transformer (an MMDiT), not a U-Net: its LoRAs are named for it, but unetviz
    traces no such model and ``fit`` takes no such base."""

    name: str
    """What people call it (``FLUX.1``)."""
    model: str
    """The diffusers class of its denoiser (``FluxTransformer2DModel``)."""
    source: str
    """Where its widths are read from."""
    hidden: int
    """Its hidden width (heads x head width): what every block's attention projections read."""
    blocks: tuple[tuple[str, str, int], ...]
    """Its block lists: (diffusers' name, the original (BFL/Stability) name, how many)."""
    reads_hidden: tuple[str, ...]
    """Module paths inside a block (``.`` as ``_``, either naming) whose in-width is ``hidden``."""
    note: str = ""
    """What else tells it apart, or what the widths cannot."""


TRANSFORMER_BASES = (
    TransformerBase(
        name="FLUX.1", model="FluxTransformer2DModel", hidden=3072,
        source="diffusers FluxTransformer2DModel's defaults (FLUX.1 dev/schnell): 24 heads x 128, num_layers 19,"
               " num_single_layers 38",
        blocks=(("transformer_blocks", "double_blocks", 19), ("single_transformer_blocks", "single_blocks", 38)),
        reads_hidden=("attn_to_q", "attn_to_k", "attn_to_v", "attn_add_q_proj", "attn_add_k_proj", "attn_add_v_proj",
                      "ff_net_0_proj", "ff_context_net_0_proj", "proj_mlp", "img_attn_qkv", "txt_attn_qkv",
                      "img_mlp_0", "txt_mlp_0", "linear1"),
        note="FLUX.1 dev and schnell have the same shapes"),
    TransformerBase(
        name="SD3 medium / SD3.5 medium", model="SD3Transformer2DModel", hidden=1536,
        source="stabilityai/stable-diffusion-3-medium-diffusers transformer/config.json, as diffusers'"
               " SD3Transformer2DModel takes it: 24 heads x 64, num_layers 24 (SD3.5 medium: the same widths)",
        blocks=(("transformer_blocks", "joint_blocks", 24),),
        reads_hidden=("attn_to_q", "attn_to_k", "attn_to_v", "attn_add_q_proj", "attn_add_k_proj", "attn_add_v_proj",
                      "ff_net_0_proj", "ff_context_net_0_proj", "x_block_attn_qkv", "context_block_attn_qkv",
                      "x_block_mlp_fc1", "context_block_mlp_fc1"),
        note="SD3 medium and SD3.5 medium share their widths"),
    TransformerBase(
        name="SD3.5 large", model="SD3Transformer2DModel", hidden=2432,
        source="stabilityai/stable-diffusion-3.5-large transformer/config.json, as diffusers' SD3Transformer2DModel"
               " takes it: 38 heads x 64, num_layers 38",
        blocks=(("transformer_blocks", "joint_blocks", 38),),
        reads_hidden=("attn_to_q", "attn_to_k", "attn_to_v", "attn_add_q_proj", "attn_add_k_proj", "attn_add_v_proj",
                      "ff_net_0_proj", "ff_context_net_0_proj", "x_block_attn_qkv", "context_block_attn_qkv",
                      "x_block_mlp_fc1", "context_block_mlp_fc1")),
)
"""Bases with a transformer denoiser, looked up by the hidden width a LoRA's block module reads."""


def transformer_base(path: str, width: int | None) -> TransformerBase | None:
    """The transformer base a LoRA module (its path with ``_`` for ``.``, its in-width) was made for: the path is
    a block module that reads the hidden width, and the width is that base's."""
    for t in TRANSFORMER_BASES:
        for diffusers, original, _ in t.blocks:
            for name in (diffusers, original):
                head, _, rest = path.partition(name + "_")
                index, _, leaf = rest.partition("_")
                if head in ("", "transformer_") and index.isdigit() and leaf in t.reads_hidden and width == t.hidden:
                    return t
    return None
