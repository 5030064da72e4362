"""UNetMotionModel (AnimateDiff): SD's 2-D U-Net with a motion module after every resnet/attention pair; sizes
are FxHxW at the model's edges and HxW per frame inside, the motion modules attend over the frames; and the real
diffusers model on meta."""

from __future__ import annotations

import math
from typing import Any

import fuzzkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.core.config import Args
from unetviz.engine.tracer import Tracer
from unetviz.families import BY_CLASS

ANIMATEDIFF_PARAMS = 1_312_730_244  # parameters of from_unet2d(sd15, MotionAdapter()) on diffusers 0.42.1
ANIMATEDIFF_STATE = 1_313_334_404  # state_dict elements: the parameters plus every pos_embed.pe buffer
TINY: dict[str, Any] = {  # the shape of diffusers' own UNetMotionModel test model
    "_class_name": "UNetMotionModel", "block_out_channels": [32, 64], "layers_per_block": 1,
    "norm_num_groups": 16, "down_block_types": ["CrossAttnDownBlockMotion", "DownBlockMotion"],
    "up_block_types": ["UpBlockMotion", "CrossAttnUpBlockMotion"], "cross_attention_dim": 16,
    "num_attention_heads": 2, "motion_num_attention_heads": 4, "motion_max_seq_length": 8, "sample_size": 16,
    "frames": 3,
}


def _trace_at(config: dict[str, Any], size: tuple[int, ...]) -> unetviz.Trace:
    """The builder at an (F, H, W) size (the CLI's FxHxW), straight through the registry record."""
    family = BY_CLASS[config["_class_name"]]
    t = Tracer(family.family, family.model)
    out = family.build(t, Args({k: v for k, v in config.items() if k != "_class_name"}, family.defaults,
                               family.what), size)
    return t.build(out)


# ---- symbolic ----------------------------------------------------------------------------------------------
def test_animatediff_sizes_carry_frames() -> None:
    t = unetviz.trace("animatediff")
    assert t.in_size == (16, 64, 64) and t.out_size == (16, 64, 64) and (t.in_channels, t.out_channels) == (4, 4)
    assert t.params == ANIMATEDIFF_PARAMS and t.error is None
    assert sum(math.prod(shape) for _, shape in t.manifest) == ANIMATEDIFF_STATE and len(t.manifest) == 1253
    assert [s.size for s in t.skips][:4] == [(64, 64)] * 3 + [(32, 32)] and len(t.concats) == 12
    motion = [u for u in t.units if u.type == "AnimateDiffTransformer3D"]
    assert len(motion) == 8 + 1 + 12  # every down and up layer, and the mid block
    norm = next(x for x in t.layers if x.path == "down_blocks.0.motion_modules.0.norm")
    assert norm.in_size == (16, 64, 64)  # the GroupNorm sees (B, C, F, H, W)
    q = next(x for x in t.layers if x.path == "down_blocks.0.motion_modules.0.transformer_blocks.0.attn1.to_q")
    spatial = next(x for x in t.layers if x.path == "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q")
    assert (q.tokens, spatial.tokens) == (16, 64 * 64)  # over the frames of a pixel / the pixels of a frame
    assert ("down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe", (1, 32, 320)) in t.manifest
    assert "down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe" in t.buffers


def test_frames_from_config_and_size() -> None:
    assert unetviz.trace({**TINY, "frames": 5}, size="20x28").in_size == (5, 20, 28)
    assert unetviz.trace({k: v for k, v in TINY.items() if k != "frames"}, size="8x8").in_size == (16, 8, 8)
    t = _trace_at(TINY, (2, 20, 28))
    assert t.in_size == (2, 20, 28) and t.out_size == (2, 20, 28) and t.size_source == "--size (FxHxW)"
    assert [s.size for s in t.skips] == [(20, 28), (20, 28), (10, 14), (10, 14)]


def test_more_frames_than_positions_fail_at_the_first_pos_embed() -> None:
    t = unetviz.trace({**TINY, "frames": 9})  # motion_max_seq_length 8
    assert t.error is not None and t.error.at == "down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed"


def test_without_a_motion_mid_block() -> None:
    t = unetviz.trace({**TINY, "use_motion_mid_block": False})
    assert ("mid_block", "UNetMidBlock2DCrossAttn") in t.blocks
    assert not any(x.path.startswith("mid_block.motion_modules") for x in t.layers)


