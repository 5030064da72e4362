"""The cost model: MACs equal torch's FlopCounterMode / 2 exactly (total and per top-level block) on the real
models on meta, the thop-style and torchinfo figures of SD 1.5, peak memory against a live-tensor tracker,
and ``unetviz cost``'s renderings. ``macs_disagreements`` is the helper other tests call."""

from __future__ import annotations

import json
from typing import Any

import pytest

import unetviz
from unetviz.analysis.cost import cost, parse_sizes, torchinfo_macs
from unetviz.analysis.memory import memory_of
from unetviz.core.quantities import layer_macs
from unetviz.families import BY_CLASS
from unetviz.presets import PRESETS
from unetviz.render.cost import render_cost, run_cost
from unetviz.tracing import input_spec

NON_SQUARE = {"dance-diffusion": "32768", "ronneberger2015": "572x476", "ddpm-lucidrains": "48x64",
              # volumes: a size every stage's stride divides, each axis different
              "nnunet-lung-3d-fullres": "48x160x128", "monai-spleen-ct": "64x96x80",
              "nnunet-lung-resenc-m": "48x160x128", "nnunet-lung-resenc-l": "48x192x128",
              "nnunet-lung-resenc-xl": "64x192x128"}
"""A non-square size per preset where the default (its size x 3/4 by its size) does not suit."""
PEAK_TOLERANCE = 0.15
"""The estimated peak (scores materialised) is within 15% of the tracker's where attention or the
full-resolution convs dominate (SD-class U-Nets, guided, Dance Diffusion, Ronneberger)."""
PEAK_CHECKED = ("sd15", "sd15-ldm", "controlnet-sd15", "unet2d-attn-64", "iddpm-cifar10", "ronneberger2015",
                "dance-diffusion")


def real_run(source: Any, size: Any) -> tuple[Any, dict[str, int], Any, Any]:
    """(our trace, module path -> MACs from FlopCounterMode at batch 1, model, its inputs)."""
    pytest.importorskip("torch")
    from unetviz.families import lookup
    from unetviz.live.upstream import family_module
    from unetviz.live.upstream.measure import counting_macs
    from unetviz.tracing import resolve, trace_config

    config, preset = resolve(source)
    ours = trace_config(config, size, preset)
    family, kwargs = lookup(config)
    try:
        adapter = family_module(family)
        model = adapter.build(family.model if family.classes else None, dict(kwargs))
    except unetviz.UnetvizError as e:  # an upstream package that is not installed, or no sgm for SDXL
        pytest.skip(str(e))
    args, kw = adapter.inputs(model, ours)
    macs: dict[str, int] = {}
    import torch

    with torch.no_grad(), counting_macs(model, int(args[0].shape[0]), macs):
        model(*args, **kw)
    return ours, macs, model, (args, kw)


def macs_disagreements(source: Any, size: Any = None) -> list[str]:
    """Where the symbolic MACs differ from FlopCounterMode's on the real model (total, per top-level block).
    Empty when they agree; for a differential test: ``assert not macs_disagreements(cfg, size)``."""
    from unetviz.analysis.compare import compare_macs

    ours, macs, _, _ = real_run(source, size)
    return [f"{d.what} {d.path}: ours {d.ours}, real {d.real}" for d in compare_macs(ours, ours, macs)]


