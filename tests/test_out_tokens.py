"""Layers that write another number of tokens than they read (``Layer.out_tokens``): each row's out-elements
against the numel of what the real module returns, hooked on the meta device. diffusers' ``AttentionPooling``
(IF-I-XL's text-time embedding) reads the 77 text tokens and returns one pooled vector; GLIGEN's text-image
position net reads 30 boxes and returns 60 tokens; MONAI's ``PatchEmbeddingBlock`` reads a map and returns its
patch tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import unetviz  # noqa: E402
from unetviz.core.quantities import is_free, layer_out_elements  # noqa: E402
from unetviz.core.records import Layer  # noqa: E402


def _row(t: unetviz.Trace, path: str, type_: str) -> Layer:
    return next(x for x in t.layers if x.path == path and x.type == type_)


def test_attention_pooling_writes_one_vector() -> None:
    """The upstream module at IF-I-XL's width and heads, fed the trace's 77 tokens: it returns (1, 4096)."""
    from diffusers.models import embeddings

    pooling: Any = embeddings.AttentionPooling  # untyped upstream
    t = unetviz.trace("if-i-xl")
    row = _row(t, "add_embedding.pool", "AttentionPooling")
    heads = _row(t, "add_embedding.pool", "einsum_attention").heads
    with torch.device("meta"):
        pool = pooling(heads, row.in_channels)
        out = pool(torch.empty(1, row.tokens or 0, row.in_channels))
    assert out.numel() == layer_out_elements(row) == 4096
    assert row.tokens == 77 and getattr(row, "out_tokens", None) == row.written_tokens == 1


def real_model(source: Any, size: str | None) -> tuple[unetviz.Trace, Any, tuple[Any, ...], dict[str, Any]]:
    """(our trace, the real model built on meta by its upstream adapter, the positional and keyword inputs the
    adapter feeds it for our trace's size)."""
    from unetviz.families import lookup
    from unetviz.live.upstream import family_module
    from unetviz.tracing import resolve, trace_config

    config, preset = resolve(source)
    ours = trace_config(config, size, preset)
    family, kwargs = lookup(config)
    adapter = family_module(family)
    model = adapter.build(family.model if family.classes else None, dict(kwargs))
    args, kw = adapter.inputs(model, ours)
    return ours, model, tuple(args), dict(kw)


def _real_outputs(source: Any, size: str | None) -> tuple[unetviz.Trace, dict[str, int]]:
    """(our trace, module path -> numel per sample of the tensor it first returns) from the real model on meta."""
    ours, model, args, kw = real_model(source, size)
    batch = int(args[0].shape[0])
    out: dict[str, int] = {}

    def hook(path: str) -> Any:
        def record(_: Any, __: Any, y: Any) -> None:
            if path not in out and isinstance(y, torch.Tensor):
                out[path] = y.numel() // batch
        return record

    for path, module in model.named_modules():
        module.register_forward_hook(hook(path))
    with torch.no_grad():
        model(*args, **kw)
    return ours, out


def _gligen_text_image() -> dict[str, Any]:
    from test_diffusers_coverage import GLIGEN

    return {**GLIGEN, "attention_type": "gated-text-image"}


def _unetr_2d() -> dict[str, Any]:
    pytest.importorskip("monai")
    from test_monai_transformers import UNETR_2D_CONV

    return UNETR_2D_CONV


Case = tuple[Callable[[], Any], str | None, dict[str, tuple[int | None, int]]]
"""(the source, its size, the rows that change the sequence length: path -> (tokens in, tokens out))."""
CASES: dict[str, Case] = {
    "if-i-xl": (lambda: "if-i-xl", None, {"add_embedding.pool": (77, 1)}),
    "gligen-text-image": (_gligen_text_image, "40x56", {"position_net": (30, 60)}),
    "unetr-2d": (_unetr_2d, "32x32", {"vit.patch_embedding": (None, 4)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_out_elements_equal_the_real_outputs(name: str) -> None:
    """Every parameter-owning row whose module returns a tensor: out-elements = its numel per sample. The rows
    that change the sequence length say so, and only they."""
    source, size, changing = CASES[name]
    ours, real = _real_outputs(source(), size)
    rows = [x for x in ours.layers if not is_free(x) and x.path in real]
    assert len(rows) > 20
    wrong = [(x.path, layer_out_elements(x), real[x.path]) for x in rows if layer_out_elements(x) != real[x.path]]
    assert not wrong
    assert {x.path: (x.tokens, x.out_tokens) for x in ours.layers if getattr(x, "out_tokens", None)} == changing


def test_json_says_where_the_length_changes() -> None:
    layers = unetviz.trace("if-i-xl").to_dict()["layers"]
    pool = next(d for d in layers if d["path"] == "add_embedding.pool" and d["type"] == "AttentionPooling")
    assert (pool["tokens"], pool["out_tokens"], pool["out_elements"]) == (77, 1, 4096)
    assert sum("out_tokens" in d for d in layers) == 1


@pytest.mark.parametrize("name", ["if-i-xl", "unetr-2d"])
def test_an_observed_trace_counts_what_each_layer_writes(name: str) -> None:
    """The hooked observer reads the same out-elements from the real module: the rows that change the sequence
    length say so, as the symbolic trace does."""
    source, size, changing = CASES[name]
    _, model, args, kw = real_model(source(), size)
    seen = unetviz.trace(model, input=args, observe_only=True, **kw)
    _, real = _real_outputs(source(), size)
    rows = [x for x in seen.layers if not is_free(x) and x.path in real]
    assert len(rows) > 20
    assert [(x.path, layer_out_elements(x), real[x.path]) for x in rows if layer_out_elements(x) != real[x.path]] == []
    assert {x.path: x.out_tokens for x in seen.layers if x.out_tokens and not is_free(x)} == \
        {p: out for p, (_, out) in changing.items()}
