"""The video U-Nets: UNet3DConditionModel (ModelScope T2V) and UNetSpatioTemporalConditionModel (SVD): sizes are
FxHxW at the model's edges and HxW per frame inside, temporal layers see the frames; and the real diffusers models
on meta.

Exact verification needs the core patch of issue 12 part 3 (/tmp/w12b/core.patch: an observer that reads a
video model's frames axis and its per-frame blocks and token sequences, a unit that owns a twice-called module's
parameters once): until it lands the real-model comparisons are expected to fail.
"""

from __future__ import annotations

from typing import Any

import fuzzkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.core.config import Args
from unetviz.engine.tracer import Tracer
from unetviz.families import BY_CLASS

MODELSCOPE_PARAMS = 1_411_233_860  # state_dict elements on diffusers 0.42.1
SVD_PARAMS = 1_524_623_082
TINY_3D: dict[str, Any] = {  # diffusers' own UNet3DConditionModel test model
    "_class_name": "UNet3DConditionModel", "block_out_channels": [32, 64, 64, 64], "cross_attention_dim": 32,
    "attention_head_dim": 4, "layers_per_block": 2, "sample_size": 32, "frames": 3,
}
TINY_SVD: dict[str, Any] = {
    "_class_name": "UNetSpatioTemporalConditionModel", "block_out_channels": [32, 64], "cross_attention_dim": 32,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"], "num_attention_heads": [2, 4],
    "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 24, "layers_per_block": 2,
    "sample_size": 16, "num_frames": 3,
}


def _trace_at(config: dict[str, Any], size: tuple[int, ...]) -> unetviz.Trace:
    """The builder at an (F, H, W) size (the CLI's FxHxW), straight through the registry record."""
    family = BY_CLASS[config["_class_name"]]
    t = Tracer(family.family, family.model)
    out = family.build(t, Args({k: v for k, v in config.items() if k != "_class_name"}, family.defaults,
                               family.what), size)
    return t.build(out)


# ---- symbolic ----------------------------------------------------------------------------------------------
def test_modelscope_sizes_carry_frames() -> None:
    t = unetviz.trace("modelscope-t2v")
    assert t.in_size == (16, 32, 32) and t.out_size == (16, 32, 32) and (t.in_channels, t.out_channels) == (4, 4)
    assert t.params == MODELSCOPE_PARAMS and t.error is None
    assert [s.size for s in t.skips][:4] == [(32, 32)] * 3 + [(16, 16)]  # per frame: frames live in the batch
    temporal = next(x for x in t.layers if x.path == "down_blocks.0.temp_convs.0.conv1.2")
    assert (temporal.type, temporal.in_size, temporal.kernel) == ("Conv3d", (16, 32, 32), (3, 1, 1))
    frames = next(x for x in t.layers if x.path == "down_blocks.0.temp_attentions.0.proj_in")
    assert frames.tokens == 16  # the temporal transformer attends over the 16 frames of each pixel
    assert "transformer_in" in [b for b, _ in t.blocks] and len(t.concats) == 12


def test_svd_sizes_carry_frames() -> None:
    t = unetviz.trace("svd")
    assert t.in_size == (14, 96, 96) and t.out_size == (14, 96, 96) and (t.in_channels, t.out_channels) == (8, 4)
    assert t.params == SVD_PARAMS and len(t.skips) == 12
    mixers = [x for x in t.layers if x.type == "AlphaBlender"]
    assert len(mixers) == 22 + 16  # one per resnet and one per transformer
    spatial = next(x for x in t.layers if x.path == "down_blocks.0.attentions.0.proj_in")
    temporal = next(x for x in t.layers if x.path == "down_blocks.0.attentions.0.temporal_transformer_blocks.0"
                    ".attn1.to_q")
    assert (spatial.tokens, temporal.tokens) == (96 * 96, 14)


def test_frames_from_config_and_size() -> None:
    assert unetviz.trace({**TINY_3D, "frames": 5}, size="20x28").in_size == (5, 20, 28)
    assert unetviz.trace({**TINY_SVD, "frames": None}).in_size == (3, 16, 16)  # num_frames
    assert unetviz.trace({k: v for k, v in TINY_3D.items() if k != "frames"}).in_size == (16, 32, 32)
    t = _trace_at(TINY_3D, (2, 20, 28))
    assert t.in_size == (2, 20, 28) and t.out_size == (2, 20, 28) and t.size_source == "--size (FxHxW)"
    assert _trace_at(TINY_SVD, (4, 8, 8)).out_size == (4, 8, 8)


@pytest.mark.parametrize("config, change, message", [
    (TINY_3D, {"num_attention_heads": 8}, "num_attention_heads"),
    (TINY_3D, {"attention_head_dim": [4, 4, 4, 4]}, "attention_head_dim"),
    (TINY_3D, {"attention_head_dim": 128}, "larger than"),
    (TINY_3D, {"norm_num_groups": None}, "norm_num_groups"),
    (TINY_3D, {"down_block_types": ["CrossAttnDownBlock2D"] * 4}, "unknown block type"),
    (TINY_3D, {"frames": 0}, "frames"),
    (TINY_SVD, {"num_attention_heads": [2, 4, 4]}, "num_attention_heads has 3"),
    (TINY_SVD, {"num_attention_heads": [64, 4]}, "head size of 0"),
    (TINY_SVD, {"block_out_channels": [48, 64]}, "block_out_channels"),
    (TINY_SVD, {"transformer_layers_per_block": [[1], 1]}, "transformer_layers_per_block"),
])
def test_config_errors(config: dict[str, Any], change: dict[str, Any], message: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match=message):
        unetviz.trace({**config, **change})


