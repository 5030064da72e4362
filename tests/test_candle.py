"""candle's UNet2DConditionModelConfig, traced as the diffusers model it mirrors, against real diffusers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.families import lookup
from unetviz.families.candle import DEFAULTS, from_config
from unetviz.live.upstream import candle as real_candle
from unetviz.live.upstream import diffusers as real_diffusers

SD15 = Path(__file__).parent.parent / "examples" / "candle-sd15.json"


def kwargs_of(config: dict[str, Any]) -> dict[str, Any]:
    return lookup(config)[1]


def state(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def kv_widths(t: unetviz.Trace, attn: str) -> set[int]:
    return {x.in_channels for x in t.layers if x.path.endswith((f"{attn}.to_k", f"{attn}.to_v"))}


@pytest.fixture(scope="module")
def sd15_config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(SD15.read_text())
    return config


def test_v1_5_is_stable_diffusion_1_5(sd15_config: dict[str, Any]) -> None:
    t = unetviz.trace(SD15)
    assert (t.family, t.model, t.error) == ("candle", "UNet2DConditionModel", None)
    assert (t.in_channels, t.in_size, t.out_channels, t.out_size) == (4, (64, 64), 4, (64, 64))
    # the text context is CLIP ViT-L/14's 768-wide hidden state: attn2 projects it to 8 heads x head_dim
    assert kv_widths(t, "attn2") == {768}
    assert kv_widths(t, "attn1") == {320, 640, 1280}  # self-attention: keys from the block's own channels
    first = next(x for x in t.layers if x.path.endswith("attn2.to_k"))
    assert (first.path, first.out_channels) == ("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 320)
    # the manifest is diffusers' SD 1.5 UNet's state_dict, key for key
    sd15 = unetviz.PRESETS["sd15"].config
    model = real_diffusers.build("UNet2DConditionModel", kwargs_of(sd15))
    assert state(model) == list(t.manifest)
    assert (len(t.manifest), t.params) == (len(model.state_dict()), sum(p.numel() for p in model.parameters()))
    assert (len(t.manifest), t.params) == (686, 859_520_964)
    assert t.manifest == unetviz.trace("sd15").manifest
    # and the model candle's own config builds is that one too
    assert state(real_candle.build(None, kwargs_of(sd15_config))) == list(t.manifest)


def test_struct_default_is_not_sd15() -> None:
    t = unetviz.trace({"family": "candle"})
    assert t.error is None and t.config["cross_attention_dim"] == 1280
    assert t.size_source == "family default (candle: 512x512 image / 8)"
    assert kv_widths(t, "attn2") == {1280}  # would need a 1280-wide context: not SD 1.5's CLIP (768)
    model = real_candle.build(None, {})
    assert state(model) == list(t.manifest)
    k = model.state_dict()["down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"]
    assert tuple(k.shape) == (320, 1280)
    assert t.params != unetviz.trace(SD15).params


def test_translation() -> None:
    d = from_config({})
    assert d["down_block_types"] == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert d["up_block_types"] == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert d["block_out_channels"] == [320, 640, 1280, 1280]
    assert d["attention_head_dim"] == [8, 8, 8, 8]  # heads, as in candle's SpatialTransformer
    assert d["transformer_layers_per_block"] == [1, 1, 1, 1]
    assert len(DEFAULTS["blocks"]) == 4


def test_mid_block_depth_follows_last_block() -> None:
    blocks = [{"out_channels": 32, "use_cross_attn": 1, "attention_head_dim": 2},
              {"out_channels": 64, "use_cross_attn": 3, "attention_head_dim": 4}]
    cfg = {"family": "candle", "blocks": blocks, "norm_num_groups": 8, "cross_attention_dim": 16, "sample_size": 16}
    t = unetviz.trace(cfg)
    paths = {x.path for x in t.layers}
    assert "mid_block.attentions.0.transformer_blocks.2.attn2.to_k" in paths  # unwrap_or: depth 3
    assert "up_blocks.0.attentions.0.transformer_blocks.2.attn2.to_k" in paths  # mirrored: 3 first
    assert "up_blocks.1.attentions.0.transformer_blocks.1.norm1" not in paths
    note = next(u.note for u in t.units if u.path == "mid_block.attentions.0")
    assert note.startswith("4 heads x 16")
    assert state(real_candle.build(None, kwargs_of(cfg))) == list(t.manifest)


def test_sizes() -> None:
    assert unetviz.trace(SD15, size="48x80").out_size == (48, 80)
    t = unetviz.trace({"family": "candle", "sample_size": [32, 40]})
    assert (t.in_size, t.size_source) == ((32, 40), "sample_size")


GOOD = {"out_channels": 32, "use_cross_attn": 1, "attention_head_dim": 8}


@pytest.mark.parametrize(("cfg", "key"), [
    ({"blocks": []}, "blocks"), ({"blocks": {"out_channels": 32}}, "blocks"),
    ({"blocks": [GOOD, 5]}, "blocks[1]"),
    ({"blocks": [{"out_channels": 32, "attention_head_dim": 8}]}, "blocks[0].use_cross_attn"),
    ({"blocks": [{**GOOD, "heads": 8}]}, "blocks[0].heads"),
    ({"blocks": [{**GOOD, "use_cross_attn": True}]}, "blocks[0].use_cross_attn"),
    ({"blocks": [{**GOOD, "use_cross_attn": "yes"}]}, "blocks[0].use_cross_attn"),
    ({"blocks": [{**GOOD, "use_cross_attn": 0}]}, "blocks[0].use_cross_attn"),
    ({"blocks": [{**GOOD, "attention_head_dim": 0}]}, "blocks[0].attention_head_dim"),
    ({"blocks": [{**GOOD, "out_channels": -32}]}, "blocks[0].out_channels"),
    ({"norm_num_groups": 7}, "norm_num_groups"), ({"norm_eps": 0}, "norm_eps"),
    ({"sliced_attention_size": -1}, "sliced_attention_size"), ({"layers_per_block": 0}, "layers_per_block"),
    ({"use_linear_projection": "no"}, "use_linear_projection"), ({"freq_shift": "0"}, "freq_shift"),
    ({"sample_size": [1, 2, 3]}, "sample_size"), ({"down_block_types": ["DownBlock2D"]}, "down_block_types"),
])
def test_invalid_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace({"family": "candle", **cfg})
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg, msg


# ---- property test against real diffusers ----------------------------------------------------------------
block = st.fixed_dictionaries({
    "out_channels": st.sampled_from([8, 16, 24, 32]),
    "use_cross_attn": st.one_of(st.none(), st.integers(1, 2)),
    "attention_head_dim": st.sampled_from([1, 2, 4, 8]),
})
configs = st.fixed_dictionaries({
    "blocks": st.lists(block, min_size=1, max_size=4),
    "layers_per_block": st.integers(1, 2), "downsample_padding": st.sampled_from([0, 1]),
    "norm_num_groups": st.sampled_from([1, 2, 4, 8]), "cross_attention_dim": st.integers(4, 48),
    "use_linear_projection": st.booleans(), "in_channels": st.integers(1, 5), "out_channels": st.integers(1, 5),
    "flip_sin_to_cos": st.booleans(), "freq_shift": st.sampled_from([0.0, 1.0]),
    "sliced_attention_size": st.one_of(st.none(), st.integers(0, 4)),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs)
def test_property_manifest_equals_diffusers(cfg: dict[str, Any]) -> None:
    t = unetviz.trace({"family": "candle", **cfg}, size=16)
    model = real_candle.build(None, cfg)
    assert state(model) == list(t.manifest)
    assert t.error is None
    assert t.family == "candle"
    assert kv_widths(t, "attn2") <= {cfg["cross_attention_dim"]}


# ---- unetviz.verify: a hooked forward pass of the real diffusers model ----------------------------------------
def test_verify_v1_5() -> None:
    from unetviz.live.verification import verify

    r = verify(str(SD15))
    assert r.ok, r.disagreements
    assert r.counts["tensors"] == 686 and r.counts["skips"] == 12


def test_verify_small_config_at_size_not_divisible() -> None:
    from unetviz.live.verification import verify

    blocks = [{"out_channels": 16, "use_cross_attn": 1, "attention_head_dim": 2},
              {"out_channels": 32, "use_cross_attn": None, "attention_head_dim": 4},
              {"out_channels": 32, "use_cross_attn": 2, "attention_head_dim": 4}]
    r = verify({"family": "candle", "blocks": blocks, "norm_num_groups": 8, "cross_attention_dim": 24}, "30x44")
    assert r.ok, r.disagreements
    assert r.output_ours == (4, 30, 44)