def _non_square(name: str) -> str:
    if name in NON_SQUARE:
        return NON_SQUARE[name]
    *frames, h, w = unetviz.trace(name).in_size  # a video U-Net's size is FxHxW: two frames keep it quick
    return "x".join(map(str, ([2] if frames else []) + [max(8, h * 3 // 4 // 8 * 8), w]))


CASES = list(PRESETS)


@pytest.mark.parametrize("name", CASES)
def test_macs_equal_flop_counter_default_size(name: str) -> None:
    assert not macs_disagreements(name)


@pytest.mark.parametrize("name", CASES)
def test_macs_equal_flop_counter_non_square(name: str) -> None:
    assert not macs_disagreements(name, _non_square(name))


def test_sd15_figures_reconcile_the_counters() -> None:
    """SD 1.5, 64x64 latent, batch 1: FlopCounterMode 401.6 G, thop-style (no attention matmuls) 338.6 G,
    torchinfo 222.3 G mult-adds."""
    s = cost("sd15", "64").sizes[0]
    assert s.macs == 401_636_720_640
    assert s.attention_macs == 63_026_135_040
    assert s.no_attention_macs == 338_610_585_600
    assert round(s.torchinfo_macs / 1e9, 1) == 222.3
    assert s.memory is not None and s.memory.largest is not None
    assert s.memory.largest_bytes == 8 * 4096 * 4096 * 2  # 8 heads x 4096 x 4096 tokens, fp16


def test_sd15_torchinfo_witness() -> None:
    torchinfo = pytest.importorskip("torchinfo")
    ours, _, model, (args, kw) = real_run("sd15", None)
    stats = torchinfo.summary(model, input_data=list(args), verbose=0, **kw)
    assert stats.total_mult_adds == sum(torchinfo_macs(x) for x in ours.layers) * int(args[0].shape[0])


@pytest.mark.parametrize("name", PEAK_CHECKED)
def test_peak_memory_against_live_tensor_tracker(name: str) -> None:
    pytest.importorskip("torch")
    import torch

    from unetviz.live.upstream.measure import LiveTensors

    ours, _, model, (args, kw) = real_run(name, None)
    with torch.no_grad(), LiveTensors() as live:
        model(*args, **kw)
    est = memory_of(ours, int(args[0].shape[0]), "fp32").peak_materialised
    assert abs(est - live.peak) <= PEAK_TOLERANCE * live.peak, (est, live.peak)


def test_attention_rows_are_parameter_free_and_sum_under_their_module() -> None:
    t = unetviz.trace("sd15")
    rows = [x for x in t.layers if x.type == "attention"]
    assert len(rows) == 32 and all(x.params == 0 and not x.tensors for x in rows)
    d = t.to_dict()
    assert d["macs"] == sum(x["macs"] for x in d["layers"]) == 401_636_720_640
    assert d["memory"]["largest_attention"]["elements"] == 8 * 4096 * 4096


def test_sizes_pixels_and_latents() -> None:
    # a bare size is the model's own input, whatever its magnitude; px is the image (the declared factor 8)
    t = unetviz.trace("sd15")
    spec = input_spec(BY_CLASS["UNet2DConditionModel"], "sd15")
    assert parse_sizes("512px,64,96x64,512x768px,512", t, spec) == [
        ("512px", (64, 64), (512, 512)), ("64", (64, 64), (512, 512)), ("96x64", (96, 64), (768, 512)),
        ("512x768px", (64, 96), (512, 768)), ("512", (512, 512), (4096, 4096))]
    pixel = input_spec(BY_CLASS["UNet2DModel"], "ddpm-cifar10")
    assert parse_sizes("32,64px", unetviz.trace("ddpm-cifar10"), pixel) == [
        ("32", (32, 32), None), ("64px", (64, 64), None)]
    for bad in ("64lat", "500px", "16x64x64"):
        with pytest.raises(unetviz.UnetvizError):
            parse_sizes(bad, t, spec)


def test_failing_sizes_are_marked_not_dropped() -> None:
    r = cost("ddpm-lucidrains", "64,30")
    assert [s.error is None for s in r.sizes] == [True, False]
    text, code = run_cost("ddpm-lucidrains", "64,30", format="csv")
    assert code == 0 and "30x30" in str(text) and "divisible" in str(text)
    assert run_cost("ddpm-lucidrains", "30", format="json")[1] == 1


@pytest.mark.parametrize("width", [80, 100, 120])
def test_table_fits_without_ellipsis(width: int) -> None:
    from rich.console import Console

    console = Console(width=width, color_system=None)
    with console.capture() as cap:
        console.print(render_cost(cost("sdxl"), width))
    lines = cap.get().splitlines()
    assert all(len(x) <= width for x in lines) and "…" not in cap.get()
    assert any("2048x2048 px" in x for x in lines)


def test_json_and_plot(tmp_path: Any) -> None:
    text, code = run_cost("sd15", "512px,1024px", format="json")
    d = json.loads(str(text))
    assert code == 0 and [s["pixels"] for s in d["sizes"]] == [[512, 512], [1024, 1024]]
    assert d["sizes"][0]["macs"] == sum(lv["macs"] for lv in d["sizes"][0]["levels"])
    pytest.importorskip("matplotlib")
    out = tmp_path / "c.svg"
    run_cost("sd15", "512px,1024px", plot=out)
    assert out.read_text().lstrip().startswith("<?xml")


def test_layer_macs_is_per_layer() -> None:
    t = unetviz.trace("sd15")
    conv_in = t.layers[[x.path for x in t.layers].index("conv_in")]
    assert layer_macs(conv_in) == 320 * 4 * 3 * 3 * 64 * 64
