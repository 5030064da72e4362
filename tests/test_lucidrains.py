"""The lucidrains family against the real ``denoising_diffusion_pytorch.Unet`` (2.3.4) on meta."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.core.errors import UnetvizError


def upstream() -> Any:
    """The real-model adapter; tests that need it skip without the package, the symbolic ones never do."""
    pytest.importorskip("denoising_diffusion_pytorch")
    return importlib.import_module("unetviz.live.upstream.lucidrains")

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def kwargs_of(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "family"}


def real_manifest(config: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    model = upstream().build(None, kwargs_of(config))
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_preset_matches_real_state_dict() -> None:
    t = unetviz.trace("ddpm-lucidrains")
    assert t.error is None and t.size_source == "family default" and t.in_size == (64, 64)
    assert list(t.manifest) == real_manifest({"dim": 64, "dim_mults": [1, 2, 4, 8], "channels": 3,
                                              "flash_attn": True})
    model = upstream().build(None, {"dim": 64, "flash_attn": True})
    assert t.params == sum(p.numel() for p in model.parameters())
    assert (t.out_channels, t.out_size) == (3, (64, 64))


def test_preset_skip_stack_and_concats() -> None:
    t = unetviz.trace("ddpm-lucidrains")
    # two pushes per stage: after block1, and after block2 + attention
    assert [s.unit for s in t.skips[:2]] == ["downs.0.0", "downs.0.2"]
    assert [s.channels for s in t.skips] == [64, 64, 64, 64, 128, 128, 256, 256]
    assert [s.size for s in t.skips] == [(64, 64)] * 2 + [(32, 32)] * 2 + [(16, 16)] * 2 + [(8, 8)] * 2
    assert all(s.to is not None for s in t.skips)
    ups0 = [c for c in t.concats if c.consumer.startswith("ups.0.")]
    assert [(c.consumer, c.channels) for c in ups0] == [("ups.0.0", 768), ("ups.0.1", 768)]
    assert [op.skip for op in ups0[0].inputs] == [None, 7]
    # the up path upsamples at the end of a stage: ups.1 concatenates the upsampled ups.0 output
    first = next(c for c in t.concats if c.consumer == "ups.1.0")
    assert first.inputs[0].source == "ups.0.3.1" and first.size == (16, 16)
    final = t.concats[-1]
    assert final.consumer == "final_res_block" and [op.source for op in final.inputs] == ["ups.3.3", "init_conv"]
    assert all(op.skip is None for op in final.inputs)
    # a hook sees an Attention (it owns mem_kv) entered before its children
    paths = [x.path for x in t.layers]
    assert paths.index("mid_attn") + 1 == paths.index("mid_attn.norm")
    assert {b for b, _ in t.blocks} >= {"downs.0", "downs.3", "mid_block1", "ups.0", "final_res_block"}


@pytest.mark.parametrize("size", [60, (64, 36)])
def test_size_not_divisible_is_a_model_failure(size: Any) -> None:
    t = unetviz.trace("ddpm-lucidrains", size=size)
    assert t.error is not None and t.error.at is None and t.out_channels is None
    assert "2**(stages-1)" in t.error.message and "= 8" in t.error.message
    assert t.layers == ()


def test_self_condition_concat() -> None:
    t = unetviz.trace({"family": "lucidrains", "dim": 32, "self_condition": True}, size=32)
    c = t.concats[0]
    assert c.consumer == "init_conv" and c.channels == 6 and c.at == 0
    assert [(op.source, op.channels, op.skip) for op in c.inputs] == [("input", 3, None), ("input", 3, None)]
    assert t.layers[0].in_channels == 6


def test_odd_dim_fails_in_time_mlp() -> None:
    # SinusoidalPosEmb emits 2 * (dim // 2) features; the Linear after it wants dim
    t = unetviz.trace({"family": "lucidrains", "dim": 33}, size=32)
    assert t.error is not None and t.error.at == "time_mlp.1"


def test_missing_dim_is_rejected() -> None:
    with pytest.raises(UnetvizError, match=r"^dim: required"):
        unetviz.trace({"family": "lucidrains"})


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    dim = draw(st.sampled_from([8, 16, 24]))

    def per_stage(values: st.SearchStrategy[int]) -> Any:
        return draw(st.one_of(values, st.lists(values, min_size=n, max_size=n)))

    config: dict[str, Any] = {
        "family": "lucidrains", "dim": dim,
        "dim_mults": draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
        "init_dim": draw(st.sampled_from([None, 8, 12])),
        "out_dim": draw(st.sampled_from([None, 1, 5])),
        "channels": draw(st.integers(1, 4)),
        "self_condition": draw(st.booleans()),
        "learned_variance": draw(st.booleans()),
        "learned_sinusoidal_cond": draw(st.booleans()),
        "random_fourier_features": draw(st.booleans()),
        "learned_sinusoidal_dim": draw(st.sampled_from([0, 8, 16])),
        "attn_heads": per_stage(st.integers(1, 4)),
        "attn_dim_head": per_stage(st.sampled_from([4, 8, 16])),
        "full_attn": draw(st.one_of(st.none(), st.booleans(), st.lists(st.booleans(), min_size=n, max_size=n))),
        "flash_attn": draw(st.booleans()),
        "dropout": draw(st.sampled_from([0.0, 0.1])),
    }
    return {k: v for k, v in config.items() if v is not None or draw(st.booleans())}


def size_for(config: dict[str, Any], k: int, j: int) -> tuple[int, int]:
    f = 2 ** (len(config["dim_mults"]) - 1)
    return f * k, f * j


@SETTINGS
@given(valid_configs())
def test_random_valid_configs_match_real_state_dict(config: dict[str, Any]) -> None:
    t = unetviz.trace(config, size=size_for(config, 1, 2))
    assert t.error is None
    assert list(t.manifest) == real_manifest(config)


INVALID: list[tuple[str, Any]] = [
    ("dropout", 1.5), ("dropout", -0.1), ("attn_heads", -1), ("attn_dim_head", -4), ("dim_mults", []),
    ("dim_mults", [1, 1.5]), ("dim", -8), ("channels", -1), ("full_attn", "extra"), ("learned_sinusoidal_dim", 7),
    ("no_such_option", 1),
]


@SETTINGS
@given(valid_configs(), st.sampled_from(INVALID))
def test_random_invalid_configs_are_rejected_by_both(config: dict[str, Any], bad: tuple[str, Any]) -> None:
    key, value = bad
    config = dict(config)
    if key == "full_attn":  # one entry more than there are stages
        value = [True] * (len(config["dim_mults"]) + 1)
    if key == "learned_sinusoidal_dim":
        config["learned_sinusoidal_cond"] = True
    named = key
    if key == "dim_mults" and value == []:
        # no stages: the default full_attn, (*(False,) * -1, True), still has one entry, so upstream asserts
        config["full_attn"], named = None, "full_attn"
    config[key] = value
    with pytest.raises(UnetvizError) as info:
        unetviz.trace(config, size=64)
    message = str(info.value)
    assert "\n" not in message and message.startswith(named)
    with pytest.raises(Exception):  # noqa: B017  (upstream raises AssertionError, TypeError, ValueError...)
        upstream().build(None, kwargs_of(config))


# ---- against the hooked forward pass of the real model (unetviz.verify) ---------------------------------

def _verifier() -> Any:
    try:
        return importlib.import_module("unetviz.live.verification").verify
    except ImportError:
        return None


needs_verify = pytest.mark.skipif(_verifier() is None, reason="unetviz.verify is not there yet")


@needs_verify
@pytest.mark.parametrize("size", [None, (64, 96), 60])
def test_verify_preset(size: Any) -> None:
    report = _verifier()("ddpm-lucidrains", size=size)
    assert report.ok, report.disagreements


@needs_verify
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs(), st.integers(1, 2), st.integers(1, 3))
def test_verify_random_valid_configs(config: dict[str, Any], k: int, j: int) -> None:
    report = _verifier()(config, size=size_for(config, k, j))
    assert report.ok, report.disagreements
