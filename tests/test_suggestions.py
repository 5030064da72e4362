"""Errors that help (issue 22 item 8): hub names as preset aliases, a did-you-mean that only suggests close
names, long lists folded, a config file given to `inspect` named for what it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import unetviz
from unetviz.core.errors import did_you_mean, listed
from unetviz.presets import PRESETS, find_preset


@pytest.mark.parametrize(("typed", "preset"), [
    ("runwayml/stable-diffusion-v1-5", "sd15"), ("stable-diffusion-v1-5/stable-diffusion-v1-5/unet", "sd15"),
    ("Stabilityai/Stable-Diffusion-XL-Base-1.0", "sdxl"), ("stabilityai/stable-diffusion-2-1", "sd21"),
    ("DeepFloyd/IF-I-XL-v1.0", "if-i-xl"), ("SD15", "sd15")])
def test_hub_names_find_their_preset(typed: str, preset: str) -> None:
    assert find_preset(typed).name == preset
    assert unetviz.trace(typed).params == unetviz.trace(preset).params


def test_only_close_names_are_suggested() -> None:
    assert did_you_mean("sd16", PRESETS) == "; did you mean 'sd15'?"
    assert did_you_mean("sdx1", PRESETS) == "; did you mean 'sdxl'?"
    assert did_you_mean("layers_per_blok", ["layers_per_block", "block_out_channels"]).endswith("'layers_per_block'?")
    assert did_you_mean("FluxTransformer2DModel", ["UNet2DModel", "UNet2DConditionModel"]) == ""
    assert did_you_mean("stable-diffusion-v1-5", list(PRESETS)) == ""  # not 'dance-diffusion'


def test_long_lists_are_folded() -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        find_preset("xyz")
    text = str(e.value)
    assert "did you mean" not in text and f"({len(PRESETS)} in all: unetviz presets)" in text and len(text) < 200
    assert listed(["a", "b"], "x") == "a, b"


def test_inspect_names_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"_class_name": "FluxTransformer2DModel", "num_layers": 19}))
    with pytest.raises(unetviz.UnetvizError, match=r"is a model config \('FluxTransformer2DModel'\), not a weights"):
        unetviz.inspect(config)
