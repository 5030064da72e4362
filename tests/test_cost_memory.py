"""``unetviz cost``'s memory beyond the activations: weights at the dtype, inference = weights + peak, the
training estimate and its parts, the activations kept for backward against torch's own saved tensors, nnU-Net's
``compute_conv_feature_map_size`` against the real function on meta, and the terminal report (level
resolutions, where the peak is, every line within 80, 100 and 120 columns, through the CLI too)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

import unetviz
from unetviz.analysis.cost import cost
from unetviz.analysis.nnunet_estimate import feature_map_size
from unetviz.analysis.training import MOMENT_BYTES, deep_supervision_elements, saved_elements
from unetviz.render.cost import nbytes, render_cost, run_cost

HIPPOCAMPUS = "tests/data/nnunet/Dataset004_Hippocampus/nnUNetPlans.json"
LUNG = "nnunet-lung-3d-fullres"
WIDTHS = (80, 100, 120)


@pytest.mark.parametrize(("name", "dtype", "size"), [("sd15", "fp16", 2), ("sd15", "fp32", 4), ("sdxl", "bf16", 2),
                                                      (LUNG, "fp16", 2), (HIPPOCAMPUS, "fp32", 4)])
def test_weights_are_params_times_dtype_bytes(name: str, dtype: str, size: int) -> None:
    r = cost(name, None if "nnunet" in name or name.endswith(".json") else "64", dtype=dtype)
    params = unetviz.trace(name).params
    assert r.params == params
    for s in r.sizes:
        if s.footprint is not None:
            assert s.footprint.weights == params * size


@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
def test_inference_and_training_add_up(dtype: str) -> None:
    r = cost("sd15", "512px,768px", batch=2, dtype=dtype)
    for s in r.sizes:
        f, m = s.footprint, s.memory
        assert f is not None and m is not None
        assert f.inference == f.weights + m.peak_materialised
        assert f.inference_efficient == f.weights + m.peak_efficient
        assert f.gradients == f.weights
        assert f.moments == f.params * MOMENT_BYTES
        assert f.master == (0 if dtype == "fp32" else f.params * 4)  # fp32 master weights under mixed precision
        assert f.static == 16 * f.params  # AdamW: 16 bytes a parameter in either recipe
        assert f.training == f.weights + f.gradients + f.master + f.moments + f.saved
        assert f.training_efficient == f.static + f.saved_efficient
        assert f.saved > f.saved_efficient  # the softmax outputs a materialised attention keeps
        t = unetviz.trace("sd15", size=s.size)
        assert f.saved == saved_elements(t, True) * 2 * (2 if dtype == "fp16" else 4)


def test_deep_supervision_maps_count_for_training() -> None:
    """The trainer runs every seg head: unset (its default) or on, training keeps them; set off, it does not.
    Traced with the heads run, the same maps are layer rows: both ways give the same figure."""
    from unetviz.tracing import resolve

    config, _ = resolve(LUNG)
    unset = unetviz.trace(LUNG)
    on = unetviz.trace({**config, "deep_supervision": True})
    off = unetviz.trace({**config, "deep_supervision": False})
    heads = [u for u in unset.units if u.first == u.last]
    assert len(heads) == 4 and deep_supervision_elements(unset) == sum(
        u.out_channels * u.out_size[0] * u.out_size[1] * u.out_size[2] for u in heads if u.out_size)
    assert deep_supervision_elements(on) == deep_supervision_elements(off) == 0
    assert saved_elements(unset, True) == saved_elements(on, True) > saved_elements(off, True)
    assert deep_supervision_elements(unetviz.trace("sd15")) == 0


def _torch_saved(model: Any, args: Any, kw: Any) -> int:
    """Elements of the distinct tensors autograd saves for backward in one forward pass (parameters aside)."""
    import torch

    seen: dict[int, Any] = {}

    def pack(x: Any) -> Any:
        seen[id(x)] = x  # held, so no id is reused while the pass runs
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        model(*args, **kw)
    params = {id(p) for p in model.parameters()}
    return sum(x.numel() for k, x in seen.items() if k not in params)


@pytest.mark.parametrize("name", [HIPPOCAMPUS, LUNG])
def test_saved_for_backward_matches_autograd_on_nnunet(name: str) -> None:
    """nnU-Net (convs, InstanceNorm, in-place LeakyReLU): within 1% of what autograd saves with deep supervision
    on; the excess is the seg maps the loss keeps, which no op of the network saves."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("dynamic_network_architectures")
    from unetviz.live.upstream import nnunet as ref
    from unetviz.tracing import resolve

    config, _ = resolve(name)
    model = ref.build(None, {**{k: v for k, v in config.items() if k != "family"}, "deep_supervision": True})
    t = unetviz.trace(name)
    real = _torch_saved(model, (torch.empty(1, t.in_channels, *t.in_size, device="meta"),), {})
    ours = saved_elements(t, True)
    assert real <= ours <= 1.01 * real, (ours, real)


