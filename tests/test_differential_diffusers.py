"""Differential testing: hypothesis-generated diffusers configs, symbolic trace vs the real model.

Every generated config is either accepted by both unetviz and diffusers (then ``verify`` must find
no disagreement, including where both fail at the same place for an odd size) or rejected by both.
The default run is short; ``make fuzz`` (``pytest -m slow``) runs ``UNETVIZ_FUZZ_EXAMPLES`` examples.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import unetviz  # noqa: E402
from unetviz.verification import verify  # noqa: E402

DOWN = ["DownBlock2D", "AttnDownBlock2D", "CrossAttnDownBlock2D", "ResnetDownsampleBlock2D"]
UP = {"DownBlock2D": "UpBlock2D", "AttnDownBlock2D": "AttnUpBlock2D", "CrossAttnDownBlock2D": "CrossAttnUpBlock2D",
      "ResnetDownsampleBlock2D": "ResnetUpsampleBlock2D"}


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, int]]:
    """A small diffusers config (few channels, so each example runs in well under a second) and a size."""
    cls = draw(st.sampled_from(["UNet2DModel", "UNet2DConditionModel"]))
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([4, 8]))
    channels = [groups * draw(st.integers(1, 3)) for _ in range(n)]
    # mostly the symmetric pairing upstream models use; sometimes any up block, to hit mismatches
    down = draw(st.lists(st.sampled_from(DOWN), min_size=n, max_size=n))
    up = [UP[d] for d in reversed(down)]
    if draw(st.integers(0, 4)) == 0:
        up = draw(st.lists(st.sampled_from(list(UP.values())), min_size=n, max_size=n))
    cfg: dict[str, Any] = {"_class_name": cls, "block_out_channels": channels, "down_block_types": down,
                           "up_block_types": up, "norm_num_groups": groups, "in_channels": draw(st.integers(1, 4)),
                           "out_channels": draw(st.integers(1, 4))}
    if cls == "UNet2DModel":
        cfg["layers_per_block"] = draw(st.integers(1, 2))
        cfg["attention_head_dim"] = draw(st.sampled_from([None, 4, 8]))
        cfg["downsample_padding"] = draw(st.sampled_from([0, 1]))
        cfg["add_attention"] = draw(st.booleans())
    else:
        lpb = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
        cfg["layers_per_block"] = lpb if draw(st.booleans()) else lpb[0]
        cfg["attention_head_dim"] = draw(st.lists(st.sampled_from([1, 2, 4]), min_size=n, max_size=n))
        cfg["transformer_layers_per_block"] = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
        cfg["use_linear_projection"] = draw(st.booleans())
        cfg["cross_attention_dim"] = draw(st.sampled_from([8, 16]))
        cfg["mid_block_type"] = draw(st.sampled_from(["UNetMidBlock2DCrossAttn", "UNetMidBlock2D", None]))
    size = (draw(st.integers(5, 24)), draw(st.integers(5, 24)))
    return cfg, size


def check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    """Both accept and agree, or both reject the config."""
    kwargs = {k: v for k, v in cfg.items() if not k.startswith("_")}
    try:
        unetviz.trace(cfg, size=size)
    except unetviz.UnetvizError as ours:
        cls = getattr(diffusers, cfg["_class_name"])
        try:
            with torch.device("meta"):
                cls(**kwargs)
        except (ValueError, TypeError, AssertionError):  # what diffusers' and torch's constructors raise
            return
        pytest.fail(f"unetviz rejects ({ours}) what diffusers accepts: {cfg}")
    report = verify(cfg, size)  # raises UnetvizError if diffusers rejects what unetviz accepted
    assert report.ok, f"{cfg} at {size}:\n" + "\n".join(
        f"  {d.what} {d.path}: ours {d.ours}, real {d.real}" for d in report.disagreements)


COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@settings(max_examples=25, derandomize=True, **COMMON)  # type: ignore[arg-type]
@given(configs())
def test_generated_configs_agree(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    check(*case)


@pytest.mark.slow
@settings(max_examples=int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "300")), **COMMON)  # type: ignore[arg-type]
@given(configs())
def test_generated_configs_agree_long(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    check(*case)


@pytest.mark.parametrize(("cfg", "size"), [
    ({"_class_name": "UNet2DModel", "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2,
      "up_block_types": ["UpBlock2D"] * 2, "norm_num_groups": 4}, (7, 9)),
    ({"_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16, 16], "norm_num_groups": 4,
      "down_block_types": ["CrossAttnDownBlock2D", "ResnetDownsampleBlock2D", "DownBlock2D"],
      "up_block_types": ["UpBlock2D", "ResnetUpsampleBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": [1, 2, 1],
      "attention_head_dim": 2, "cross_attention_dim": 8, "use_linear_projection": True}, (13, 22)),
    # invalid: the block lists differ in length (both reject)
    ({"_class_name": "UNet2DModel", "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2,
      "up_block_types": ["UpBlock2D"], "norm_num_groups": 4}, (8, 8)),
])
def test_hand_picked_configs(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    check(cfg, size)