@pytest.mark.parametrize("change, message", [
    ({"down_block_types": ["CrossAttnDownBlock2D", "DownBlockMotion"]}, "down_block_types"),
    ({"up_block_types": ["UpBlockMotion"]}, "up_block_types has 1"),
    ({"num_attention_heads": [2, 2, 2]}, "num_attention_heads has 3"),
    ({"num_attention_heads": 64}, "head size of 0"),
    ({"motion_num_attention_heads": 0}, "motion_num_attention_heads"),
    ({"motion_num_attention_heads": 64}, "head size of 0"),
    ({"norm_num_groups": None}, "norm_num_groups"),
    ({"norm_num_groups": 24}, "norm_num_groups"),
    ({"transformer_layers_per_block": [[1], 1]}, "reverse_transformer_layers_per_block"),
    ({"temporal_transformer_layers_per_block": [[1, 1], 1], "reverse_temporal_transformer_layers_per_block": 1},
     "has 1 layers"),
    ({"temporal_transformer_layers_per_mid_block": None}, "temporal_transformer_layers_per_mid_block"),
    ({"frames": 0}, "frames"),
])
def test_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match=message):
        unetviz.trace({**TINY, **change})


# ---- the real model -----------------------------------------------------------------------------------------
def test_manifest_equals_diffusers() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream import motion

    config = unetviz.api.resolve("animatediff")[0]
    model = motion.build("UNetMotionModel", {k: v for k, v in config.items() if not k.startswith("_")})
    assert list(unetviz.trace("animatediff").manifest) == [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert sum(p.numel() for p in model.parameters()) == ANIMATEDIFF_PARAMS


@pytest.mark.parametrize("size", [None, "40x56"])
def test_verify(size: str | None) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    config: Any = {**unetviz.api.resolve("animatediff")[0], "frames": 2}
    report = unetviz.verify(config, size)
    assert not _structural(report), _structural(report)[:5]
    assert report.counts["concats"] == 12 and report.counts["skips"] == 12


def test_verify_text_time_and_2d_mid_block() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    config = {**TINY, "addition_embed_type": "text_time", "addition_time_embed_dim": 4,
              "projection_class_embeddings_input_dim": 40, "use_motion_mid_block": False, "time_cond_proj_dim": 8}
    assert not _structural(unetviz.verify(config, "12x12"))


def _structural(report: Any) -> list[Any]:
    """Every disagreement but the MACs ones: the symbolic MACs of a video model count one frame (and one pixel
    for a temporal transformer) where the real forward runs B*F (B*H*W) rows (see tests/test_unet3d.py)."""
    return [d for d in report.disagreements if not d.what.startswith("macs")]


# ---- differential -------------------------------------------------------------------------------------------
@st.composite
def motion_configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, int]]:
    n = draw(st.integers(1, 3))
    cfg: dict[str, Any] = {
        "_class_name": "UNetMotionModel",
        "block_out_channels": draw(st.lists(st.sampled_from([8, 12, 16, 24]), min_size=n, max_size=n)),
        "down_block_types": draw(st.lists(st.sampled_from(["CrossAttnDownBlockMotion", "DownBlockMotion"]),
                                          min_size=n, max_size=n)),
        "up_block_types": draw(st.lists(st.sampled_from(["UpBlockMotion", "CrossAttnUpBlockMotion"]), min_size=n,
                                        max_size=n)),
        "norm_num_groups": draw(st.sampled_from([1, 2, 4])), "num_attention_heads": draw(st.sampled_from([1, 2, 3])),
        "motion_num_attention_heads": draw(st.sampled_from([1, 2, 4, 8])),
        "layers_per_block": draw(st.integers(0, 2)), "cross_attention_dim": draw(st.sampled_from([8, 16])),
        "transformer_layers_per_block": draw(st.integers(0, 2)),
        "temporal_transformer_layers_per_block": draw(st.integers(0, 2)),
        "use_motion_mid_block": draw(st.booleans()), "mid_block_layers": draw(st.integers(0, 2)),
        "use_linear_projection": draw(st.booleans()), "motion_max_seq_length": draw(st.sampled_from([2, 32])),
        "downsample_padding": draw(st.sampled_from([0, 1])), "time_cond_proj_dim": draw(st.sampled_from([None, 4])),
        "in_channels": draw(st.integers(1, 4)), "out_channels": draw(st.integers(1, 4)),
        "frames": draw(st.integers(1, 3)),
    }
    return cfg, (draw(st.integers(3, 20)), draw(st.integers(3, 20)))


def _check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream import motion

    # the MACs are compared apart (see _structural)
    fuzzkit.check(cfg["_class_name"], motion.build, cfg, size, ignore=("macs",))


COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=6, derandomize=True, **COMMON)
@given(motion_configs())
def test_generated_motion_agree(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(motion_configs())
def test_generated_motion_agree_long(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)