def test_saved_for_backward_is_a_lower_bound_on_sd15() -> None:
    """SD 1.5: SiLU / GELU outputs and torch's math attention's own copies are no rows; the figure is below."""
    pytest.importorskip("torch")
    from test_cost import real_run

    ours, _, model, (args, kw) = real_run("sd15", None)
    real = _torch_saved(model, args, kw) // int(args[0].shape[0])
    assert saved_elements(ours, False) < saved_elements(ours, True) <= real


@pytest.mark.parametrize("source", [HIPPOCAMPUS, LUNG, "nnunet-lung-2d"])
def test_nnunet_estimate_equals_the_real_function(source: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("dynamic_network_architectures")
    from unetviz.live.upstream import nnunet as ref
    from unetviz.tracing import resolve

    config, _ = resolve(source)
    model: Any = ref.build(None, {k: v for k, v in config.items() if k != "family"})  # compute_... is no Module's
    base = unetviz.trace(source)
    for size in (base.in_size, tuple(d + 3 for d in base.in_size)):  # odd sizes: its floor division, not ours
        t = unetviz.trace(source, size=size)
        assert feature_map_size(t) == int(model.compute_conv_feature_map_size(list(size)))
    assert cost(source, "x".join(map(str, base.in_size))).sizes[0].nnunet_estimate == feature_map_size(base)


def test_nnunet_estimate_equals_the_real_function_resenc_and_deep_supervision() -> None:
    """ResidualEncoderUNet (BasicBlockD, BottleneckD with its own stem), BatchNorm 2-D, deep supervision on."""
    pytest.importorskip("dynamic_network_architectures")
    from test_nnunet import CONFIGS, real

    for cfg in CONFIGS.values():
        model = real(cfg)
        for size in (None, tuple(d + 5 for d in cfg["patch_size"])):
            t = unetviz.trace(cfg, size=size)
            assert feature_map_size(t) == int(model.compute_conv_feature_map_size(list(t.in_size)))
    assert feature_map_size(unetviz.trace("sd15")) is None


def _render(source: str, sizes: str | None, width: int) -> str:
    from rich.console import Console

    console = Console(width=width, color_system=None)
    with console.capture() as cap:
        console.print(render_cost(cost(source, sizes), width))
    return cap.get()


def test_levels_labelled_and_peak_located() -> None:
    text = _render("sd15", "512px", 120)
    assert re.search(r"^L0 +64x64 ", text, re.M) and re.search(r"^L3 +8x8 ", text, re.M)
    m = cost("sd15", "512px").sizes[0].memory
    assert m is not None and m.peak_at in text and m.peak_efficient_at in text
    assert "activation peak, scores materialised, 512x512 px: " + m.peak_at + " (L0 64x64)" in text
    lung = _render(LUNG, None, 100)
    assert re.search(r"^L5 +2x3x2 .* 5x6x5 ", lung, re.M)  # each size's own resolution at that level
    assert "activation peak, every size: decoder.stages.4.convs.0.norm (L0)" in lung
    assert "nnU-Net's estimate" in lung and "528,211,200 elements per sample" in lung
    lines = lung.splitlines()
    assert "nnU-Net est" in lines[next(i for i, x in enumerate(lines) if x.startswith("Memory at batch 2")) + 1]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("source", "sizes"), [("sdxl", None), ("sdxl", "1024px"), (LUNG, None),
                                               (HIPPOCAMPUS, None), ("sd15", "512px")])
