"""The ldm family (original SD naming) against the real ``ldm`` UNetModel of stable-diffusion-sdkit 2.1.5.

The symbolic tests never need the upstream package; the real-model tests import it inside the test
(``pytest.importorskip("ldm")``), so a machine without it still runs the rest.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.core.errors import UnetvizError
from unetviz.families.openai.ldm import ldm_kwargs_from_yaml

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")

FIGURES = {"sd15-ldm": (859_520_964, 686), "sd21-ldm": (865_910_724, 686), "sdxl-sgm": (2_567_463_684, 1_680)}
SMALL: dict[str, Any] = {"family": "ldm", "image_size": 16, "in_channels": 4, "out_channels": 4,
                         "model_channels": 64, "num_res_blocks": 1, "attention_resolutions": [1, 2],
                         "channel_mult": [1, 2], "num_heads": 4}
SPATIAL: dict[str, Any] = {**SMALL, "use_spatial_transformer": True, "context_dim": 32}


def kwargs_of(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "family"}


def config_of(source: str | dict[str, Any]) -> dict[str, Any]:
    config, _ = unetviz.api.resolve(source)
    return dict(config)


def disagreements(source: str | dict[str, Any], size: Any = None) -> list[Any]:
    """verify's hooked forward against the trace: layers, units, blocks, concats, skips, manifest, output."""
    return list(unetviz.verify(source, size).disagreements)


def real_model(source: str | dict[str, Any]) -> Any:
    from unetviz.live.upstream import ldm as real

    return real.build(None, kwargs_of(config_of(source)))


