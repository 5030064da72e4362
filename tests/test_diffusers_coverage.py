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
IF_II_L = {  # DeepFloyd/IF-II-L-v1.0 unet/config.json as re-saved verbatim by
    # williamberman/dreambooth_me_upscale@5b91a01 (its tail and time_embedding_dim from diffusers' convert_if.py)
    "_class_name": "UNet2DConditionModel", "act_fn": "gelu", "addition_embed_type": "text",
    "addition_embed_type_num_heads": 64, "attention_head_dim": 64, "block_out_channels": [160, 320, 640, 960, 1280],
    "class_embed_type": "timestep", "class_embeddings_concat": False, "cross_attention_dim": 1280,
    "cross_attention_norm": "group_norm",
    "down_block_types": ["ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D",
                         "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D"],
    "encoder_hid_dim": 4096, "encoder_hid_dim_type": "text_proj", "in_channels": 6, "layers_per_block": [2, 2, 3, 5, 5],
    "mid_block_only_cross_attention": None, "mid_block_scale_factor": 1.4142271248762552,
    "mid_block_type": "UNetMidBlock2DSimpleCrossAttn", "only_cross_attention": False, "out_channels": 6,
    "resnet_out_scale_factor": 1.4142271248762552, "resnet_skip_time_act": True,
    "resnet_time_scale_shift": "scale_shift",
    "sample_size": 256, "time_embedding_act_fn": "gelu", "time_embedding_dim": 1280,
    "up_block_types": ["SimpleCrossAttnUpBlock2D", "SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D",
                       "ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"]}
KARLO_SUPER_RES = {  # scripts/convert_kakao_brain_unclip_to_diffusers.py SUPER_RES_UNET_FIRST_STEPS_CONFIG
    "_class_name": "UNet2DModel", "sample_size": 256, "layers_per_block": 3,
    "down_block_types": ["ResnetDownsampleBlock2D"] * 4, "up_block_types": ["ResnetUpsampleBlock2D"] * 4,
    "block_out_channels": [320, 640, 960, 1280], "in_channels": 6, "out_channels": 3, "add_attention": False}
