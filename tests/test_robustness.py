"""Edge cases found in review: shared state, hostile or malformed inputs, the caller's own model."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import unetviz
from unetviz.api import resolve


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unetviz", *args], capture_output=True, text=True, timeout=120)


def test_a_trace_config_is_read_only_and_shares_nothing() -> None:
    t = unetviz.trace("iddpm-cifar10")
    with pytest.raises((TypeError, AttributeError)):
        t.config["channel_mult"].append(16)
    with pytest.raises(TypeError):
        t.config["num_res_blocks"] = 99  # type: ignore[index]
    config, _ = resolve("sd15")
    config["down_block_types"].append("Bogus2D")
    assert resolve("sd15")[0]["down_block_types"][-1] == "DownBlock2D"
    assert resolve("sd21")[0]["down_block_types"][-1] == "DownBlock2D"


def test_preset_and_config_flags_do_not_blur(tmp_path: Path) -> None:
    (tmp_path / "sd15").write_text("{}")
    r = subprocess.run([sys.executable, "-m", "unetviz", "table", "--config", "sd15"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "no \"family\" key" in r.stderr  # the file, not the preset
    r = run("table", "--preset", str(tmp_path / "sd15"))
    assert r.returncode == 2 and r.stderr.startswith("error: preset: unknown preset")


@pytest.mark.parametrize("text, needle", [
    ('{"_class_name": "UNet2DModel", "layers_per_block": 1000000}', "more than 20,000 layers"),
    ('{"_class_name": "UNet2DModel", "norm_eps": NaN}', "norm_eps: got nan"),
    ('{"_class_name": "UNet2DModel", "block_out_channels": [1e400, 64, 64, 64]}', "block_out_channels: got inf"),
    ('{"family": "guided", "image_size": 32, "in_channels": 3, "model_channels": 128, "out_channels": 3,'
     ' "num_res_blocks": 1, "attention_resolutions": [2], "channel_mult": [1e308]}', "channel_mult: got 1e+308"),
    ('{"family": "candle", "blocks": [{"out_channels": null, "use_cross_attn": null, "attention_head_dim": 8}]}',
     "blocks[0].out_channels: got None"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
])
def test_hostile_configs_are_one_line_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    r = run("table", "--config", str(path), "--format", "json")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


@pytest.mark.parametrize("header, needle", [
    ([1, 2], "not a JSON object"),
    ({"conv_in.weight": {"dtype": "F16"}}, "conv_in.weight: got shape None"),
    ({"conv_in.weight": {"shape": 4}}, "conv_in.weight: got shape 4"),
])
def test_malformed_safetensors_headers_are_one_line_errors(tmp_path: Path, header: object, needle: str) -> None:
    blob = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    r = run("weights", "--preset", "sd15", "--check", str(path))
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_tracing_a_live_module_leaves_it_untouched() -> None:
    pytest.importorskip("torch")
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Conv2d(1, 4, 3, padding=1)
            self.up = nn.Conv2d(8, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.down(x)
            y: torch.Tensor = self.up(torch.cat([h, torch.relu(h)], dim=1))
            return y

    model = Tiny().train()
    before = model.down.weight.detach().clone()
    t = unetviz.trace(model, input=(1, 1, 8, 8))
    assert model.training and model.down.weight.device.type == "cpu"
    assert torch.equal(model.down.weight.detach(), before)
    assert [c.channels for c in t.concats] == [8] and t.out_channels == 1


def test_verify_rejects_a_module_with_a_pointer_to_trace() -> None:
    pytest.importorskip("torch")
    from torch import nn

    with pytest.raises(unetviz.UnetvizError, match=r"unetviz\.trace\(module\)"):
        unetviz.verify(nn.Conv2d(1, 1, 1))  # type: ignore[arg-type]