def check_against_real(source: str | dict[str, Any], size: Any = None) -> unetviz.Trace:
    """Manifest (keys, order, shapes) and params equal the real model's; verify's hooks agree."""
    t = unetviz.trace(source, size=size)
    model = real_model(source)
    assert list(unetviz.api.weights(source).tensors.items()) == [
        (k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert t.params == sum(p.numel() for p in model.parameters())
    assert disagreements(source, size) == []
    return t


# ---- symbolic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(FIGURES))
def test_preset_figures(preset: str) -> None:
    t = unetviz.trace(preset)
    assert (t.params, len(t.manifest)) == FIGURES[preset]
    assert t.error is None and t.out_channels == 4 and t.size_source == "image_size"


@pytest.mark.parametrize(("ours", "theirs"), [("sd15-ldm", "sd15"), ("sd21-ldm", "sd21"), ("sdxl-sgm", "sdxl")])
def test_same_network_as_the_diffusers_preset_by_counts(ours: str, theirs: str) -> None:
    """The installed ldm cannot build SDXL (no per-level depth, no ADM "sequential"): SDXL is held to
    diffusers' real-verified preset by the multiset of tensor shapes, the params and the layer count."""
    a, b = unetviz.trace(ours), unetviz.trace(theirs)
    assert a.params == b.params and len(a.layers) == len(b.layers)
    assert Counter(s for _, s in a.manifest) == Counter(s for _, s in b.manifest)


def test_original_key_names_and_registration_order() -> None:
    keys = [k for k, _ in unetviz.trace("sd15-ldm").manifest]
    assert keys[:4] == ["time_embed.0.weight", "time_embed.0.bias", "time_embed.2.weight", "time_embed.2.bias"]
    block = [k for k in keys if k.startswith("input_blocks.1.1.transformer_blocks.0.")]
    # BasicTransformerBlock registers attn1, ff, attn2, norm1..3, though it runs norm1 first
    assert list(dict.fromkeys(k.split(".")[5] for k in block)) == ["attn1", "ff", "attn2", "norm1", "norm2", "norm3"]
    assert block[-1].endswith("norm3.bias") and "out.2.bias" == keys[-1]
    sdxl = [k for k, _ in unetviz.trace("sdxl-sgm").manifest]
    assert "label_emb.0.0.weight" in sdxl and "label_emb.0.2.bias" in sdxl
    assert sum(1 for k in sdxl if k.endswith("attn2.to_k.weight") and k.startswith("middle_block.1.")) == 10


def test_heads_notes_and_skip_stack() -> None:
    t = unetviz.trace("sd21-ldm")
    notes = {u.path: u.note for u in t.units}
    assert notes["input_blocks.1.1"].startswith("5 heads x 64 = 320") and "linear proj" in notes["input_blocks.1.1"]
    assert notes["middle_block.1"].startswith("20 heads x 64")
    assert len(t.skips) == 12 and all(s.to is not None for s in t.skips)
    assert [s.to for s in t.skips][::-1] == [f"output_blocks.{n}" for n in range(12)]
    assert dict(t.blocks)["output_blocks.5"].startswith("decoder level 2, 24x24")


@pytest.mark.parametrize(("bad", "match"), [
    ({"model_channels": None}, r"^model_channels: got None"),
    ({"use_spatial_transformer": True}, r"^context_dim: null, but use_spatial_transformer"),
    ({"context_dim": 32}, r"^use_spatial_transformer: false"),
    ({"num_heads": -1}, r"^num_heads: -1 and num_head_channels: -1"),
    ({"num_res_blocks": [1, 1, 1]}, r"^num_res_blocks has 3 entries but channel_mult has 2"),
    ({"num_attention_blocks": [2, 1]}, r"^num_attention_blocks: got \[2, 1\]"),
    ({"disable_self_attentions": [True]}, r"^disable_self_attentions"),
    ({"num_classes": "sequential"}, r"^adm_in_channels: null"),
    ({"num_classes": "bogus"}, r"^num_classes: got 'bogus'"),
    ({"model_channels": 48}, r"^model_channels / channel_mult: input_blocks.1.0 normalises 48"),
    ({"dims": 3}, r"^dims: got 3"),
    ({"n_embed": 8192}, r"^n_embed: got 8192"),
    ({"num_head_channels": 0}, r"^num_head_channels: got 0"),
    ({"legacy": False, "num_heads": 3}, r"do not divide the 64"),
    ({"use_checkpoint": True, "use_fairscale_checkpoint": True}, r"^use_fairscale_checkpoint"),
    ({"bogus": 1}, r"^bogus: not an argument of ldm"),
])
def test_config_errors_are_one_line(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(UnetvizError, match=match) as e:
        unetviz.trace({**SMALL, **bad})
    assert "\n" not in str(e.value)


def test_missing_required_and_default_size() -> None:
    with pytest.raises(UnetvizError, match=r"^num_res_blocks: required"):
        unetviz.trace({k: v for k, v in SMALL.items() if k != "num_res_blocks"})
    t = unetviz.trace({k: v for k, v in SMALL.items() if k != "image_size"})
    assert t.in_size == (64, 64) and "default" in t.size_source
    assert unetviz.trace(SMALL, size="16x24").in_size == (16, 24)


def test_a_size_the_decoder_cannot_restore_fails_at_the_concat() -> None:
    t = unetviz.trace("sd15-ldm", size=60)
    assert t.error is not None and t.error.at == "output_blocks.3" and t.out_channels is None
    assert "16x16" in t.error.message and "15x15" in t.error.message and "divisible by 8" in t.error.message
    assert len(unetviz.api.weights("sd15-ldm").tensors) == 686


V1_INFERENCE: dict[str, Any] = {"model": {
    "base_learning_rate": 1.0e-04, "target": "ldm.models.diffusion.ddpm.LatentDiffusion",
    "params": {"linear_start": 0.00085, "image_size": 64, "channels": 4, "conditioning_key": "crossattn",
               "unet_config": {"target": "ldm.modules.diffusionmodules.openaimodel.UNetModel", "params": {
                   "image_size": 32, "in_channels": 4, "out_channels": 4, "model_channels": 320,
                   "attention_resolutions": [4, 2, 1], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
                   "num_heads": 8, "use_spatial_transformer": True, "transformer_depth": 1, "context_dim": 768,
                   "use_checkpoint": True, "legacy": False}},
               "first_stage_config": {"target": "ldm.models.autoencoder.AutoencoderKL", "params": {}}}}}


def test_yaml_extraction() -> None:
    kwargs = ldm_kwargs_from_yaml(V1_INFERENCE)
    assert kwargs == kwargs_of(config_of("sd15-ldm"))  # image_size: LatentDiffusion's 64, not the unet's "unused" 32
    sgm = {"model": {"target": "sgm.models.diffusion.DiffusionEngine", "params": {"network_config": {
        "target": "sgm.modules.diffusionmodules.openaimodel.UNetModel",
        "params": {k: v for k, v in kwargs_of(config_of("sdxl-sgm")).items() if k != "image_size"}}}}}
    t = unetviz.trace({"family": "ldm", **ldm_kwargs_from_yaml(sgm)})
    assert (t.params, len(t.manifest)) == FIGURES["sdxl-sgm"]
    for bad, match in [({"model": {"params": {}}}, "no unet_config or network_config"), ([], "not an original"),
                       ({"model": {"params": {"unet_config": {"target": "x.VideoUNet", "params": {}}}}}, "target")]:
        with pytest.raises(UnetvizError, match=match):
            ldm_kwargs_from_yaml(bad)


def test_tracing_never_imports_torch() -> None:
    code = "import sys, unetviz; unetviz.trace('sdxl-sgm'); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- against the real ldm ------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["sd15-ldm", "sd21-ldm"])
@pytest.mark.parametrize("size", [None, "48x80"])
def test_presets_match_the_real_model(preset: str, size: str | None) -> None:
    pytest.importorskip("ldm")
    t = check_against_real(preset, size)
    assert (t.params, len(t.manifest)) == FIGURES[preset]
    assert unetviz.verify(preset, size).counts["concats"] == 12


def test_a_failing_size_fails_in_the_real_model_too() -> None:
    pytest.importorskip("ldm")
    report = unetviz.verify("sd15-ldm", 60)
    assert report.error_ours is not None and report.error_real is not None
    assert report.ok and not report.disagreements


@pytest.mark.parametrize("extra", [
    {"transformer_depth": 2, "disable_self_attentions": [True, False]},  # context_dim repeated per block in ldm
    {"num_head_channels": 48, "num_heads": -1, "use_linear_in_transformer": True},  # legacy: head width 64
    {"num_head_channels": 48, "num_heads": -1, "use_linear_in_transformer": True, "legacy": False},  # proj_out fails
    {"num_classes": 10, "resblock_updown": True, "use_scale_shift_norm": True, "disable_middle_self_attn": True},
])
def test_transformer_options_match_the_real_model(extra: dict[str, Any]) -> None:
    pytest.importorskip("ldm")
    source = {**SPATIAL, **extra}
    t = check_against_real(source)
    if extra.get("legacy") is False:
        assert t.error is not None and t.error.at == "input_blocks.1.1.proj_out"


def test_sdxl_is_refused_by_the_installed_ldm_with_a_clear_error() -> None:
    pytest.importorskip("ldm")
    with pytest.raises(UnetvizError, match="per-level transformer_depth"):
        real_model("sdxl-sgm")


# ---- random valid and invalid configs against the real constructor --------------------------------
@st.composite
def valid_configs(draw: Any) -> tuple[dict[str, Any], tuple[int, int]]:
    levels = draw(st.integers(1, 3))
    spatial = draw(st.booleans())
    cfg: dict[str, Any] = {
        **SMALL, "model_channels": draw(st.sampled_from([32, 64])),
        "channel_mult": draw(st.lists(st.sampled_from([1, 2]), min_size=levels, max_size=levels)),
        "in_channels": draw(st.integers(1, 4)), "out_channels": draw(st.integers(1, 4)),
        "num_res_blocks": draw(st.integers(0, 2) | st.lists(st.integers(0, 2), min_size=levels, max_size=levels)),
        "attention_resolutions": draw(st.lists(st.sampled_from([1, 2, 4]), max_size=3, unique=True)),
        "legacy": draw(st.booleans()), "use_scale_shift_norm": draw(st.booleans()),
        "resblock_updown": draw(st.booleans()), "conv_resample": draw(st.booleans()),
        "use_new_attention_order": draw(st.booleans()), "num_classes": draw(st.sampled_from([None, 5, "continuous"])),
    }
    if draw(st.booleans()):
        cfg.update(num_heads=-1, num_head_channels=32)
    else:
        cfg.update(num_heads=draw(st.sampled_from([1, 2, 4])), num_head_channels=-1)
    if spatial:
        cfg.update(use_spatial_transformer=True, context_dim=draw(st.sampled_from([16, 24])),
                   transformer_depth=draw(st.integers(0, 2)), use_linear_in_transformer=draw(st.booleans()),
                   disable_middle_self_attn=draw(st.booleans()))
    unit = 2 ** (levels - 1)
    return cfg, (unit * draw(st.integers(1, 3)), unit * draw(st.integers(1, 3)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_random_valid_configs_match_the_real_model(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    pytest.importorskip("ldm")
    cfg, size = case
    check_against_real(cfg, size)


# each breaks one rule of UNetModel.__init__ (or of its forward: heads that do not divide the width)
INVALID: list[dict[str, Any]] = [
    {"model_channels": 48}, {"use_spatial_transformer": True}, {"context_dim": 32}, {"num_heads": -1},
    {"num_res_blocks": [1, 1, 1]}, {"disable_self_attentions": [False]}, {"num_attention_blocks": [2, 2]},
    {"num_head_channels": 24}, {"num_heads": 3}, {"legacy": False, "num_heads": 3}, {"dropout": 1.5},
    {"num_classes": "sequential"}, {"num_head_channels": 0},
]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(INVALID), st.booleans(), st.booleans())
def test_random_invalid_configs_are_rejected_by_both(bad: dict[str, Any], updown: bool, legacy: bool) -> None:
    pytest.importorskip("ldm")
    import torch
    from ldm.modules.diffusionmodules.openaimodel import UNetModel  # type: ignore[import-untyped]

    from unetviz.live.upstream import ldm as real

    cfg = {**SMALL, "resblock_updown": updown, "legacy": legacy, **bad}
    try:
        t = unetviz.trace(cfg)
    except UnetvizError as e:
        assert "\n" not in str(e)
    else:
        assert t.error is not None, "a config the real model rejects must not trace cleanly"
    shell = unetviz.trace(SPATIAL)  # inputs only need in_channels, a size and a context width
    with pytest.raises((AssertionError, ValueError, RuntimeError, TypeError, IndexError, ZeroDivisionError)):
        with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = UNetModel(**kwargs_of(cfg)).eval()
            args, kw = real.inputs(model, shell)
            with torch.no_grad():
                model(*args, **{**kw, "context": torch.empty(2, 77, 32, device="meta")})
