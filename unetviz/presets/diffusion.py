"""Diffusion U-Nets' published configs: Stable Diffusion 1.5/2.1/XL (diffusers and original naming), DDPM,
improved/guided diffusion, lucidrains, the 2015 U-Net, ControlNet, audio, video, DeepFloyd IF, Kandinsky, Karlo,
NCSN++ and the x2 latent upscaler."""

from __future__ import annotations

from typing import Any

from ..core.inputs import InputSpec
from .record import Preset

_PIXELS_TEXT = InputSpec(rank="image", space="pixel", context=True, channels="the image's channels (RGB: 3)")
_LATENT_UNCOND = InputSpec(rank="image", space="latent", factor=8,
                           channels="the autoencoder's latent (Stable Diffusion's VAE: 4)")
_MOVQ = InputSpec(rank="image", space="latent", factor=8, context=True,
                  channels="MoVQ's latent (4; its image is 8x larger)")
_UPSCALER = InputSpec(rank="image", space="latent", factor=8, context=True,
                      channels="the noisy latent and the low-resolution image's latent, 4 + 4")
_SVD = InputSpec(rank="video", space="latent", factor=8, context=True,
                 channels="per frame, the noisy latent and the conditioning image's latent, 4 + 4")

_SD_DOWN = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
_SD_UP = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
_SD15: dict[str, Any] = {
    "_class_name": "UNet2DConditionModel", "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": _SD_DOWN, "up_block_types": _SD_UP, "layers_per_block": 2, "attention_head_dim": 8,
    "cross_attention_dim": 768, "in_channels": 4, "out_channels": 4, "sample_size": 64,
}


