"""Inputs declared, not guessed (issue 19): every family and preset declares its input; one size grammar for
every command and the API; the public face is a set of typed functions."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import unetviz
from unetviz.core.inputs import InputSpec, read_size
from unetviz.families import lookup
from unetviz.presets import PRESETS
from unetviz.tracing import input_spec, resolve_named

ROOT = Path(__file__).resolve().parents[1]

# What each published model runs on, from its paper or pipeline (not from unetviz): the registry must say the same.
SPACE = {
    "sd15": "latent", "sd21": "latent", "sdxl": "latent", "ddpm-cifar10": "pixel", "unet2d-attn-64": "latent",
    "ddpm-lucidrains": "pixel", "iddpm-cifar10": "pixel", "adm-imagenet256": "pixel", "ronneberger2015": "pixel",
    "sd15-ldm": "latent", "sd21-ldm": "latent", "sdxl-sgm": "latent", "controlnet-sd15": "latent",
    "dance-diffusion": "audio", "modelscope-t2v": "latent", "svd": "latent", "animatediff": "latent",
    "if-i-xl": "pixel", "kandinsky22-decoder": "latent", "karlo-decoder": "pixel", "ncsnpp-celebahq-256": "pixel",
    "sd-x2-latent-upscaler": "latent", "nnunet-lung-3d-fullres": "volume", "nnunet-lung-2d": "pixel",
    "monai-spleen-ct": "volume", "nnunet-lung-resenc-m": "volume", "nnunet-lung-resenc-l": "volume",
    "nnunet-lung-resenc-xl": "volume",
}
VIDEO = ("modelscope-t2v", "svd", "animatediff")


def test_every_preset_declares_the_space_it_runs_in() -> None:
    assert sorted(SPACE) == sorted(PRESETS)
    for name in PRESETS:
        config, preset, _ = resolve_named(name)
        family, kwargs = lookup(config)
        spec = input_spec(family, preset, kwargs)
        t = unetviz.trace(name)
        assert (spec.space, t.space) == (SPACE[name], SPACE[name]), name
        assert (t.pixels is not None) == (SPACE[name] == "latent"), name
        rank = {"audio": "length", "volume": "volume"}.get(SPACE[name], "video" if name in VIDEO else "image")
        assert spec.rank == rank, name
        assert len(t.in_size) == spec.spatial or (spec.rank == "video" and len(t.in_size) == 3), name


@pytest.mark.parametrize("name", VIDEO)
def test_video_cost_keeps_frames_and_a_real_spatial_size(name: str) -> None:
    d = unetviz.cost(name).to_dict()
    sizes = [tuple(s["size"]) for s in d["sizes"]]
    frames = unetviz.trace(name).in_size[0]
    assert len(set(sizes)) == 6 and all(len(s) == 3 and s[0] == frames and min(s[1:]) > 1 for s in sizes), sizes
    assert d["latent"] is True and d["space"] == "latent" and d["factor"] == 8
    # every request reads back, through the same grammar, as the size it was traced at
    assert [unetviz.cost(name, s["request"]).sizes[0].size for s in d["sizes"]] == sizes
    # per level: the units of a video work per frame (HxW); each level has its own resolution and MACs
    levels = [lv for lv in unetviz.cost(name).sizes[2].levels if lv.level is not None]
    assert len(levels) >= 3 and [lv.level for lv in levels] == list(range(len(levels)))
    assert all(lv.macs > 0 and lv.size is not None and len(lv.size) == 2 for lv in levels)


def test_default_cost_sizes_are_sizes_the_model_runs_at() -> None:
    # the 2015 U-Net's unpadded convs and 2x2 pools run only at 572 + 16k: no default row may fail
    r = unetviz.cost("ronneberger2015")
    assert all(s.error is None for s in r.sizes) and r.sizes[2].size == (572, 572)
    assert [s.request for s in r.sizes] == ["284x284", "428x428", "572x572", "716x716", "860x860", "1148x1148"]


def test_the_size_grammar() -> None:
    image = InputSpec(rank="image", space="pixel", channels="RGB")
    latent = InputSpec(rank="image", space="latent", factor=8, channels="VAE")
    video = InputSpec(rank="video", space="latent", factor=8, channels="VAE")
    volume = InputSpec(rank="volume", space="volume", channels="CT")
    audio = InputSpec(rank="length", space="audio", channels="stereo")

    def size(text: Any, spec: InputSpec) -> tuple[int, ...]:
        req = read_size(text, spec)
        assert req is not None
        return req.size

    assert size(64, image) == size("64", image) == size("64px", image) == (64, 64)
    assert size("64x96", image) == size((64, 96), image) == (64, 96)
    assert size("1024px", latent) == (128, 128) and size("768x1344px", latent) == (96, 168)
    assert size(1024, latent) == (1024, 1024)  # the model's own units, whatever the magnitude
    assert size("16x512x768px", video) == (16, 64, 96) and size("64x96", video) == (64, 96)
    assert size(32, volume) == (32, 32, 32) and size("32x48x64", volume) == (32, 48, 64)
    assert size(65536, audio) == (65536,)
    assert read_size(None, image) is None
    cases: list[tuple[Any, InputSpec, str]] = [
        ("64x64", audio, "N (the length)"), ("64px", audio, "not pixels"), ("16x64x64", latent, "HxW"),
        ("100px", latent, "nearest: 96x96px or 104x104px"), ("0x64", image, "from 1"), ("64lat", latent, "px"),
        (True, image, "HxW"), ("64x64", volume, "DxHxW")]
    for text, spec, words in cases:
        with pytest.raises(unetviz.UnetvizError, match=words.replace("(", r"\(").replace(")", r"\)")):
            read_size(text, spec)


def test_titles_and_json_say_the_space() -> None:
    t = unetviz.trace("sdxl", size="1024px")
    d = t.to_dict()
    assert d["input"]["shape"] == [4, 128, 128] and d["space"] == "latent" and d["pixels"] == [1024, 1024]
    assert t.warnings == ()
    assert unetviz.trace("ddpm-cifar10").to_dict()["pixels"] is None
    assert unetviz.trace("dance-diffusion").to_dict()["input"]["shape"] == [2, 65536]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unetviz", *args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"})


def test_cli_reads_pixels_and_warns_about_a_huge_latent() -> None:
    px = _cli("table", "sdxl", "--size", "1024px", "--format", "json")
    assert px.returncode == 0 and px.stderr == ""
    assert json.loads(px.stdout)["input"]["shape"] == [4, 128, 128]
    big = _cli("table", "sdxl", "--size", "1024", "--format", "json")
    assert big.returncode == 0 and json.loads(big.stdout)["input"]["shape"] == [4, 1024, 1024]
    note = big.stderr.strip().splitlines()
    assert note == ["warning: --size 1024 is a latent (8192 px image); for 1024 px use --size 1024px"]
    assert len(note[0]) <= 80
    titled = _cli("table", "sdxl", "--size", "1024px", "--depth", "blocks")
    assert "input 4x128x128 latent = 1024x1024 px" in titled.stdout.splitlines()[0]
    alias = _cli("cost", "sd15", "--size", "512px", "--format", "json")
    assert alias.returncode == 0 and json.loads(alias.stdout)["sizes"][0]["size"] == [64, 64]
    bad = _cli("table", "dance-diffusion", "--size", "64x64")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "N (the length)" in bad.stderr


PUBLIC = ("trace", "weights", "verify", "cost", "inspect", "keymap", "check", "diff", "fit", "why")


def test_the_public_face_is_functions_and_typed() -> None:
    for name in PUBLIC:
        fn = getattr(unetviz, name)
        assert inspect.isfunction(fn), name
        hints = inspect.get_annotations(fn)
        assert "return" in hints and "Any" not in str(hints["return"]), (name, hints)
    assert issubclass(unetviz.NotTraced, unetviz.UnetvizError)
    assert (ROOT / "unetviz" / "py.typed").is_file()
    project = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\nunetviz = \["py\.typed"\]', project)
    from importlib.metadata import version

    declared = re.search(r'^version = "([^"]+)"', project, re.M)
    assert declared is not None and unetviz.__version__ == version("unetviz") == declared.group(1)
    assert f"## {unetviz.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_import_and_cost_need_no_torch() -> None:
    code = ("import sys, unetviz; r = unetviz.cost('sd15', '512px'); d = unetviz.diff('sd15', 'sd21');"
            " assert r.sizes[0].size == (64, 64) and d.summary;"
            " assert not {'torch', 'diffusers', 'numpy'} & set(sys.modules), sorted(sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


def test_not_traced_is_its_own_error() -> None:
    config = {"_class_name": "UNet2DModel", "down_block_types": ["DownEncoderBlock2D"],
              "up_block_types": ["UpBlock2D"], "block_out_channels": [32]}
    with pytest.raises(unetviz.NotTraced, match="DownEncoderBlock2D"):
        unetviz.trace(config)


def test_live_modules_weights_and_cost() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.Conv3d(4, 2, 1))
    w = unetviz.weights(net)
    assert dict(w.tensors) == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert w.params == sum(p.numel() for p in net.parameters())
    with pytest.raises(unetviz.NotTraced):
        unetviz.weights(net, naming="original")
    # a module registered under two paths (nnU-Net's ConvDropoutNormReLU): listed twice, counted once
    shared = nn.Conv2d(3, 8, 3)
    twice = nn.ModuleDict({"conv": shared, "all_modules": nn.Sequential(shared, nn.ReLU())})
    w2 = unetviz.weights(twice)
    assert list(w2.tensors) == list(twice.state_dict()) and len(w2.tensors) == 4
    assert dict(w2.aliases) == {"all_modules.0.weight": "conv.weight", "all_modules.0.bias": "conv.bias"}
    assert w2.params == sum(p.numel() for p in twice.parameters()) == 8 * 3 * 9 + 8
    r = unetviz.cost(net, sizes=[(8, 16, 16), (16, 32, 32)])
    assert [s.size for s in r.sizes] == [(8, 16, 16), (16, 32, 32)]
    # a 3x3x3 conv's MACs are its weight's size x the output positions, as FlopCounterMode counts them
    assert r.sizes[0].macs == 4 * 27 * 8 * 16 * 16 + 2 * 4 * 8 * 16 * 16
    with pytest.raises(unetviz.UnetvizError, match="sizes"):
        unetviz.cost(net)
    with pytest.raises(unetviz.UnetvizError, match=r"nn\.Module"):
        unetviz.weights(42)  # type: ignore[arg-type]
