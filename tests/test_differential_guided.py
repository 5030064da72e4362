"""Differential testing of the guided family: hypothesis-generated ``guided_diffusion.unet.UNetModel``
configs, symbolic trace vs the real model (see test_differential_diffusers.py for the rules, the
``make fuzz`` run and ``UNETVIZ_FUZZ_RECORD``). The real model is built by unetviz's adapter, which
reads create_model's string / empty forms as unetviz documents them.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("guided_diffusion")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unetviz.live.upstream import guided as adapter  # noqa: E402

Case = tuple[dict[str, Any], tuple[int, int]]
INVALID: dict[str, list[Any]] = {
    "model_channels": [16, 32.0, 48], "in_channels": [3.0], "num_res_blocks": [-1, 1.0],
    "channel_mult": [[], [1, 2.5], "", "1,x"], "dropout": [1.5], "num_heads": [0, 3], "num_head_channels": [0, 12],
    "num_heads_upsample": [3, 0], "dims": [1, 3], "attention_resolutions": ["16,8", 4],
    "num_classes": [2.0, -1],
}


def _maybe(draw: st.DrawFn, cfg: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        cfg[key] = draw(values)


@st.composite
def configs(draw: st.DrawFn) -> Case:
    """A small UNetModel (32-channel levels: GroupNorm32 needs multiples of 32) and a size."""
    n = draw(st.integers(1, 3))
    cfg: dict[str, Any] = {
        "family": "guided", "image_size": draw(st.sampled_from([16, 8, 32, 64, None])),
        "in_channels": draw(st.integers(1, 4)), "model_channels": 32, "out_channels": draw(st.integers(1, 6)),
        "num_res_blocks": draw(st.integers(0, 2)),
        "attention_resolutions": draw(st.lists(st.sampled_from([1, 2, 4]), max_size=2, unique=True)),
        "channel_mult": draw(st.lists(st.sampled_from([1, 2, 1.5]), min_size=n, max_size=n)),
    }
    for key, values in (
        ("dropout", st.sampled_from([0, 0.1])), ("conv_resample", st.booleans()), ("dims", st.just(2)),
        ("num_classes", st.sampled_from([None, 3])), ("use_checkpoint", st.booleans()),
        ("use_fp16", st.sampled_from([False, True, 1, 0])),  # upstream reads switches by truthiness
        ("num_heads", st.sampled_from([1, 2, 4])), ("num_head_channels", st.sampled_from([-1, 8, 16, 32])),
        ("num_heads_upsample", st.sampled_from([-1, 1, 2])), ("use_scale_shift_norm", st.booleans()),
        ("resblock_updown", st.booleans()), ("use_new_attention_order", st.booleans()),
    ):
        _maybe(draw, cfg, key, values)
    if draw(st.integers(0, 3)) == 3:
        key = draw(st.sampled_from(sorted(INVALID)))
        cfg[key] = draw(st.sampled_from(INVALID[key]))
    if draw(st.integers(0, 9)) == 9:
        del cfg[draw(st.sampled_from(["in_channels", "out_channels", "num_res_blocks", "attention_resolutions"]))]
    size = draw(st.tuples(st.one_of(st.integers(1, 4), st.integers(5, 20)), st.one_of(st.integers(1, 4),
                                                                                       st.integers(5, 20))))
    return cfg, size


def check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    fuzzkit.check("guided", adapter.build, cfg, size)


COMMON = fuzzkit.COMMON


@settings(max_examples=20, derandomize=True, **COMMON)
@given(configs())
def test_generated_configs_agree(case: Case) -> None:
    check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(configs())
def test_generated_configs_agree_long(case: Case) -> None:
    check(*case)


@pytest.mark.parametrize(("cfg", "size"), [
    ({"family": "guided", "image_size": None, "in_channels": 3, "model_channels": 32, "out_channels": 3,
      "num_res_blocks": 1, "attention_resolutions": [], "channel_mult": [1, 2]}, (8, 8)),  # G1
    ({"family": "guided", "image_size": 16, "in_channels": 3, "model_channels": 32, "out_channels": 3,
      "num_res_blocks": 1, "attention_resolutions": [2], "channel_mult": [1, 2], "num_heads": 3}, (9, 7)),
])
def test_hand_picked_configs(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    check(cfg, size)