DIFFUSION: tuple[Preset, ...] = (
        Preset(
            name="sd15",
            aliases=("runwayml/stable-diffusion-v1-5", "stable-diffusion-v1-5/stable-diffusion-v1-5",
                     "stable-diffusion-v1-5", "CompVis/stable-diffusion-v1-4"),
            description="Stable Diffusion 1.5 UNet (runwayml/stable-diffusion-v1-5 unet/config.json)",
            config=_SD15),
        Preset(
            name="sd21",
            aliases=("stabilityai/stable-diffusion-2-1", "stable-diffusion-2-1"),
            description="Stable Diffusion 2.1 UNet (768-v): linear projections, 64-channel heads",
            config={**_SD15, "attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024,
                "use_linear_projection": True, "upcast_attention": True, "sample_size": 96}),
        Preset(
            name="sdxl",
            aliases=("stabilityai/stable-diffusion-xl-base-1.0", "stable-diffusion-xl-base-1.0", "sdxl-base"),
            description="Stable Diffusion XL base 1.0 UNet: 3 levels, 10-deep transformers, text_time embeds",
            config={"_class_name": "UNet2DConditionModel", "block_out_channels": [320, 640, 1280],
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "transformer_layers_per_block": [1, 2, 10], "attention_head_dim": [5, 10, 20],
                "cross_attention_dim": 2048, "use_linear_projection": True, "addition_embed_type": "text_time",
                "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
                "layers_per_block": 2, "in_channels": 4, "out_channels": 4, "sample_size": 128}),
        Preset(
            name="ddpm-cifar10",
            aliases=("google/ddpm-cifar10-32",),
            description="DDPM CIFAR-10 (google/ddpm-cifar10-32), pixel space 32x32",
            config={"_class_name": "UNet2DModel", "block_out_channels": [128, 256, 256, 256],
                "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
                "downsample_padding": 0, "flip_sin_to_cos": False, "freq_shift": 1, "norm_eps": 1e-6,
                "attention_head_dim": None, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
                "sample_size": 32}),
        Preset(
            name="unet2d-attn-64",
            input=_LATENT_UNCOND,
            description="A learner's latent 64x64 UNet2DModel (layers_per_block 2, attention in the inner levels)",
            config={"_class_name": "UNet2DModel", "sample_size": 64, "in_channels": 4, "out_channels": 4,
                "layers_per_block": 2, "block_out_channels": [64, 128, 256, 512],
                "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
                "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"]}),
        Preset(
            name="ddpm-lucidrains",
            description="lucidrains' denoising-diffusion-pytorch Unet, its README's model (dim 64, mults 1,2,4,8)",
            config={"family": "lucidrains", "dim": 64, "dim_mults": [1, 2, 4, 8], "channels": 3, "flash_attn": True}),
        Preset(
            name="iddpm-cifar10",
            description="improved-diffusion CIFAR-10 UNetModel (learned sigma, attention at 16x16 and 8x8)",
            config={"family": "guided", "image_size": 32, "in_channels": 3, "model_channels": 128, "out_channels": 6,
                "num_res_blocks": 3, "attention_resolutions": [2, 4], "dropout": 0.3,
                "channel_mult": [1, 2, 2, 2], "num_heads": 4}),
        Preset(
            name="adm-imagenet256",
            description="guided-diffusion ImageNet 256x256 class-conditional UNetModel (ADM)",
            config={"family": "guided", "image_size": 256, "in_channels": 3, "model_channels": 256, "out_channels": 6,
                "num_res_blocks": 2, "attention_resolutions": [8, 16, 32], "channel_mult": [1, 1, 2, 2, 4, 4],
                "num_classes": 1000, "num_head_channels": 64, "use_scale_shift_norm": True,
                "resblock_updown": True}),
        Preset(
            name="ronneberger2015",
            description="The original U-Net (Ronneberger et al. 2015): unpadded convs, crop-and-concat",
            config={"family": "ronneberger"}),
        Preset(
            name="sd15-ldm",
            description="Stable Diffusion 1.x UNet in the original naming: CompVis stable-diffusion"
                        " configs/stable-diffusion/v1-inference.yaml, model.params.unet_config.params; image_size 64"
                        " is the 512x512 latent (LatentDiffusion's image_size; the unet's own 32 is marked unused)",
            config={"family": "ldm", "image_size": 64, "in_channels": 4, "out_channels": 4, "model_channels": 320,
                    "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
                    "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": 768,
                    "use_checkpoint": True, "legacy": False}),
        Preset(
            name="sd21-ldm",
            description="Stable Diffusion 2.1 (768-v) UNet in the original naming: Stability-AI stablediffusion"
                        " configs/stable-diffusion/v2-inference-v.yaml, model.params.unet_config.params; image_size 96"
                        " is the 768x768 latent (the unet's own 32 is marked unused)",
            config={"family": "ldm", "use_checkpoint": True, "use_fp16": True, "image_size": 96, "in_channels": 4,
                    "out_channels": 4, "model_channels": 320, "attention_resolutions": [4, 2, 1],
                    "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_head_channels": 64,
                    "use_spatial_transformer": True, "use_linear_in_transformer": True, "transformer_depth": 1,
                    "context_dim": 1024, "legacy": False}),
        Preset(
            name="sdxl-sgm",
            description="Stable Diffusion XL base 1.0 UNet in the original naming: Stability-AI generative-models"
                        " configs/inference/sd_xl_base.yaml, model.params.network_config.params; image_size 128"
                        " (the 1024x1024 latent) added, as sgm's UNetModel has none",
            config={"family": "ldm", "image_size": 128, "adm_in_channels": 2816, "num_classes": "sequential",
                    "use_checkpoint": True, "in_channels": 4, "out_channels": 4, "model_channels": 320,
                    "attention_resolutions": [4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 4],
                    "num_head_channels": 64, "use_spatial_transformer": True, "use_linear_in_transformer": True,
                    "transformer_depth": [1, 2, 10], "context_dim": 2048,
                    "spatial_transformer_attn_type": "softmax-xformers", "legacy": False}),
        Preset(
            name="controlnet-sd15",
            aliases=("lllyasviel/sd-controlnet-canny",),
            description="ControlNet for Stable Diffusion 1.5, canny edges (lllyasviel/sd-controlnet-canny"
                        " config.json): SD 1.5's encoder and mid block copied, a 3-channel hint embedded 8x down;"
                        " pair it with sd15",
            config={"_class_name": "ControlNetModel", "act_fn": "silu", "attention_head_dim": 8,
                    "block_out_channels": [320, 640, 1280, 1280], "class_embed_type": None,
                    "conditioning_embedding_out_channels": [16, 32, 96, 256],
                    "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 768,
                    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                         "DownBlock2D"],
                    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
                    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
                    "num_class_embeds": None, "only_cross_attention": False,
                    "projection_class_embeddings_input_dim": None, "resnet_time_scale_shift": "default",
                    "upcast_attention": False, "use_linear_projection": False}),
        Preset(
            name="dance-diffusion",
            aliases=("harmonai/maestro-150k",),
            description="Dance Diffusion, harmonai/maestro-150k unet/config.json (16 kHz piano audio, 65536 samples):"
                        " harmonai's DiffusionAttnUnet1D (depth 14, attention in the 7 inner levels and the mid"
                        " block) as diffusers' conversion lays it out; time_embedding_dim 16 added, the 8 Fourier"
                        " frequencies its checkpoint stores (diffusers >= 0.36 otherwise builds 128 and the first"
                        " block gets 258 channels instead of 18)",
            config={"_class_name": "UNet1DModel", "block_out_channels": [128, 128, 256, 256] + [512] * 9,
                    "down_block_types": ["DownBlock1DNoSkip"] + ["DownBlock1D"] * 5 + ["AttnDownBlock1D"] * 7,
                    "up_block_types": ["AttnUpBlock1D"] * 7 + ["UpBlock1D"] * 5 + ["UpBlock1DNoSkip"],
                    "mid_block_type": "UNetMidBlock1D", "extra_in_channels": 16, "flip_sin_to_cos": True,
                    "freq_shift": 0, "in_channels": 2, "out_channels": 2, "sample_rate": 16000,
                    "sample_size": 65536, "time_embedding_type": "fourier", "use_timestep_embedding": False,
                    "time_embedding_dim": 16}),
        Preset(
            name="modelscope-t2v",
            aliases=("ali-vilab/text-to-video-ms-1.7b", "damo-vilab/text-to-video-ms-1.7b"),
            description="ModelScope text-to-video (ali-vilab/text-to-video-ms-1.7b unet/config.json, formerly"
                        " damo-vilab; Zeroscope v2 fine-tunes the same network): SD's 2-D blocks with a temporal conv"
                        " after every resnet and"
                        " a temporal transformer after every spatial one, on OpenCLIP-H text (77 tokens x 1024);"
                        " traced at 16 frames (the pipeline's default num_frames) of 32x32 latents",
            config={"_class_name": "UNet3DConditionModel", "act_fn": "silu", "attention_head_dim": 64,
                    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 1024,
                    "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D",
                                         "DownBlock3D"],
                    "downsample_padding": 1, "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1,
                    "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4, "sample_size": 32,
                    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D",
                                       "CrossAttnUpBlock3D"]}),
        Preset(
            name="svd",
            aliases=("stabilityai/stable-video-diffusion-img2vid", "stabilityai/stable-video-diffusion-img2vid-xt"),
            input=_SVD,
            description="Stable Video Diffusion image-to-video (stabilityai/stable-video-diffusion-img2vid"
                        " unet/config.json; -xt differs only in num_frames 25): spatio-temporal resnets and"
                        " transformers mixed by learned AlphaBlenders, conditioned on a CLIP image embedding and"
                        " three added time ids; 8 input channels (the noisy latent and the image latent), 14 frames"
                        " of 96x96 latents",
            config={"_class_name": "UNetSpatioTemporalConditionModel", "addition_time_embed_dim": 256,
                    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 1024,
                    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                                         "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
                    "in_channels": 8, "layers_per_block": 2, "num_attention_heads": [5, 10, 20, 20],
                    "num_frames": 14, "out_channels": 4, "projection_class_embeddings_input_dim": 768,
                    "sample_size": 96, "transformer_layers_per_block": 1,
                    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                                       "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"]}),
        Preset(
            name="animatediff",
            aliases=("guoyww/animatediff-motion-adapter-v1-5-2",),
            description="AnimateDiff v2 (guoyww/animatediff-motion-adapter-v1-5-2 on Stable Diffusion 1.5): the"
                        " config AnimateDiffPipeline builds with UNetMotionModel.from_unet2d(unet, motion_adapter)"
                        " from runwayml/stable-diffusion-v1-5 unet/config.json and the adapter's motion settings"
                        " (8 motion heads, motion_max_seq_length 32, 2 motion layers per block, a motion mid"
                        " block; MotionAdapter's defaults, which the v1-5-2 adapter uses); SD 1.5's 2-D blocks"
                        " with a temporal transformer after every resnet/attention pair, traced at 16 frames (the"
                        " pipeline's default num_frames) of 64x64 latents",
            config={"_class_name": "UNetMotionModel", "act_fn": "silu", "block_out_channels": [320, 640, 1280, 1280],
                    "cross_attention_dim": 768,
                    "down_block_types": ["CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion",
                                         "CrossAttnDownBlockMotion", "DownBlockMotion"],
                    "downsample_padding": 1, "in_channels": 4, "layers_per_block": 2, "mid_block_layers": 1,
                    "mid_block_scale_factor": 1, "motion_max_seq_length": 32, "motion_num_attention_heads": 8,
                    "norm_eps": 1e-05, "norm_num_groups": 32, "num_attention_heads": 8, "out_channels": 4,
                    "sample_size": 64, "temporal_transformer_layers_per_block": 1,
                    "temporal_transformer_layers_per_mid_block": 1, "transformer_layers_per_block": 1,
                    "up_block_types": ["UpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion",
                                       "CrossAttnUpBlockMotion"],
                    "use_linear_projection": False, "use_motion_mid_block": True}),
        Preset(
            name="if-i-xl",
            aliases=("DeepFloyd/IF-I-XL-v1.0",),
            input=_PIXELS_TEXT,
            description="DeepFloyd IF stage I, 4.3B (DeepFloyd/IF-I-XL-v1.0 unet/config.json, checked against a"
                        " verbatim re-save, lucostiguy11/dreambooth_if@c2434e5, and diffusers' scripts/convert_if.py:"
                        " model_channels 704 x (1, 2, 3, 4), T5-XXL context of 4096"
                        " projected to 2816, attention pooling of the text into the time embedding): a pixel-space"
                        " 64x64 U-Net of SimpleCrossAttn blocks (added k/v from the text, group-normed)",
            config={"_class_name": "UNet2DConditionModel", "act_fn": "gelu", "addition_embed_type": "text",
                    "addition_embed_type_num_heads": 64, "attention_head_dim": 64,
                    "block_out_channels": [704, 1408, 2112, 2816], "class_embed_type": None,
                    "cross_attention_dim": 2816, "cross_attention_norm": "group_norm",
                    "down_block_types": ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                         "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
                    "encoder_hid_dim": 4096, "encoder_hid_dim_type": "text_proj", "in_channels": 3,
                    "layers_per_block": 3, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn", "out_channels": 6,
                    "resnet_time_scale_shift": "scale_shift", "sample_size": 64, "time_embedding_act_fn": None,
                    "up_block_types": ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                       "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"]}),
        Preset(
            name="kandinsky22-decoder",
            aliases=("kandinsky-community/kandinsky-2-2-decoder",),
            input=_MOVQ,
            description="Kandinsky 2.2 decoder (kandinsky-community/kandinsky-2-2-decoder unet/config.json): the"
                        " Kandinsky 2.1 U-Net (diffusers' scripts/convert_kandinsky_to_diffusers.py UNET_CONFIG)"
                        " conditioned on a CLIP ViT-bigG image embedding (1280) only: image_proj makes 32 context"
                        " tokens of 768 and an ImageTimeEmbedding is added to the time embedding; 64x64 MoVQ latents",
            config={"_class_name": "UNet2DConditionModel", "act_fn": "silu", "addition_embed_type": "image",
                    "addition_embed_type_num_heads": 64, "attention_head_dim": 64,
                    "block_out_channels": [384, 768, 1152, 1536], "class_embed_type": None,
                    "cross_attention_dim": 768, "cross_attention_norm": None,
                    "down_block_types": ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                         "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
                    "encoder_hid_dim": 1280, "encoder_hid_dim_type": "image_proj", "in_channels": 4,
                    "layers_per_block": 3, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn", "norm_eps": 1e-05,
                    "norm_num_groups": 32, "out_channels": 8, "resnet_time_scale_shift": "scale_shift",
                    "sample_size": 64,
                    "up_block_types": ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                       "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"]}),
        Preset(
            name="karlo-decoder",
            aliases=("kakaobrain/karlo-v1-alpha",),
            input=_PIXELS_TEXT,
            description="Karlo / unCLIP decoder (kakaobrain/karlo-v1-alpha decoder/config.json, as diffusers'"
                        " scripts/convert_kakao_brain_unclip_to_diffusers.py DECODER_CONFIG writes it): 64x64 pixels"
                        " from a CLIP image embedding, added to the time embedding as an identity class embedding"
                        " and attended as extra context tokens (1536) by the SimpleCrossAttn blocks",
            config={"_class_name": "UNet2DConditionModel", "attention_head_dim": 64,
                    "block_out_channels": [320, 640, 960, 1280], "class_embed_type": "identity",
                    "cross_attention_dim": 1536,
                    "down_block_types": ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                                         "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
                    "in_channels": 3, "layers_per_block": 3, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
                    "out_channels": 6, "resnet_time_scale_shift": "scale_shift", "sample_size": 64,
                    "up_block_types": ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
                                       "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"]}),
        Preset(
            name="ncsnpp-celebahq-256",
            aliases=("google/ncsnpp-celebahq-256",),
            description="Score-SDE NCSN++ (google/ncsnpp-celebahq-256 config.json, the model diffusers' NCSN++"
                        " tests load): seven levels of Skip blocks whose FIR-resampled image path runs beside the"
                        " features, Gaussian Fourier time embedding, min(C/4, 32) groups (norm_num_groups null);"
                        " 256x256 pixels",
            config={"_class_name": "UNet2DModel", "act_fn": "silu", "attention_head_dim": None,
                    "block_out_channels": [128, 128, 256, 256, 256, 256, 256], "center_input_sample": False,
                    "down_block_types": ["SkipDownBlock2D", "SkipDownBlock2D", "SkipDownBlock2D", "SkipDownBlock2D",
                                         "AttnSkipDownBlock2D", "SkipDownBlock2D", "SkipDownBlock2D"],
                    "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 3,
                    "layers_per_block": 2, "mid_block_scale_factor": 1.41421356237, "norm_eps": 1e-06,
                    "norm_num_groups": None, "out_channels": 3, "sample_size": 256, "time_embedding_type": "fourier",
                    "up_block_types": ["SkipUpBlock2D", "SkipUpBlock2D", "AttnSkipUpBlock2D", "SkipUpBlock2D",
                                       "SkipUpBlock2D", "SkipUpBlock2D", "SkipUpBlock2D"]}),
        Preset(
            name="sd-x2-latent-upscaler",
            aliases=("stabilityai/sd-x2-latent-upscaler",),
            input=_UPSCALER,
            description="Stable Diffusion x2 latent upscaler (stabilityai/sd-x2-latent-upscaler unet/config.json at"
                        " 12f0a89, written by diffusers' scripts/convert_k_upscaler_to_diffusers.py): Katherine"
                        " Crowson's k-diffusion U-Net, with AdaGroupNorm resnets conditioned on the time embedding"
                        " and an 896-d noise-level/pooled-text vector, cross-attention-only blocks, 4x4 resampling"
                        " kernels and no mid block. sample_size is null: unetviz uses a 64x64 latent; upscaling a"
                        " 512 px image runs it at 128x128 (noisy and low-res latents concatenated)",
            config={"_class_name": "UNet2DConditionModel", "act_fn": "gelu", "attention_head_dim": 64,
                    "block_out_channels": [384, 384, 768, 768], "center_input_sample": False,
                    "class_embed_type": None, "conv_in_kernel": 1, "conv_out_kernel": 1, "cross_attention_dim": 768,
                    "down_block_types": ["KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D",
                                         "KCrossAttnDownBlock2D"],
                    "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True,
                    "freq_shift": 0, "in_channels": 8, "layers_per_block": 4, "mid_block_scale_factor": 1,
                    "mid_block_type": None, "norm_eps": 1e-05, "norm_num_groups": None, "num_class_embeds": None,
                    "only_cross_attention": False, "out_channels": 5, "resnet_time_scale_shift": "scale_shift",
                    "sample_size": None, "time_cond_proj_dim": 896, "time_embedding_type": "fourier",
                    "timestep_post_act": "gelu",
                    "up_block_types": ["KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D",
                                       "KUpBlock2D"],
                    "upcast_attention": False, "use_linear_projection": False}),
)
