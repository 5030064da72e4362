"""Both namings from the CLI and the JSON: --naming, keymap, --check of an original-naming file, LoRA block ids."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import pytest
from conftest import cli

import unetviz
from unetviz.checkpoints.keymaps import block_id, diffusers_config, twins


@pytest.mark.parametrize(("diffusers", "original"), [("sd15", "sd15-ldm"), ("sd21", "sd21-ldm"), ("sdxl", "sdxl-sgm")])
def test_each_naming_of_a_preset_is_the_other_presets_manifest(diffusers: str, original: str) -> None:
    assert unetviz.weights(diffusers, naming="original").tensors == unetviz.weights(original).tensors
    assert unetviz.weights(original, naming="diffusers").tensors == unetviz.weights(diffusers).tensors


@pytest.mark.parametrize("preset", ["sd15-ldm", "sd21-ldm", "sdxl-sgm"])
def test_an_ldm_config_has_a_diffusers_twin_with_the_same_tensors(preset: str) -> None:
    pair = twins(unetviz.api.resolve(preset)[0])
    assert len(pair.keys) == len(unetviz.weights(preset).tensors)
    assert unetviz.trace(diffusers_config(unetviz.api.resolve(preset)[0])).params == unetviz.trace(preset).params


def test_keymap_exports_both_directions(tmp_path: Path) -> None:
    j = json.loads(cli("keymap", "sd15", "-f", "json").stdout)
    assert j["count"] == 686 and j["diffusers_to_original"]["conv_in.weight"] == "input_blocks.0.0.weight"
    assert j["original_to_diffusers"]["middle_block.1.proj_in.weight"] == "mid_block.attentions.0.proj_in.weight"
    rows = list(csv.DictReader(io.StringIO(cli("keymap", "sdxl", "-f", "csv").stdout)))
    assert len(rows) == 1680 and len({r["original"] for r in rows}) == 1680
    bad = cli("keymap", "ddpm-cifar10")
    assert bad.returncode == 2 and "one naming only" in bad.stderr


def test_check_of_an_original_naming_header_with_its_prefix(tmp_path: Path) -> None:
    original = unetviz.weights("sd15", naming="original").tensors
    tensors = {f"model.diffusion_model.{k}": list(v) for k, v in original.items()}
    tensors.update({f"first_stage_model.decoder.{i}.weight": [3] for i in range(248)})
    header = {k: {"dtype": "F16", "shape": v, "data_offsets": [0, 0]} for k, v in tensors.items()}
    blob = json.dumps(header).encode()
    path = tmp_path / "v1-5.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    r = cli("weights", "sd15", "--check", str(path))
    assert r.returncode == 0, r.stdout
    assert "686 tensors match (under the prefix 'model.diffusion_model.') in the original naming" in r.stdout
    assert "248 other tensors" in r.stdout


def test_json_layers_carry_the_original_path_and_the_lora_block() -> None:
    d = unetviz.trace("sd15").to_dict()
    by_path = {x["path"]: x for x in d["layers"]}
    assert by_path["up_blocks.1.resnets.0.conv_shortcut"]["original"] == "output_blocks.3.0.skip_connection"
    assert by_path["down_blocks.1.downsamplers.0.conv"]["block_id"] == "IN06"
    assert by_path["mid_block.attentions.0.proj_in"]["block_id"] == "MID"
    assert {x.get("block_id") for x in d["layers"]} >= {f"IN{i:02d}" for i in range(12)} | {f"OUT{i:02d}" for i in
                                                                                           range(12)}
    assert "original" not in unetviz.trace("ddpm-cifar10").to_dict()["layers"][0]


def test_block_ids() -> None:
    assert [block_id(p) for p in ("input_blocks.4.1.proj_in", "middle_block.0", "output_blocks.11.1", "out.2")] == [
        "IN04", "MID", "OUT11", ""]


def test_an_original_inference_yaml_is_a_config(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (tmp_path / "v1-inference.yaml").write_text(
        "model:\n  target: ldm.models.diffusion.ddpm.LatentDiffusion\n  params:\n    image_size: 64\n"
        "    unet_config:\n      target: ldm.modules.diffusionmodules.openaimodel.UNetModel\n      params:\n"
        "        image_size: 32\n        in_channels: 4\n        out_channels: 4\n        model_channels: 320\n"
        "        attention_resolutions: [4, 2, 1]\n        num_res_blocks: 2\n        channel_mult: [1, 2, 4, 4]\n"
        "        num_heads: 8\n        use_spatial_transformer: true\n        transformer_depth: 1\n"
        "        context_dim: 768\n        legacy: false\n")
    t = unetviz.trace(tmp_path / "v1-inference.yaml")
    assert t.family == "ldm" and t.in_size == (64, 64) and t.params == unetviz.trace("sd15").params
