"""Coverage of published diffusers 2-D U-Nets (issue 11): SimpleCrossAttn models (DeepFloyd IF, Kandinsky,
unCLIP/Karlo), score-SDE skip blocks (NCSN++), and a config with EMA bookkeeping keys.

Each config is traced and verified against the real diffusers model on meta at its sample size and at a
non-square one: manifest, params, every layer, unit, concat, skip, the MACs and the output agree.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import unetviz
from unetviz.api import resolve
from unetviz.families.diffusers_embed import UNSUPPORTED

SIMPLE_DOWN = ["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D",
               "SimpleCrossAttnDownBlock2D"]
SIMPLE_UP = ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D",
             "ResnetUpsampleBlock2D"]
KANDINSKY21 = {  # diffusers scripts/convert_kandinsky_to_diffusers.py UNET_CONFIG (kandinsky-2-1 unet)
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "addition_embed_type": "text_image",
    "addition_embed_type_num_heads": 64, "attention_head_dim": 64, "block_out_channels": [384, 768, 1152, 1536],
    "class_embed_type": None, "class_embeddings_concat": False, "cross_attention_dim": 768,
    "cross_attention_norm": None, "down_block_types": SIMPLE_DOWN, "encoder_hid_dim": 1024,
    "encoder_hid_dim_type": "text_image_proj", "in_channels": 4, "layers_per_block": 3,
    "mid_block_only_cross_attention": None, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn", "out_channels": 8,
    "resnet_time_scale_shift": "scale_shift", "sample_size": 64, "up_block_types": SIMPLE_UP}
IF_II_L = {  # reconstructed (not confirmed against the hub file): IF stage II's options, scripts/convert_if.py
    "_class_name": "UNet2DConditionModel", "act_fn": "gelu", "addition_embed_type": "text",
    "addition_embed_type_num_heads": 64, "attention_head_dim": 64, "block_out_channels": [320, 640, 1280, 1280],
    "class_embed_type": "timestep", "class_embeddings_concat": False, "cross_attention_dim": 1280,
    "cross_attention_norm": "group_norm",
    "down_block_types": ["ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D",
                         "SimpleCrossAttnDownBlock2D"],
    "encoder_hid_dim": 4096, "in_channels": 6, "layers_per_block": [2, 3, 4, 4],
    "mid_block_only_cross_attention": True, "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
    "only_cross_attention": [False, False, True, True], "out_channels": 6, "resnet_out_scale_factor": 1.4142,
    "resnet_skip_time_act": True, "resnet_time_scale_shift": "scale_shift", "sample_size": 256,
    "time_embedding_act_fn": "gelu",
    "up_block_types": ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D",
                       "ResnetUpsampleBlock2D"]}
KARLO_SUPER_RES = {  # scripts/convert_kakao_brain_unclip_to_diffusers.py SUPER_RES_UNET_FIRST_STEPS_CONFIG
    "_class_name": "UNet2DModel", "sample_size": 256, "layers_per_block": 3,
    "down_block_types": ["ResnetDownsampleBlock2D"] * 4, "up_block_types": ["ResnetUpsampleBlock2D"] * 4,
    "block_out_channels": [320, 640, 960, 1280], "in_channels": 6, "out_channels": 3, "add_attention": False}
EMA_KEYS = {"decay": 0.9999, "inv_gamma": 1.0, "min_decay": 0.0, "optimization_step": 1000, "power": 0.75,
            "update_after_step": 0, "use_ema_warmup": True}

CONFIGS: dict[str, tuple[Any, str]] = {
    # name: (preset or config, a non-square size)
    "if-i-xl": ("if-i-xl", "48x80"),
    "if-ii-l": (IF_II_L, "128x192"),
    "kandinsky21": (KANDINSKY21, "48x80"),
    "kandinsky22-decoder": ("kandinsky22-decoder", "64x96"),
    "karlo-decoder": ("karlo-decoder", "40x56"),
    "karlo-super-res": (KARLO_SUPER_RES, "128x192"),
    "ncsnpp-celebahq-256": ("ncsnpp-celebahq-256", "128x192"),
    "ncsnpp-ema": ({**resolve("ncsnpp-celebahq-256")[0], **EMA_KEYS}, "64x128"),
}
FIGURES = {  # name: (params, state_dict tensors)
    "if-i-xl": (4_304_695_110, 775), "kandinsky21": (1_228_661_768, 726),
    "kandinsky22-decoder": (1_253_057_288, 724), "karlo-decoder": (885_439_686, 716),
    "karlo-super-res": (691_579_523, 408), "ncsnpp-celebahq-256": (65_574_549, 645),
    "ncsnpp-ema": (65_574_549, 645),
}


def _trace(source: Any, size: Any = None) -> unetviz.Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return unetviz.trace(source, size=size)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_params_and_tensors(name: str) -> None:
    t = _trace(CONFIGS[name][0])
    assert t.error is None and (t.params, len(t.manifest)) == FIGURES[name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("at", ["sample", "non-square"])
def test_verify_agrees(name: str, at: str) -> None:
    pytest.importorskip("diffusers")
    source, other = CONFIGS[name]
    size = None if at == "sample" else other
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = unetviz.verify(source, size)
    assert report.ok, report.disagreements[:5]
    assert report.error_ours is None and report.output_ours == report.output_real


def test_simple_cross_attention_keys_and_values() -> None:
    t = _trace("if-i-xl")
    paths = [x.path for x in t.layers if x.path.startswith("down_blocks.1.attentions.0.")]
    # the processor's order: norm_cross (the context), group_norm, to_q, add_k/v (context), to_k/v (image)
    assert [p.rsplit(".", 1)[1] for p in paths if not p.endswith("attentions.0")] == [
        "norm_cross", "group_norm", "to_q", "add_k_proj", "add_v_proj", "to_k", "to_v", "0"]
    add_k = next(x for x in t.layers if x.path == "down_blocks.1.attentions.0.add_k_proj")
    assert (add_k.in_channels, add_k.tokens) == (2816, 77)
    attn = next(x for x in t.layers if x.path == "down_blocks.1.attentions.0" and x.type == "attention")
    assert attn.kv_tokens == 77 + 32 * 32  # keys: the text tokens, then the image's
    keys = [k for k, _ in t.manifest if k.startswith("down_blocks.1.attentions.0.")]
    assert keys[:4] == ["down_blocks.1.attentions.0.group_norm.weight", "down_blocks.1.attentions.0.group_norm.bias",
                        "down_blocks.1.attentions.0.norm_cross.weight", "down_blocks.1.attentions.0.norm_cross.bias"]


def test_kandinsky_context_tokens() -> None:
    k21, k22 = _trace(KANDINSKY21), _trace("kandinsky22-decoder")
    add_k = "down_blocks.1.attentions.0.add_k_proj"
    assert next(x.tokens for x in k21.layers if x.path == add_k) == 10 + 77  # image tokens, then the text's
    assert next(x.tokens for x in k22.layers if x.path == add_k) == 32  # the image only


def test_score_sde_image_path() -> None:
    t = _trace("ncsnpp-celebahq-256")
    skip_in = [x for x in t.layers if x.path.endswith("skip_conv") and x.path.startswith("down_blocks")]
    assert [x.in_channels for x in skip_in] == [3] * 6 and skip_in[0].in_size == (128, 128)
    skip_out = [x for x in t.layers if x.path.endswith("skip_conv") and x.path.startswith("up_blocks")]
    assert [x.out_channels for x in skip_out] == [3] * 6
    firs = [x for x in t.layers if x.type == "conv1d"]
    assert firs and all(x.params == 0 for x in firs)
    shortcut = next(x for x in t.layers if x.path == "down_blocks.0.resnet_down.conv_shortcut")
    assert (shortcut.in_channels, shortcut.out_channels) == (128, 128)  # use_in_shortcut=True


def test_score_sde_fails_where_the_real_model_fails() -> None:
    t = _trace("ncsnpp-celebahq-256", 100)  # 100 -> 50 -> 25 -> 12: the decoder's 24 meets a 25 skip
    assert t.error is not None and t.error.at is not None and t.error.at.startswith("up_blocks.")


def test_ema_keys_are_ignored_with_a_warning() -> None:
    t = _trace(CONFIGS["ncsnpp-ema"][0])
    assert t.params == FIGURES["ncsnpp-celebahq-256"][0]


def test_k_diffusion_blocks_are_refused_clearly() -> None:
    config = {"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64],
              "down_block_types": ["KDownBlock2D", "KCrossAttnDownBlock2D"],
              "up_block_types": ["KCrossAttnUpBlock2D", "KUpBlock2D"], "mid_block_type": None,
              "norm_num_groups": None, "cross_attention_dim": 16, "attention_head_dim": 8}
    with pytest.raises(unetviz.UnetvizError, match=UNSUPPORTED):
        _trace(config)
