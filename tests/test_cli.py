"""The command line as a user runs it: real subprocesses, exit codes, stdout/stderr."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Golden, cli

import unetviz

run = cli


def test_table_rich_spells_out_the_concat_arithmetic() -> None:
    r = run("table", "--preset", "sd15", columns=160)
    assert r.returncode == 0, r.stderr
    assert ("1920 = 1280 (previous, up_blocks.1.attentions.1) + 640 (skip #6 from down_blocks.1.downsamplers.0,"
            " 16x16)") in r.stdout
    assert "pop #6" in r.stdout and "push #11" in r.stdout and "skip stack" in r.stdout
    assert "859,520,964 params in 686 tensors" in r.stdout


def test_a_bare_source_argument_and_any_case_name_a_preset() -> None:
    a, b = run("table", "sd15", "-f", "json"), run("table", "SD15", "-f", "json")
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout == run("table", "-p", "sd15", "-f", "json").stdout


def test_a_model_folder_reads_its_config_json(tmp_path: Path) -> None:
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps(unetviz.api.resolve("sd15")[0]))
    r = run("table", "--config", str(tmp_path), "-d", "blocks")
    assert r.returncode == 0 and r.stdout.startswith(f"{tmp_path.name}/unet: diffusers"), r.stdout[:200]


def test_version_and_a_bare_command_show_something_useful() -> None:
    v = run("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"unetviz {unetviz.__version__}"
    bare = run()
    assert bare.returncode == 0 and "table" in bare.stdout and "unetviz table sd15" in bare.stdout
    helped = run("table", "--help")
    assert helped.returncode == 0 and "Examples" in helped.stdout and "--depth" in helped.stdout


def test_table_json_follows_the_interface_schema() -> None:
    r = run("table", "--preset", "sd15", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["schema"] == "unetviz.trace/1" and d["model"] == "UNet2DConditionModel" and d["preset"] == "sd15"
    assert d["input"] == {"channels": 4, "size": [64, 64], "shape": [4, 64, 64]}
    assert d["output"] == {"channels": 4, "size": [64, 64]}
    assert d["space"] == "latent" and d["pixels"] == [512, 512]
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
                             "size": [64, 64], "to": "up_blocks.3.resnets.2", "merge": "concat"}


def test_table_csv_and_markdown() -> None:
    r = run("table", "--preset", "unet2d-attn-64", "--format", "csv", "--depth", "layers")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    conv1 = [row for row in rows if row["path"].startswith("up_blocks.0.resnets.") and row["path"].endswith("conv1")]
    assert [row["in_channels"] for row in conv1] == ["1024", "1024", "768"]
    md = run("table", "--preset", "unet2d-attn-64", "--format", "md", "--depth", "units").stdout
    assert "| *768 = 512 (previous, up_blocks.0.attentions.1) + 256 (skip #9 from" in md.replace("\\|", "|")


def test_markdown_from_the_cli_is_the_golden_renderer_output(golden: Golden) -> None:
    golden("sd15.units.md", run("table", "--preset", "sd15", "--format", "md", "--depth", "units").stdout)


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
    (("table", "--preset", "sd15", "--format", "xml"), "'xml' is not one of"),
    (("table",), "give exactly one of SOURCE, --preset NAME or --config FILE"),
    (("table", "sd15", "--preset", "sd21"), "give exactly one of"),
    (("tabel", "sd15"), "did you mean 'table'?"),
    (("table", "--config", "/nonexistent/unet.json"), "does not exist"),
    (("weights", "--preset", "sd15", "--check", "model.ckpt"), "pickle file"),
    (("nope",), "no command 'nope'"),
    (("table", "--config", "/"), "no config.json"),
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
    assert "684 tensors match in the diffusers naming; 1 missing, 1 unexpected, 1 with another shape" in r.stdout
    assert "conv_in.weight: model [320, 4, 3, 3], file [320, 9, 3, 3]" in r.stdout
    good = tmp_path / "manifest.json"
    good.write_text(json.dumps(d))
    ok = run("weights", "--preset", "sd15", "--check", str(good))
    assert ok.returncode == 0 and "686 tensors match" in ok.stdout


def test_presets_names_is_one_name_a_line() -> None:
    r = run("presets", "--names")
    assert r.returncode == 0 and r.stdout.split() == list(unetviz.PRESETS) and r.stderr == ""


def test_the_cli_never_imports_torch_for_a_trace() -> None:
    cli = subprocess.run([sys.executable, "-X", "importtime", "-m", "unetviz", "table", "--preset", "sdxl",
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    imported = {line.split("|")[-1].strip() for line in cli.stderr.splitlines() if "|" in line}
    assert cli.returncode == 0 and not {"torch", "diffusers", "numpy", "pydantic"} & imported


def _header_file(path: Path, tensors: dict[str, list[int]]) -> Path:
    header = {k: {"dtype": "F16", "shape": v, "data_offsets": [0, 0]} for k, v in tensors.items()}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


def test_check_finds_the_prefix_and_sets_other_components_aside(tmp_path: Path) -> None:
    tensors = {f"unet.{k}": list(v) for k, v in unetviz.weights("sd15").tensors.items()}
    tensors.update({f"vae.encoder.{i}.weight": [4] for i in range(3)})
    r = run("weights", "sd15", "--check", str(_header_file(tmp_path / "pipe.safetensors", tensors)))
    assert r.returncode == 0, r.stdout
    assert "686 tensors match (under the prefix 'unet.')" in r.stdout and "3 other tensors" in r.stdout
    j = json.loads(run("weights", "sd15", "-f", "json", "--check", str(tmp_path / "pipe.safetensors")).stdout)
    assert j["ok"] and j["prefix"] == "unet." and j["other_tensors"] == 3 and j["matched"] == 686


def test_check_lists_are_cut_with_a_count(tmp_path: Path) -> None:
    r = run("weights", "sd15", "--check", str(_header_file(tmp_path / "x.safetensors", {"a.weight": [1]})))
    assert r.returncode == 1 and "... and 636 more missing" in r.stdout and "hint: no key matches" in r.stdout


def test_unknown_diffusers_keys_are_ignored_with_a_warning_and_a_typo_loudly(tmp_path: Path) -> None:
    config = {"_class_name": "UNet2DModel", "sample_size": 32, "block_out_channels": [32, 64], "norm_num_groups": 8,
              "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
              "decay": 0.9999, "inv_gamma": 1.0, "optimization_step": 37000, "layers_per_blok": 3}
    (tmp_path / "ema.json").write_text(json.dumps(config))
    r = run("table", "--config", str(tmp_path / "ema.json"), "-f", "json")
    assert r.returncode == 0 and json.loads(r.stdout)["params"] > 0
    lines = r.stderr.splitlines()
    assert lines[0].startswith("warning: config: ignored 4 key(s)") and "optimization_step" in lines[0]
    assert "layers_per_blok is IGNORED; did you mean 'layers_per_block'?" in lines[1]


def test_other_families_reject_a_mistyped_key_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "l.json").write_text('{"family": "lucidrains", "dim": 8, "dim_mult": [1, 2]}')
    r = run("table", "--config", str(tmp_path / "l.json"))
    assert r.returncode == 2 and "did you mean 'dim_mults'?" in r.stderr and len(r.stderr) < 200


def test_context_option() -> None:
    """--context feeds the chosen encoder_hidden_states: a 1024-wide one into SD 1.5 fails (exit 1) at the first
    attn2.to_k, and the JSON says what was fed; a malformed value is one line and exit 2."""
    r = cli("table", "sd15", "--context", "77x1024", "-f", "json")
    d = json.loads(r.stdout)
    assert r.returncode == 1 and d["context"] == {"tokens": 77, "width": 1024}
    assert d["error"]["at"] == "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k"
    r = cli("table", "sd15", "--context", "77")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--context" in r.stderr and "TOKENSxWIDTH" in r.stderr
    r = cli("table", "sd15")
    assert r.returncode == 0 and "context 77 tokens x 768" in r.stdout.splitlines()[0]


def test_the_readme_excerpt_is_real_output() -> None:
    """Every line of the README's table excerpt is a line `unetviz table sd15` prints at 100 columns."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("```text\n$ unetviz table sd15")
    block = readme[start:readme.index("```", start + 7)].splitlines()[2:]
    r = subprocess.run([sys.executable, "-m", "unetviz", "table", "sd15"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "100"}, timeout=300)
    printed = set(r.stdout.splitlines())
    shown = [line for line in block if line != "..."]
    assert len(shown) > 20 and [line for line in shown if line not in printed] == []