def test_report_fits_and_no_number_is_cut(source: str, sizes: str | None, width: int) -> None:
    text = _render(source, sizes, width)
    lines = text.splitlines()
    assert all(len(x) <= width for x in lines) and "…" not in text
    for s in cost(source, sizes).sizes:  # each training figure whole on one line
        if s.footprint is not None:
            assert any(nbytes(s.footprint.training) in x for x in lines)


@pytest.mark.parametrize("width", WIDTHS)
def test_cli_at_columns(width: int) -> None:
    env = {**os.environ, "COLUMNS": str(width)}
    out = subprocess.run([sys.executable, "-m", "unetviz", "cost", LUNG, "--sizes", "80x192x160"],
                         capture_output=True, text=True, env=env, check=True).stdout
    assert all(len(x) <= width for x in out.splitlines()) and "…" not in out
    assert "L0     80x192x160" in out and "decoder.stages.4.convs.0.norm" in out and "nnU-Net" in out


def test_json_and_csv_carry_the_footprint() -> None:
    d = json.loads(str(run_cost(LUNG, "80x192x160", format="json")[0]))
    s = d["sizes"][0]
    assert d["params"] == unetviz.trace(LUNG).params
    mem = s["memory"]
    assert mem["weights_bytes"] == d["params"] * 2
    assert mem["training_bytes"] == (mem["weights_bytes"] + mem["gradients_bytes"] + mem["master_weights_bytes"]
                                     + mem["optimizer_moments_bytes"] + mem["saved_for_backward_bytes"])
    assert s["nnunet_estimate_elements"] == 528_211_200
    rows = str(run_cost(LUNG, "80x192x160", format="csv")[0]).splitlines()
    head = rows[0].split(",")
    assert all(len(r.split(",")) == len(head) for r in rows)
    assert rows[1].split(",")[head.index("nnunet_estimate_elements")] == "528211200"


TINY_UNET = {"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64], "layers_per_block": 1,
             "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
             "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8,
             "cross_attention_dim": 32, "norm_num_groups": 8, "in_channels": 4, "out_channels": 4}


def _cpu_saved_per_sample(model: Any, args: Any, kw: Any, math: bool) -> int:
    """Elements per sample of the distinct storages autograd keeps for backward (parameters aside), on the CPU:
    a view saved beside its base counts once. ``math``: torch's math SDPA kernel (it keeps the softmax); else the
    CPU's flash kernel (a per-row log-sum-exp)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(x: Any) -> Any:
        s = x.untyped_storage()
        if s.data_ptr() not in params:
            kept[s.data_ptr()] = s.nbytes() // x.element_size()
        return x

    kernels = [SDPBackend.MATH] if math else [SDPBackend.FLASH_ATTENTION]
    with sdpa_kernel(kernels), torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        model(*args, **kw)
    return sum(kept.values()) // int(args[0].shape[0])


@pytest.mark.parametrize("size", ["16x16", "32x32"])
def test_saved_for_backward_is_a_measured_lower_bound_on_a_diffusion_unet(size: str) -> None:
    """A tiny real UNet2DConditionModel with real weights on the CPU: both figures stay below what autograd keeps,
    by what no row stands for (SiLU and GEGLU outputs, residual and time-embedding sums the next norm saves, the
    upsampled maps, proj_out's contiguous copy), less the row outputs only a sum reads. Measured: the fused figure
    is 74% of the flash kernel's, the materialised one 90% (16x16) and 96% (32x32) of the math kernel's."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream import diffusers as ref

    t = unetviz.trace(TINY_UNET, size=size)
    torch.manual_seed(0)
    model = ref.build("UNet2DConditionModel", {k: v for k, v in TINY_UNET.items() if k != "_class_name"})
    model = model.to_empty(device="cpu")
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    args, kw = ref.inputs(model, t)

    def real(v: Any) -> Any:
        if not isinstance(v, torch.Tensor):
            return v
        return torch.randn(v.shape) if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype)

    args, kw = tuple(real(a) for a in args), {k: real(v) for k, v in kw.items()}
    fused, math = _cpu_saved_per_sample(model, args, kw, False), _cpu_saved_per_sample(model, args, kw, True)
    assert 0.7 * fused <= saved_elements(t, False) <= fused, (saved_elements(t, False), fused)
    assert 0.85 * math <= saved_elements(t, True) <= math, (saved_elements(t, True), math)
