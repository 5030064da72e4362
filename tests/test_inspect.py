"""``unetviz inspect``: what a checkpoint is, from its header alone; and bad files, refused in one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from conftest import cli

import unetviz
from unetviz.checkpoints.inspect import inspect_shapes

ORIGINAL = "model.diffusion_model."


def header_file(path: Path, tensors: dict[str, list[int]] | dict[str, tuple[int, ...]]) -> Path:
    header = {k: {"dtype": "F16", "shape": list(v), "data_offsets": [0, 0]} for k, v in tensors.items()}
    blob = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


@pytest.mark.parametrize(("preset", "prefix", "naming", "matches"), [
    ("sd15-ldm", ORIGINAL, "original", "SD 1.x"), ("sd21-ldm", ORIGINAL, "original", "SD 2.x"),
    ("sdxl-sgm", ORIGINAL, "original", "SDXL base"), ("sd15", "unet.", "diffusers", "SD 1.x"),
    ("sd21", "", "diffusers", "SD 2.x"), ("sdxl", "unet.", "diffusers", "SDXL base"),
])
def test_a_header_gives_a_config_whose_trace_has_the_real_params(tmp_path: Path, preset: str, prefix: str,
                                                                 naming: str, matches: str) -> None:
    w = unetviz.weights(preset)
    tensors = {prefix + k: v for k, v in w.tensors.items()}
    tensors.update({f"first_stage_model.encoder.{i}.weight": (8,) for i in range(4)} if prefix == ORIGINAL else {})
    found, check = unetviz.api.inspect(header_file(tmp_path / "x.safetensors", tensors))
    assert check is not None and found.kind == "unet"
    assert (found.unet.naming, found.unet.prefix, found.unet.matches) == (naming, prefix, matches)
    assert check.ok and check.matched == found.tensors == len(w.tensors)
    assert unetviz.trace(found.unet.config).params == w.params
    if prefix == ORIGINAL:
        assert found.unet.other_components == {"first_stage_model": 4}


def test_an_inpainting_header_is_named_and_traced(tmp_path: Path) -> None:
    tensors = {ORIGINAL + k: v for k, v in unetviz.weights("sd15-ldm").tensors.items()}
    tensors[ORIGINAL + "input_blocks.0.0.weight"] = (320, 9, 3, 3)
    path = header_file(tmp_path / "inpaint.safetensors", tensors)
    r = cli("inspect", str(path), "-f", "json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["schema"] == "unetviz.inspect/1" and d["matches"] == "SD 1.x inpainting"
    assert d["config"]["in_channels"] == 9 and d["matched"] == d["tensors"] == 686 and "num_heads" in d["undetermined"]
    t = cli("table", "--config", str(path), "-f", "json")
    assert t.returncode == 0 and json.loads(t.stdout)["input"]["channels"] == 9


def test_the_real_models_state_dict_headers(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    cfg = {k: v for k, v in unetviz.api.resolve("sd15")[0].items() if not k.startswith("_")}
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**cfg)
    tensors = {f"unet.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    found = inspect_shapes(tensors)
    assert found.matches == "SD 1.x" and unetviz.weights(found.config).tensors == {
        k[5:]: v for k, v in tensors.items()}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "data", "needle"), [
    ("short.safetensors", b"\x01\x02", "too short"),
    ("past.safetensors", struct.pack("<Q", 500) + b"{}", "declares a 500-byte header"),
    ("notjson.safetensors", struct.pack("<Q", 5) + b"hello", "not JSON"),
    ("huge.safetensors", struct.pack("<Q", 101 * 1024 * 1024) + b"{}", "at most"),
    ("model.ckpt", b"\x80\x04\x95 pickle", "pickle file"),
    ("list.safetensors", struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ("empty.safetensors", struct.pack("<Q", 2) + b"{}", "holds no Stable-Diffusion-style U-Net"),
])
def test_a_bad_file_gets_one_line_and_exit_2(tmp_path: Path, name: str, data: bytes, needle: str) -> None:
    r = cli("inspect", str(_write(tmp_path / name, data)))
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert needle in r.stderr and r.stdout == ""


REFINER = {"family": "ldm", "adm_in_channels": 2560, "num_classes": "sequential", "in_channels": 4, "out_channels": 4,
           "model_channels": 384, "attention_resolutions": [4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
           "num_head_channels": 64, "use_spatial_transformer": True, "use_linear_in_transformer": True,
           "transformer_depth": 4, "context_dim": 1280, "legacy": False}
"""Stability-AI generative-models configs/inference/sd_xl_refiner.yaml, network_config.params."""


def test_the_check_hint_names_the_model_the_file_is(tmp_path: Path) -> None:
    refiner = {ORIGINAL + k: v for k, v in unetviz.weights(REFINER).tensors.items()}
    r = cli("weights", "sdxl", "--check", str(header_file(tmp_path / "refiner.safetensors", refiner)))
    assert r.returncode == 1 and "hint: the file holds SDXL refiner U-Net (original naming)" in r.stdout
    assert "another naming" not in r.stdout  # both namings were tried: none is suggested
    inpaint = {ORIGINAL + k: v for k, v in unetviz.weights("sd15-ldm").tensors.items()}
    inpaint[ORIGINAL + "input_blocks.0.0.weight"] = (320, 9, 3, 3)
    r = cli("weights", "sd15", "--check", str(header_file(tmp_path / "inpaint.safetensors", inpaint)))
    assert r.returncode == 1 and "685 tensors match" in r.stdout and "SD 1.x inpainting U-Net" in r.stdout


def test_naming_is_kept_or_refused(tmp_path: Path) -> None:
    path = header_file(tmp_path / "v1-5.safetensors", {ORIGINAL + k: v for k, v in
                                                       unetviz.weights("sd15-ldm").tensors.items()})
    kept = json.loads(cli("weights", "sd15", "--check", str(path), "--naming", "original", "-f", "json").stdout)
    assert kept["ok"] and kept["naming"] == "original" and kept["namings_tried"] == ["original"]
    other = cli("weights", "sd15", "--check", str(path), "--naming", "diffusers", "-f", "json")
    assert other.returncode == 1 and json.loads(other.stdout)["matched"] == 0
    refused = cli("weights", "ddpm-cifar10", "--check", str(path), "--naming", "original")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "only the diffusers naming" in refused.stderr


def _header(path: Path, header: object) -> Path:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


def test_hostile_headers_of_other_kinds(tmp_path: Path) -> None:
    lora = {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight":
            {"dtype": "F16", "shape": [4, 768], "data_offsets": [0, 0]}}
    bad_shape = _header(tmp_path / "bad.safetensors", {**lora, "x.lora_up.weight": {"shape": "abc"}})
    deep = tmp_path / "deep.safetensors"
    deep.write_bytes(struct.pack("<Q", 200_002) + b"[" * 100_001 + b"]" * 100_001)
    entry = {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 0]}
    long_keys = _header(tmp_path / "long.safetensors", {"a.lora_A." * 5000 + str(i): entry for i in range(40)})
    for path in (bad_shape, deep, long_keys):
        r = cli("inspect", str(path), "-f", "json")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stdout == "", r.stderr
    # metadata is untrusted text: a value that is no string, a tag list that is no JSON or nested too deep
    for meta in ({"ss_tag_frequency": {"a": 1}}, {"ss_tag_frequency": "[" * 100_000}, ["not", "a", "dict"],
                 {"ss_tag_frequency": '{"1_x": {"tag": "many"}}'}):
        r = cli("inspect", str(_header(tmp_path / "meta.safetensors", {"__metadata__": meta, **lora})), "-f", "json")
        d = json.loads(r.stdout)
        assert r.returncode == 0 and d["kind"] == "lora" and d["base"] == "SD 1.x" and "triggers" not in d
