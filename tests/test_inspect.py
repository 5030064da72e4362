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
    assert (found.naming, found.prefix, found.matches) == (naming, prefix, matches)
    assert check.ok and check.matched == found.tensors == len(w.tensors)
    assert unetviz.trace(found.config).params == w.params
    if prefix == ORIGINAL:
        assert found.other_components == {"first_stage_model": 4}


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
