"""What ``why`` knows besides the presets: the widths of the parts people combine with a U-Net (text and image
encoders, the VAE) and the published variants of preset U-Nets (inpainting, pix2pix, the SDXL refiner and
ControlNet). Each is a fact with its source named; no record says anything about an error: the search
compares an error's numbers with these widths and with the layers of traced models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..presets import PRESETS


@dataclass(frozen=True, kw_only=True)
class Width:
    """A tensor width a part outside the U-Net produces."""

    name: str
    """Short name (``CLIP-L text``)."""
    width: int
    """The last dimension of the tensor it hands on."""
    what: str
    """What the tensor is (``text hidden states``, ``pooled text embedding``, ``image embedding``...)."""
    tokens: int | None
    """Its sequence length where it is a sequence (77 for CLIP's text, 257 for ViT-H/14 at 224 px)."""
    feeds: tuple[str, ...]
    """Models (preset or variant names) that read this width as it is."""
    source: str
    """The config the number comes from."""


@dataclass(frozen=True, kw_only=True)
class Joined:
    """A width made by concatenating others along the last axis (SDXL's two text encoders)."""

    name: str
    """Short name."""
    parts: tuple[str, ...]
    """The ``Width`` names joined, in order."""
    what: str
    """What the joined tensor is."""
    feeds: tuple[str, ...]
    """Models that read it."""
    source: str
    """Where the joining is done."""


@dataclass(frozen=True, kw_only=True)
class Added:
    """SDXL's added conditioning: a pooled text embedding and ``time_ids`` numbers, each sinusoidally embedded
    to the model's ``addition_time_embed_dim``, concatenated (``add_embedding``'s input)."""

    name: str
    """Short name."""
    pooled: str
    """The ``Width`` name of the pooled text embedding."""
    time_ids: int
    """How many numbers ``time_ids`` holds."""
    ids: str
    """What they are."""
    feeds: tuple[str, ...]
    """Models whose pipeline builds it."""
    source: str
    """Where it is built."""


@dataclass(frozen=True, kw_only=True)
class Latent:
    """An autoencoder's latent: the channels a latent U-Net reads and the image's downscaling."""

    name: str
    """Short name."""
    channels: int
    """Latent channels."""
    factor: int
    """Image pixels per latent pixel, each axis."""
    feeds: tuple[str, ...]
    """Models that denoise this latent."""
    source: str
    """The config the numbers come from."""


@dataclass(frozen=True, kw_only=True)
class Autoencoder:
    """A diffusers ``AutoencoderKL`` (or ``AutoencoderTiny``, TAESD) by the config keys that fix its outer convs'
    shapes."""

    name: str
    """Short name (``SD VAE``)."""
    image_channels: int
    """``in_channels`` / ``out_channels``: the image's."""
    widths: tuple[int, ...]
    """``block_out_channels``."""
    latent: str
    """The ``Latent`` record of its latent."""
    quant_convs: bool
    """``use_quant_conv`` / ``use_post_quant_conv`` (True unless the config turns them off)."""
    source: str
    """The config file."""
    tiny: bool = False
    """An ``AutoencoderTiny``: ``widths`` are its encoder's and decoder's block widths; its first convs are
    ``encoder.layers.0`` and ``decoder.layers.0``."""


@dataclass(frozen=True, kw_only=True)
class Image:
    """An image format's channels."""

    name: str
    """``RGB image``, ``RGBA image (RGB + alpha)``..."""
    channels: int
    """Its channels."""


@dataclass(frozen=True, kw_only=True)
class Variant:
    """A published U-Net that is a preset's config with some arguments changed."""

    name: str
    """Its name in answers."""
    base: str
    """The preset it changes."""
    changes: dict[str, Any]
    """The config keys that differ from the preset's, with their values."""
    input: str
    """What its input channels are, where they differ from the base's."""
    source: str
    """The config file it comes from."""


_SD1 = ("sd15", "sd15-ldm", "controlnet-sd15", "animatediff", "sd15-inpainting", "sd15-pix2pix")
_SD2 = ("sd21", "sd21-ldm", "sd2-inpainting", "modelscope-t2v")
_XL = ("sdxl", "sdxl-sgm", "sdxl-inpainting", "controlnet-sdxl")

WIDTHS: tuple[Width, ...] = (
    Width(name="CLIP-L text", width=768, what="text hidden states", tokens=77, feeds=_SD1,
          source="openai/clip-vit-large-patch14 config.json text_config.hidden_size"),
    Width(name="OpenCLIP-H text", width=1024, what="text hidden states", tokens=77, feeds=_SD2,
          source="laion/CLIP-ViT-H-14-laion2B-s32B-b79K open_clip_config.json text_cfg.width"),
    Width(name="OpenCLIP-bigG text", width=1280, what="text hidden states", tokens=77, feeds=("sdxl-refiner",),
          source="laion/CLIP-ViT-bigG-14-laion2B-39B-b160k open_clip_config.json text_cfg.width"),
    Width(name="OpenCLIP-bigG pooled", width=1280, what="pooled text embedding", tokens=None, feeds=(),
          source="laion/CLIP-ViT-bigG-14-laion2B-39B-b160k open_clip_config.json embed_dim"),
    Width(name="T5-XXL text", width=4096, what="text hidden states", tokens=None, feeds=("if-i-xl",),
          source="google/t5-v1_1-xxl config.json d_model"),
    Width(name="CLIP-H image embeds", width=1024, what="image embedding", tokens=1, feeds=("svd",),
          source="h94/IP-Adapter models/image_encoder/config.json projection_dim (CLIP ViT-H/14)"),
    Width(name="CLIP-H image hidden", width=1280, what="image hidden states", tokens=257, feeds=(),
          source="h94/IP-Adapter models/image_encoder/config.json hidden_size (IP-Adapter plus reads these)"),
    Width(name="OpenCLIP-bigG image embeds", width=1280, what="image embedding", tokens=1,
          feeds=("kandinsky22-decoder",),
          source="h94/IP-Adapter sdxl_models/image_encoder/config.json projection_dim (ViT-bigG/14)"),
    Width(name="OpenCLIP-bigG image hidden", width=1664, what="image hidden states", tokens=257, feeds=(),
          source="h94/IP-Adapter sdxl_models/image_encoder/config.json hidden_size"),
    Width(name="CLIP-L image embeds", width=768, what="image embedding", tokens=1, feeds=(),
          source="openai/clip-vit-large-patch14 config.json projection_dim"),
)
"""Widths of encoders, from the configs named."""

JOINED: tuple[Joined, ...] = (
    Joined(name="SDXL text context", parts=("CLIP-L text", "OpenCLIP-bigG text"), what="text hidden states",
           feeds=_XL, source="diffusers StableDiffusionXLPipeline.encode_prompt: torch.concat(prompt_embeds_list,"
           " dim=-1)"),
)
ADDED: tuple[Added, ...] = (
    Added(name="SDXL base added conditioning", pooled="OpenCLIP-bigG pooled", time_ids=6,
          ids="original size, crop top-left, target size", feeds=("sdxl", "sdxl-sgm", "controlnet-sdxl"),
          source="diffusers StableDiffusionXLPipeline._get_add_time_ids"),
    Added(name="SDXL refiner added conditioning", pooled="OpenCLIP-bigG pooled", time_ids=5,
          ids="original size, crop top-left, aesthetic score", feeds=("sdxl-refiner",),
          source="diffusers StableDiffusionXLImg2ImgPipeline._get_add_time_ids (requires_aesthetics_score)"),
)
ADD_TIME_DIM = 256
"""``addition_time_embed_dim`` of every SDXL U-Net (the configs of the presets and variants say so too)."""

LATENTS: tuple[Latent, ...] = (
    Latent(name="SD VAE", channels=4, factor=8, feeds=(*_SD1, *_SD2, *_XL, "sdxl-refiner"),
           source="stabilityai/sd-vae-ft-mse config.json latent_channels; 2**(len(block_out_channels)-1)"),
    Latent(name="SD3/FLUX VAE", channels=16, factor=8, feeds=(),
           source="black-forest-labs/FLUX.1-dev vae/config.json latent_channels"),
)

AUTOENCODERS: tuple[Autoencoder, ...] = (
    Autoencoder(name="SD VAE", image_channels=3, widths=(128, 256, 512, 512), latent="SD VAE", quant_convs=True,
                source="stabilityai/sd-vae-ft-mse config.json (SD 1.x/2.x; SDXL's VAE has the same shapes)"),
    Autoencoder(name="SD3/FLUX VAE", image_channels=3, widths=(128, 256, 512, 512), latent="SD3/FLUX VAE",
                quant_convs=False, source="black-forest-labs/FLUX.1-dev vae/config.json (use_quant_conv false)"),
    Autoencoder(name="TAESD", image_channels=3, widths=(64, 64, 64, 64), latent="SD VAE", quant_convs=False,
                tiny=True, source="madebyollin/taesd config.json (AutoencoderTiny's defaults; previewers use it)"),
    Autoencoder(name="TAEF1", image_channels=3, widths=(64, 64, 64, 64), latent="SD3/FLUX VAE", quant_convs=False,
                tiny=True, source="madebyollin/taef1 config.json (latent_channels 16)"),
)
IMAGES: tuple[Image, ...] = (
    Image(name="RGB image", channels=3), Image(name="RGBA image (RGB + alpha)", channels=4),
    Image(name="grayscale image", channels=1),
)


def autoencoder_convs(a: Autoencoder) -> list[tuple[str, list[int], str]]:
    """The outer convs of an ``AutoencoderKL`` as its constructor makes them: (path, weight shape, what it reads).
    The encoder writes a mean and a log-variance (2 x latent channels)."""
    z = next(x.channels for x in LATENTS if x.name == a.latent)
    first, last = a.widths[0], a.widths[-1]
    if a.tiny:  # EncoderTiny / DecoderTiny: each opens with a 3x3 conv to its first block width
        return [("encoder.layers.0", [first, a.image_channels, 3, 3], "image"),
                ("decoder.layers.0", [first, z, 3, 3], "latent")]
    convs = [("encoder.conv_in", [first, a.image_channels, 3, 3], "image"),
             ("encoder.conv_out", [2 * z, last, 3, 3], "inner")]
    if a.quant_convs:
        convs += [("quant_conv", [2 * z, 2 * z, 1, 1], "inner"), ("post_quant_conv", [z, z, 1, 1], "latent")]
    convs += [("decoder.conv_in", [last, z, 3, 3], "inner" if a.quant_convs else "latent"),
              ("decoder.conv_out", [a.image_channels, first, 3, 3], "inner")]
    return convs


_SDXL_REFINER: dict[str, Any] = {
    "family": "ldm", "image_size": 128, "adm_in_channels": 2560, "num_classes": "sequential", "in_channels": 4,
    "out_channels": 4, "model_channels": 384, "attention_resolutions": [4, 2], "num_res_blocks": 2,
    "channel_mult": [1, 2, 4, 4], "num_head_channels": 64, "use_spatial_transformer": True,
    "use_linear_in_transformer": True, "transformer_depth": 4, "context_dim": 1280, "legacy": False}

VARIANTS: tuple[Variant, ...] = (
    Variant(name="sd15-inpainting", base="sd15", changes={"in_channels": 9},
            input="noisy latent 4 + mask 1 + masked-image latent 4",
            source="runwayml/stable-diffusion-inpainting unet/config.json"),
    Variant(name="sd15-pix2pix", base="sd15", changes={"in_channels": 8},
            input="noisy latent 4 + input-image latent 4", source="timbrooks/instruct-pix2pix unet/config.json"),
    Variant(name="sd2-inpainting", base="sd21", changes={"in_channels": 9, "sample_size": 64},
            input="noisy latent 4 + mask 1 + masked-image latent 4",
            source="stabilityai/stable-diffusion-2-inpainting unet/config.json"),
    Variant(name="sdxl-inpainting", base="sdxl", changes={"in_channels": 9},
            input="noisy latent 4 + mask 1 + masked-image latent 4",
            source="diffusers/stable-diffusion-xl-1.0-inpainting-0.1 unet/config.json"),
    Variant(name="sdxl-refiner", base="sdxl-sgm", changes=_SDXL_REFINER, input="",
            source="Stability-AI generative-models configs/inference/sd_xl_refiner.yaml network_config.params"),
    Variant(name="controlnet-sdxl", base="controlnet-sd15",
            changes={"block_out_channels": [320, 640, 1280], "cross_attention_dim": 2048,
                     "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                     "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
                     "use_linear_projection": True, "addition_embed_type": "text_time",
                     "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816},
            input="", source="diffusers/controlnet-canny-sdxl-1.0 config.json"),
)
"""Published variants of preset U-Nets."""


def model_names() -> tuple[str, ...]:
    """Every model the search knows: the presets, then the variants."""
    return (*PRESETS, *(v.name for v in VARIANTS))


def config_of(name: str) -> dict[str, Any]:
    """The config of a preset or a variant."""
    for v in VARIANTS:
        if v.name == name:
            base = dict(PRESETS[v.base].config)
            return dict(v.changes) if v.changes.get("family") else {**base, **v.changes}
    return dict(PRESETS[name].config)


def preset_of(name: str) -> str | None:
    """The preset a model's input declaration comes from: itself, or a variant's base."""
    if name in PRESETS:
        return name
    return next((v.base for v in VARIANTS if v.name == name), None)


def description(name: str) -> str:
    """What the model is, from its preset or variant record."""
    for v in VARIANTS:
        if v.name == name:
            return f"{v.name} ({v.source})"
    return PRESETS[name].description


def input_meaning(name: str) -> str:
    """What the model's input channels are, where a variant declares it."""
    return next((v.input for v in VARIANTS if v.name == name), "")


def width_of(name: str) -> int:
    """A ``Width`` or ``Joined`` record's width (a joined one is the sum of its parts)."""
    for w in WIDTHS:
        if w.name == name:
            return w.width
    joined = next(j for j in JOINED if j.name == name)
    return sum(width_of(p) for p in joined.parts)


def added_width(a: Added) -> int:
    """``add_embedding``'s input width: the pooled embedding plus each time id embedded."""
    return width_of(a.pooled) + a.time_ids * ADD_TIME_DIM


def widths_named(width: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """Every known outside tensor of this width: (name, what it is, the models that read it)."""
    out = [(w.name, w.what, w.feeds) for w in WIDTHS if w.width == width]
    out += [(j.name, f"{j.what}, {' + '.join(f'{p} {width_of(p)}' for p in j.parts)}", j.feeds) for j in JOINED
            if width_of(j.name) == width]
    out += [(a.name, f"pooled {width_of(a.pooled)} + {a.time_ids} time ids x {ADD_TIME_DIM} ({a.ids})", a.feeds)
            for a in ADDED if added_width(a) == width]
    return out