GLIGEN = {  # masterful/gligen-1-4-generation-text-box unet/config.json at d66573d (+101a3d0: attention_type)
    "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280], "center_input_sample": False, "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1, "attention_type": "gated", "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4,
    "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}
AUDIOLDM = {  # cvssp/audioldm-m-full as re-saved by manosp/audio_inversion_cat@68d7a4c (the keys that differ
    # from UNet2DConditionModel's defaults; projection_class_embeddings_input_dim from AudioLDM's FiLM dim)
    "_class_name": "UNet2DConditionModel", "attention_head_dim": 8, "block_out_channels": [192, 384, 576, 960],
    "class_embed_type": "simple_projection", "class_embeddings_concat": True,
    "cross_attention_dim": [192, 384, 576, 960],
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "in_channels": 8, "out_channels": 8, "projection_class_embeddings_input_dim": 512, "sample_size": 128,
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]}
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
    "sd-x2-latent-upscaler": ("sd-x2-latent-upscaler", "48x80"),
    "gligen-text-box": (GLIGEN, "48x80"),
    "gligen-text-image": ({**GLIGEN, "attention_type": "gated-text-image"}, "40x56"),
    "audioldm-m-full": (AUDIOLDM, "128x64"),
}
FIGURES = {  # name: (params, state_dict tensors)
    "if-i-xl": (4_304_695_110, 775), "if-ii-l": (1_243_277_190, 939), "kandinsky21": (1_228_661_768, 726),
    "kandinsky22-decoder": (1_253_057_288, 724), "karlo-decoder": (885_439_686, 716),
    "karlo-super-res": (691_579_523, 408), "ncsnpp-celebahq-256": (65_574_549, 645),
    "ncsnpp-ema": (65_574_549, 645), "sd-x2-latent-upscaler": (372_560_645, 639),
    "gligen-text-box": (1_068_623_204, 966), "gligen-text-image": (1_069_707_108, 973),
    "audioldm-m-full": (415_954_568, 690),
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
    firs = [x for x in t.layers if x.type == "conv2d"]
    assert firs and all(x.params == 0 for x in firs)
    shortcut = next(x for x in t.layers if x.path == "down_blocks.0.resnet_down.conv_shortcut")
    assert (shortcut.in_channels, shortcut.out_channels) == (128, 128)  # use_in_shortcut=True


def test_score_sde_fails_where_the_real_model_fails() -> None:
    t = _trace("ncsnpp-celebahq-256", 100)  # 100 -> 50 -> 25 -> 12: the decoder's 24 meets a 25 skip
    assert t.error is not None and t.error.at is not None and t.error.at.startswith("up_blocks.")


def test_ema_keys_are_ignored_with_a_warning() -> None:
    t = _trace(CONFIGS["ncsnpp-ema"][0])
    assert t.params == FIGURES["ncsnpp-celebahq-256"][0]


def test_k_diffusion_skips_none_and_unused_entries() -> None:
    """The upscaler's last down block hands the decoder None x 4; each up block takes 4 entries and
    concatenates only the last: 1536 = 768 + 768 at 16x16."""
    t = _trace("sd-x2-latent-upscaler")
    empty = [s for s in t.skips if s.empty]
    assert [s.unit for s in empty] == [f"down_blocks.3.attentions.{j}" for j in range(4)]
    assert all(s.taken == "up_blocks.0" and s.to is None for s in empty)
    unused = [s.index for s in t.skips if s.taken is not None and not s.empty]
    assert len(unused) == 9 and [s.to for s in t.skips if s.to] == ["up_blocks.3.resnets.0", "up_blocks.2.resnets.0",
                                                                   "up_blocks.1.resnets.0"]
    first = t.concats[0]
    assert (first.consumer, first.channels, first.size) == ("up_blocks.1.resnets.0", 1536, (16, 16))
    assert [(op.channels, op.source) for op in first.inputs] == [(768, "up_blocks.0.upsamplers.0"),
                                                                 (768, "down_blocks.2.attentions.3")]
    kinds = {u.type: u.kind for u in t.units}
    assert kinds["ResnetBlockCondNorm2D"] == "resnet" and kinds["KDownsample2D"] == "downsample"


def test_k_diffusion_samplers_are_fixed_kernels() -> None:
    """KDownsample2D's kernel is a non-persistent buffer: not in the state_dict; its conv is a C x C MAC row."""
    t = _trace("sd-x2-latent-upscaler")
    assert not any("downsamplers" in k or "upsamplers" in k for k, _ in t.manifest)
    row = next(x for x in t.layers if x.path == "down_blocks.0.downsamplers.0")
    assert (row.type, row.in_size, row.out_size, row.kernel) == ("conv2d", (66, 66), (32, 32), (4, 4))


@pytest.mark.parametrize(("size", "at"), [("60x64", "up_blocks.1.resnets.0"), ("1x1", "down_blocks.0.downsamplers.0")])
def test_k_diffusion_fails_where_the_real_model_fails(size: str, at: str) -> None:
    """60 rows: 60 -> 30 -> 15 -> 7, and 7 -> 14 does not meet the 15-row skip; 1x1: reflect padding fails."""
    t = _trace("sd-x2-latent-upscaler", size)
    assert t.error is not None and t.error.at == at
    pytest.importorskip("diffusers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = unetviz.verify("sd-x2-latent-upscaler", size)
    assert report.ok and report.error_real is not None, report.disagreements[:5]


def test_audioldm_passes_no_context() -> None:
    """Per-block context widths no single context fits: the caller passes None and attn2 attends to the image."""
    t = _trace(AUDIOLDM)
    assert t.error is None
    rows = {x.path: x for x in t.layers}
    keys = [p for p in rows if p.endswith("attn2.to_k")]
    # keys come from the image tokens (as many as the queries), as wide as the block
    assert len(keys) == 16 and all(rows[p].tokens == rows[p.replace("to_k", "to_q")].tokens != 77 and
                                   rows[p].in_channels == rows[p.replace("to_k", "to_q")].in_channels for p in keys)
    assert any("none is passed" in u.note for u in t.units)


def test_gligen_fuser_reads_the_grounding_tokens() -> None:
    t = _trace(GLIGEN)
    fuser = [x for x in t.layers if x.path == "down_blocks.0.attentions.0.transformer_blocks.0.fuser.attn.to_q"]
    assert fuser and fuser[0].tokens == 64 * 64 + 30
    assert [k for k, _ in t.manifest][-8:][0] == "position_net.null_positive_feature"


def test_gligen_needs_one_context_width() -> None:
    with pytest.raises(unetviz.UnetvizError, match="needs one integer"):
        _trace({**GLIGEN, "cross_attention_dim": [768] * 4})


def test_dual_cross_attention_fails_where_diffusers_fails() -> None:
    t = _trace({**resolve("sd15")[0], "dual_cross_attention": True})
    assert t.error is not None and t.error.at == "down_blocks.0.attentions.0"
    assert t.params == 1_126_760_324


def test_context_option_feeds_the_trace_and_the_real_model() -> None:
    """A 1024-wide context into SD 1.5 fails at the first attn2.to_k, as the real model does; none makes every
    attn2 attend to the image, and its to_k (built for 768) fails on the 320 image channels."""
    t = _trace("sd15")
    assert t.context == (77, 768)
    wide = unetviz.trace("sd15", context="77x1024")
    assert wide.context == (77, 1024) and wide.error is not None
    assert wide.error.at == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    assert "gets 1024 from encoder_hidden_states" in wide.error.message
    longer = unetviz.trace("sd15", context=(257, 768))
    assert longer.error is None and {x.tokens for x in longer.layers if x.path.endswith("attn2.to_k")} == {257}
    assert unetviz.trace("sd15", context="none").context is None
    pytest.importorskip("diffusers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for context in ("77x1024", "257x768", "none"):
            report = unetviz.verify("sd15", context=context)
            assert report.ok, (context, report.disagreements[:3])


@pytest.mark.parametrize("bad", ["77", "0x768", "1x2x3", "wide"])
def test_context_option_refuses_bad_values(bad: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match="--context"):
        unetviz.trace("sd15", context=bad)


def test_context_option_needs_a_conditioned_model() -> None:
    with pytest.raises(unetviz.UnetvizError, match="UNet2DConditionModel configs only"):
        unetviz.trace("ddpm-cifar10", context="77x768")
    with pytest.raises(unetviz.UnetvizError, match="encoder_hid_proj"):
        unetviz.trace("if-i-xl", context="none")


def test_a_conv_in_that_shrinks_the_map_is_a_sampler() -> None:
    """conv_in_kernel 2 (padding 0) maps 2x2 to 1x1: the observer calls that step a downsample, so must the trace."""
    config = {"_class_name": "UNet2DConditionModel", "block_out_channels": [6, 2, 2], "norm_num_groups": 2,
              "down_block_types": ["AttnDownBlock2D"] * 3, "up_block_types": ["AttnUpBlock2D"] * 3,
              "attention_head_dim": 2, "cross_attention_dim": 8, "conv_in_kernel": 2, "conv_out_kernel": 1}
    t = _trace(config, (2, 2))
    assert next(u.kind for u in t.units if u.path == "conv_in") == "downsample"
    pytest.importorskip("diffusers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert unetviz.verify(config, (2, 2)).ok
