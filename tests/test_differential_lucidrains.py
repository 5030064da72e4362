"""Differential testing of the lucidrains family: hypothesis-generated ``denoising_diffusion_pytorch.Unet``
configs, symbolic trace vs the real model (see test_differential_diffusers.py for the rules, the
``make fuzz`` run and ``UNETVIZ_FUZZ_RECORD``).
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("denoising_diffusion_pytorch")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unetviz.live.upstream import lucidrains as adapter  # noqa: E402

Case = tuple[dict[str, Any], tuple[int, int]]


def _maybe(draw: st.DrawFn, cfg: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        cfg[key] = draw(values)


def _per_stage(n: int, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # an int for every stage, or a tuple (a JSON list) that may be shorter or longer than the stages
    return st.one_of(values, st.lists(values, min_size=max(1, n - 1), max_size=n + 1))


@st.composite
def configs(draw: st.DrawFn) -> Case:
    """A small Unet (dims of a few channels) with any constructor option, and a size."""
    n = draw(st.integers(1, 3))
    cfg: dict[str, Any] = {"family": "lucidrains", "dim": draw(st.sampled_from([8, 4, 6, 2]))}
    mults: Any = draw(st.lists(st.sampled_from([1, 2, 3]), min_size=n, max_size=n))
    if draw(st.integers(0, 14)) == 14:
        mults = draw(st.sampled_from([[], [1.5], [2.0]]))
    cfg["dim_mults"] = mults
    full_bools = st.lists(st.booleans(), min_size=n, max_size=n)
    for key, values in (
        ("init_dim", st.sampled_from([None, 4, 6])), ("out_dim", st.sampled_from([None, 2])),
        ("channels", st.integers(1, 3)), ("self_condition", st.sampled_from([False, True, 1])),
        ("learned_variance", st.booleans()),
        ("learned_sinusoidal_cond", st.booleans()), ("random_fourier_features", st.booleans()),
        ("learned_sinusoidal_dim", st.sampled_from([16, 4, 2, 0, 3])),
        ("sinusoidal_pos_emb_theta", st.sampled_from([10000, 100, 0, -1])),
        ("dropout", st.sampled_from([0.0, 0.1, 2.0])),
        ("attn_dim_head", _per_stage(n, st.sampled_from([4, 8, 2]))),
        ("attn_heads", _per_stage(n, st.sampled_from([1, 2, 4]))),
        ("full_attn", st.one_of(st.sampled_from([None, True, False]), full_bools,
                                st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n),
                                st.lists(st.booleans(), min_size=n + 1, max_size=n + 1))),
        ("flash_attn", st.booleans()),
    ):
        _maybe(draw, cfg, key, values)
    size = draw(st.tuples(st.one_of(st.integers(1, 4), st.integers(5, 20)), st.one_of(st.integers(1, 4),
                                                                                       st.integers(5, 20))))
    return cfg, size


def check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    fuzzkit.check("lucidrains", adapter.build, cfg, size)


COMMON = fuzzkit.COMMON


@settings(max_examples=25, derandomize=True, **COMMON)
@given(configs())
def test_generated_configs_agree(case: Case) -> None:
    check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(configs())
def test_generated_configs_agree_long(case: Case) -> None:
    check(*case)


@pytest.mark.parametrize(("cfg", "size"), [
    ({"family": "lucidrains", "dim": 8, "dim_mults": [1, 2], "full_attn": [1, 1]}, (8, 8)),  # R1: truthiness
    ({"family": "lucidrains", "dim": 8, "dim_mults": [1, 2, 2], "attn_heads": [2, 2]}, (8, 8)),  # zip truncates
    ({"family": "lucidrains", "dim": 8, "dim_mults": [1, 2], "learned_sinusoidal_cond": True,
      "learned_sinusoidal_dim": 3}, (3, 3)),  # A3c: rejected even at a size the forward refuses first
])
def test_hand_picked_configs(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    check(cfg, size)