def test_svd_heads_that_do_not_divide_the_channels_fail_where_diffusers_does() -> None:
    t = unetviz.trace({**TINY_SVD, "num_attention_heads": [3, 4]})  # 32 channels in 3 heads: 30-wide tokens
    assert t.error is not None and t.error.at == "down_blocks.0.attentions.0" and "emb" in t.error.message


# ---- the real model -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("source, size", [("modelscope-t2v", None), ("modelscope-t2v", "20x28"), ("svd", None),
                                          ("svd", "18x30")])
def test_verify(source: str, size: str | None) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    config: Any = source if size is None else {**unetviz.api.resolve(source)[0], "frames": 2}
    report = unetviz.verify(config, size)
    assert not _structural(report), _structural(report)[:5]
    assert report.counts["concats"] == len(unetviz.trace(config, size).concats)


def _structural(report: Any) -> list[Any]:
    """Every disagreement but the MACs ones: the symbolic MACs of a video model count one frame (and one pixel
    for a temporal transformer) where the real forward runs B*F (B*H*W) rows, until a layer row can say how many
    batch rows it runs on (issue 12 part 3's report); ``test_macs_count_every_frame`` waits for that."""
    return [d for d in report.disagreements if not d.what.startswith("macs")]


def test_macs_count_every_frame() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    assert unetviz.verify(TINY_3D).ok


# ---- differential -------------------------------------------------------------------------------------------
@st.composite
def unet3d_configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, int]]:
    n = draw(st.integers(1, 3))
    cfg: dict[str, Any] = {
        "_class_name": "UNet3DConditionModel", "block_out_channels": draw(st.lists(st.sampled_from([8, 12, 16, 24]),
                                                                                 min_size=n, max_size=n)),
        "down_block_types": draw(st.lists(st.sampled_from(["CrossAttnDownBlock3D", "DownBlock3D"]), min_size=n,
                                          max_size=n)),
        "up_block_types": draw(st.lists(st.sampled_from(["UpBlock3D", "CrossAttnUpBlock3D"]), min_size=n,
                                        max_size=n)),
        "norm_num_groups": draw(st.sampled_from([1, 2, 4])), "attention_head_dim": draw(st.sampled_from([2, 4, 8])),
        "layers_per_block": draw(st.integers(0, 2)), "cross_attention_dim": draw(st.sampled_from([8, 16])),
        "downsample_padding": draw(st.sampled_from([0, 1])), "time_cond_proj_dim": draw(st.sampled_from([None, 4])),
        "in_channels": draw(st.integers(1, 4)), "out_channels": draw(st.integers(1, 4)),
        "frames": draw(st.integers(1, 3)),
    }
    return cfg, (draw(st.integers(3, 20)), draw(st.integers(3, 20)))


@st.composite
def svd_configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, int]]:
    n = draw(st.integers(1, 3))
    boc = draw(st.lists(st.sampled_from([32, 64]), min_size=n, max_size=n))
    cfg: dict[str, Any] = {
        "_class_name": "UNetSpatioTemporalConditionModel", "block_out_channels": boc,
        "down_block_types": draw(st.lists(st.sampled_from(["CrossAttnDownBlockSpatioTemporal",
                                                           "DownBlockSpatioTemporal"]), min_size=n, max_size=n)),
        "up_block_types": draw(st.lists(st.sampled_from(["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"]),
                                        min_size=n, max_size=n)),
        "num_attention_heads": draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=n, max_size=n)),
        "cross_attention_dim": draw(st.sampled_from([8, 16])), "layers_per_block": draw(st.integers(0, 2)),
        "transformer_layers_per_block": draw(st.integers(1, 2)), "addition_time_embed_dim": 4,
        "projection_class_embeddings_input_dim": draw(st.sampled_from([12, 12, 12, 8])),
        "in_channels": draw(st.integers(1, 4)), "out_channels": draw(st.integers(1, 4)),
        "num_frames": draw(st.integers(1, 3)),
    }
    return cfg, (draw(st.integers(3, 20)), draw(st.integers(3, 20)))


def _check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream import family_module

    # the MACs are compared apart (see _structural)
    fuzzkit.check(cfg["_class_name"], family_module(BY_CLASS[cfg["_class_name"]]).build, cfg, size, ignore=("macs",))


COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=4, derandomize=True, **COMMON)
@given(unet3d_configs())
def test_generated_unet3d_agree(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


@settings(max_examples=4, derandomize=True, **COMMON)
@given(svd_configs())
def test_generated_svd_agree(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(unet3d_configs())
def test_generated_unet3d_agree_long(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(svd_configs())
def test_generated_svd_agree_long(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)
