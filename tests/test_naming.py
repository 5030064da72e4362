"""The diffusers <-> original (ldm/sgm) naming of the same Stable Diffusion UNet, computed from the traces."""

from __future__ import annotations

from typing import Any

import pytest

import unetviz
from unetviz.checkpoints.naming import keymap, original_config, original_path
from unetviz.core.errors import UnetvizError
from unetviz.tracing import constructed, resolve

PAIRS = [("sd15", "sd15-ldm"), ("sd21", "sd21-ldm"), ("sdxl", "sdxl-sgm")]
SAME_RUN = ("use_checkpoint", "use_fp16", "spatial_transformer_attn_type")
"""Preset keys that change how the original model runs, not which modules it has."""


@pytest.mark.parametrize(("diffusers", "original"), PAIRS)
def test_every_tensor_maps_one_to_one_with_equal_shapes(diffusers: str, original: str) -> None:
    km = keymap(constructed(diffusers), constructed(original))
    mine, theirs = constructed(diffusers).manifest, dict(constructed(original).manifest)
    assert [(k, s) for k, _, s in km] == list(mine)
    assert sorted(o for _, o, _ in km) == sorted(theirs) and all(theirs[o] == s for _, o, s in km)
    assert len(km) == len(theirs)


@pytest.mark.parametrize(("diffusers", "original"), PAIRS)
def test_original_config_of_a_diffusers_preset_is_the_published_one(diffusers: str, original: str) -> None:
    config, _ = resolve(diffusers)
    published, _ = resolve(original)
    assert original_config(config) == {k: v for k, v in published.items() if k not in SAME_RUN}
    t = unetviz.trace(original_config(config))
    assert t.params == unetviz.trace(diffusers).params


@pytest.mark.parametrize(("path", "preset", "expected"), [
    ("conv_in.weight", "sd15", "input_blocks.0.0.weight"),
    ("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", "sd15",
     "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"),
    ("down_blocks.1.resnets.0.conv_shortcut", "sd15", "input_blocks.4.0.skip_connection"),
    ("down_blocks.0.downsamplers.0", "sd15", "input_blocks.3.0"),
    ("down_blocks.0.attentions.0.transformer_blocks.0.ff", "sd15", "input_blocks.1.1.transformer_blocks.0.ff"),
    ("mid_block.attentions.0", "sd21", "middle_block.1"),
    ("mid_block", "sd21", "middle_block"),
    ("up_blocks.0.upsamplers.0.conv", "sd15", "output_blocks.2.1.conv"),
    ("up_blocks.1.attentions.2", "sd15", "output_blocks.5.1"),
    ("up_blocks.3.resnets.2", "sd15", "output_blocks.11.0"),
    ("time_embedding", "sd15", "time_embed"),
    ("conv_norm_out", "sd15", "out.0"),
    ("conv_out.bias", "sdxl", "out.2.bias"),
    ("add_embedding.linear_2.weight", "sdxl", "label_emb.0.2.weight"),
    ("down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k.weight", "sdxl",
     "input_blocks.8.1.transformer_blocks.9.attn2.to_k.weight"),
])
def test_original_paths(path: str, preset: str, expected: str) -> None:
    assert original_path(path, preset) == expected


@pytest.mark.parametrize(("path", "match"), [("down_blocks.1", "no single original module"),
                                             ("nonsense.0", "holds no layer")])
def test_paths_without_one_original_module(path: str, match: str) -> None:
    with pytest.raises(UnetvizError, match=match):
        original_path(path, "sd15")


@pytest.mark.parametrize(("change", "match"), [
    ({"class_embed_type": "timestep"}, r"^class_embed_type"),
    ({"up_block_types": ["UpBlock2D"] * 4}, r"^up_block_types"),
    ({"attention_head_dim": [5, 10, 10, 20]}, r"^attention_head_dim"),
    ({"norm_num_groups": 16}, r"^norm_num_groups"),
])
def test_diffusers_configs_without_an_original_counterpart(change: dict[str, Any], match: str) -> None:
    config, _ = resolve("sd15")
    with pytest.raises(UnetvizError, match=match):
        original_config({**config, **change})


def test_different_networks_do_not_map() -> None:
    with pytest.raises(UnetvizError, match="keymap"):
        keymap(constructed("sd15"), constructed("sd21-ldm"))
