"""Published U-Net configurations, as the config files their repositories ship.

A preset holds constructor arguments only; every figure unetviz shows for it is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    """A config dict in the ``--config`` format (``_class_name`` or ``family`` plus kwargs)."""


_SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
_SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
_SD15: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel", "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": _SD_DOWN, "up_block_types": _SD_UP, "layers_per_block": 2, "attention_head_dim": 8,
    "cross_attention_dim": 768, "in_channels": 4, "out_channels": 4, "sample_size": 64,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("sd15", "Stable Diffusion 1.5 UNet (runwayml/stable-diffusion-v1-5 unet/config.json)", _SD15),
        Preset("sd21", "Stable Diffusion 2.1 UNet (768-v): linear projections, 64-channel heads",
               {**_SD15, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                "use_linear_projection": True, "upcast_attention": True, "sample_size": 96}),
        Preset("sdxl", "Stable Diffusion XL base 1.0 UNet: 3 levels, 10-deep transformers, text_time embeds",
               {"_class_name": "UNet2DConditionModel", "block_out_channels": [320, 640, 1280],
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
                "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
                "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
                "layers_per_block": 2, "in_channels": 4, "out_channels": 4, "sample_size": 128}),
        Preset("ddpm-cifar10", "DDPM CIFAR-10 (google/ddpm-cifar10-32), pixel space 32x32",
               {"_class_name": "UNet2DModel", "block_out_channels": [128, 256, 256, 256],
                "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
                "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6,
                "attention_head_dim": None, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
                "sample_size": 32}),
        Preset("unet2d-attn-64", "The UNet2DModel of seed 000 (a learner's latent 64x64 model)",
               {"_class_name": "UNet2DModel", "sample_size": 64, "in_channels": 4, "out_channels": 4,
                "layers_per_block": 2, "block_out_channels": [64, 128, 256, 512],
                "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
                "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"]}),
        Preset("ddpm-lucidrains", "lucidrains' denoising-diffusion-pytorch Unet of seed 002 (dim 64, mults 1,2,4,8)",
               {"family": "lucidrains", "dim": 64, "dim_mults": [1, 2, 4, 8], "channels": 3, "flash_attn": True}),
        Preset("iddpm-cifar10", "improved-diffusion CIFAR-10 UNetModel (learned sigma, attention at 16x16 and 8x8)",
               {"family": "guided", "image_size": 32, "in_channels": 3, "model_channels": 128, "out_channels": 6,
                "num_res_blocks": 3, "attention_resolutions": [2, 4], "dropout": 0.3,
                "channel_mult": [1, 2, 2, 2], "num_heads": 4}),
        Preset("adm-imagenet256", "guided-diffusion ImageNet 256x256 class-conditional UNetModel (ADM)",
               {"family": "guided", "image_size": 256, "in_channels": 3, "model_channels": 256, "out_channels": 6,
                "num_res_blocks": 2, "attention_resolutions": [8, 16, 32], "channel_mult": [1, 1, 2, 2, 4, 4],
                "num_classes": 1000, "num_head_channels": 64, "use_scale_shift_norm": True,
                "resblock_updown": True}),
        Preset("ronneberger2015", "The original U-Net (Ronneberger et al. 2015): unpadded convs, crop-and-concat",
               {"family": "ronneberger"}),
    ]
}
