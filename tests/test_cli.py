"""The command line as a user runs it: real subprocesses, exit codes, stdout/stderr."""

from __future__ import annotations

import csv
import io
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import unetviz


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unetviz", *args], capture_output=True, text=True, timeout=300)


def test_table_rich_spells_out_the_concat_arithmetic() -> None:
    r = run("table", "--preset", "sd15")
    assert r.returncode == 0, r.stderr
    assert "1920 = 1280 (previous, up_blocks.1.attentions.1) + 640 (skip #6 from" in r.stdout
    assert "pop #6 <- down_blocks.1.downsamplers.0" in r.stdout
    assert "push #11" in r.stdout and "skip stack" in r.stdout
    assert "859,520,964 params in 686 tensors" in r.stdout


def test_table_json_follows_the_interface_schema() -> None:
    r = run("table", "--preset", "sd15", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == "unetviz.trace/1" and d["model"] == "UNet2DConditionModel" and d["preset"] == "sd15"
    assert d["input"] == {"channels": 4, "size": [64, 64]} and d["output"] == {"channels": 4, "size": [64, 64]}
    assert d["params"] == 859520964 and d["error"] is None
    first = d["layers"][0]
    assert (first["path"], first["type"], first["in_channels"], first["out_channels"]) == (
        "time_embedding.linear_1", "Linear", 320, 1280)
    conv_in = next(x for x in d["layers"] if x["path"] == "conv_in")
    assert conv_in["kernel"] == [3, 3] and conv_in["stride"] == [1, 1] and conv_in["params"] == 11840
    assert conv_in["in_size"] == [64, 64]
    c0 = d["concats"][0]
    assert c0["consumer"] == "up_blocks.0.resnets.0" and c0["channels"] == 2560
    assert c0["inputs"] == [{"from": "mid_block.resnets.1", "channels": 1280, "size": [8, 8]},
                            {"from": "down_blocks.3.resnets.1", "channels": 1280, "size": [8, 8], "skip": 11}]
    assert d["skips"][0] == {"index": 0, "from": "conv_in", "unit": "conv_in", "channels": 320,
                             "size": [64, 64], "to": "up_blocks.3.resnets.2"}


def test_table_csv_and_markdown() -> None:
    r = run("table", "--preset", "unet2d-attn-64", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    conv1 = [row for row in rows if row["path"].startswith("up_blocks.0.resnets.") and row["path"].endswith("conv1")]
    assert [row["in_channels"] for row in conv1] == ["1024", "1024", "768"]
    md = run("table", "--preset", "unet2d-attn-64", "--format", "md", "--depth", "units").stdout
    assert "| 768 = 512 (previous, up_blocks.0.attentions.1) + 256 (skip #9 from" in md.replace("\\|", "|")


def test_golden_sd15_units_markdown(golden: Any) -> None:
    golden("sd15_units.md", run("table", "--preset", "sd15", "--format", "md", "--depth", "units").stdout)


def test_failing_size_exits_1_with_the_sizes() -> None:
    r = run("table", "--preset", "ddpm-cifar10", "--size", "31", "--format", "json")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["output"] is None and d["error"]["at"] == "up_blocks.1.resnets.0"
    assert "6x6" in r.stderr and "7x7" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, needle", [
    (("table", "--preset", "sd14"), "did you mean"),
    (("table", "--preset", "sd15", "--size", "0"), "--size: got '0'"),
    (("table", "--preset", "sd15", "--size", "64y64"), "--size: got '64y64'"),
    (("table", "--preset", "sd15", "--format", "xml"), "invalid choice: 'xml'"),
    (("table",), "give exactly one of --preset NAME or --config FILE"),
    (("table", "--config", "/nonexistent/unet.json"), "does not exist"),
    (("weights", "--preset", "sd15", "--check", "model.ckpt"), "pickle file"),
    (("nope",), "invalid choice: 'nope'"),
])
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...], needle: str) -> None:
    r = run(*args)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr


def test_bad_config_files_exit_2(tmp_path: Path) -> None:
    cases = {"trailing.json": '{"_class_name": "UNet2DModel",}', "list.json": "[1, 2]",
             "types.json": '{"_class_name": "UNet2DModel", "layers_per_block": "two"}'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        r = run("table", "--config", str(tmp_path / name))
        assert r.returncode == 2 and r.stderr.startswith("error: --config" if name != "types.json"
                                                         else "error: layers_per_block"), r.stderr


def test_weights_manifest_and_check(tmp_path: Path) -> None:
    r = run("weights", "--preset", "sd15", "--format", "json")
    d = json.loads(r.stdout)
    assert d["schema"] == "unetviz.weights/1" and d["count"] == 686 and d["params"] == 859520964
    assert list(d["tensors"])[:2] == ["conv_in.weight", "conv_in.bias"]
    assert d["tensors"]["conv_in.weight"] == [320, 4, 3, 3]
    # a .safetensors file is read through its JSON header only: build one with one wrong shape
    header = {k: {"dtype": "F16", "shape": v, "data_offsets": [0, 0]} for k, v in d["tensors"].items()}
    header["conv_in.weight"]["shape"] = [320, 9, 3, 3]
    header["extra.weight"] = {"dtype": "F16", "shape": [1], "data_offsets": [0, 0]}
    del header["conv_out.bias"]
    blob = json.dumps(header).encode()
    path = tmp_path / "unet.safetensors"
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    r = run("weights", "--preset", "sd15", "--check", str(path))
    assert r.returncode == 1
    assert "684 tensors match; 1 missing, 1 unexpected, 1 with another shape" in r.stdout
    assert "conv_in.weight: model [320, 4, 3, 3], file [320, 9, 3, 3]" in r.stdout
    good = tmp_path / "manifest.json"
    good.write_text(json.dumps(d))
    ok = run("weights", "--preset", "sd15", "--check", str(good))
    assert ok.returncode == 0 and "686 tensors match" in ok.stdout


def test_presets_names_is_one_name_a_line() -> None:
    r = run("presets", "--names")
    assert r.returncode == 0 and r.stdout.split() == list(unetviz.PRESETS) and r.stderr == ""


def test_symbolic_path_never_imports_torch() -> None:
    code = ("import sys, unetviz\n"
            "for p in ['sd15', 'sdxl', 'ddpm-cifar10']:\n    unetviz.trace(p).to_json()\n"
            "from unetviz.render.formats import to_markdown, to_csv\n"
            "to_markdown(unetviz.trace('sd15')); to_csv(unetviz.trace('sd15'))\n"
            "bad = [m for m in ('torch', 'diffusers', 'numpy') if m in sys.modules]\n"
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    cli = subprocess.run([sys.executable, "-X", "importtime", "-m", "unetviz", "table", "--preset", "sdxl",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    imported = {line.split("|")[-1].strip() for line in cli.stderr.splitlines() if "|" in line}
    assert cli.returncode == 0 and not {"torch", "diffusers", "numpy"} & imported
