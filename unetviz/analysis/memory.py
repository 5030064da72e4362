"""Activation memory and cost per level of one trace, from its records alone (torch-free).

The figures (``memory_of``), what the JSON trace's ``"memory"`` holds, each at a batch and a dtype:

- ``skip_stack``: every tensor pushed for the decoder, summed (what the up path holds at the bottom).
- ``largest_attention``: the biggest attention score tensor, heads x query tokens x key tokens.
- ``peak``: the most activation bytes alive at once in an inference forward pass (``torch.no_grad``), under
  two assumptions about attention. ``materialised``: the score tensor exists, as torch's math kernel of
  ``scaled_dot_product_attention`` (what runs on the CPU and on the meta device, and where no fused kernel
  applies) keeps it: scores, softmax and its masked copy at once (3 copies plus a boolean mask), or twice
  where the model computes softmax by hand (einsum / matmul, 2 copies). ``memory_efficient``: a fused
  kernel (flash / xformers) that never holds the scores.
- The peak model: at each layer, the skips pushed and not yet popped, plus the input its unit keeps for the
  residual, plus the layer's input and output (an attention: q, k, v and the score copies). Weights and the
  model's inputs are not counted here (``analysis.training`` adds the weights and makes the training
  estimate). Checked against a live-tensor tracker on the real model on meta (``tests/test_cost.py``),
  materialised only: the meta device has no fused kernel.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from ..core.quantities import ATTENTION_TYPES, is_free, layer_macs
from ..core.records import Layer, Trace, Unit, numel

DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
"""``--dtype`` -> bytes per element."""
SCORE_COPIES = 2
"""Score-sized tensors an attention holds at its peak when it materialises them: the scores and their
softmax (torch's math SDPA kernel, a hand-written einsum / matmul softmax alike; measured on meta)."""


@dataclass(frozen=True, kw_only=True)
class Attention:
    """One attention's matmuls and its score tensor at batch 1."""

    path: str
    """The attention module's path."""
    heads: int
    """Heads."""
    tokens: int
    """Query tokens."""
    kv_tokens: int
    """Key / value tokens."""
    scores: int
    """Elements of the score tensor (heads x tokens x kv_tokens; linear attention: heads x d x e)."""


@dataclass(frozen=True, kw_only=True)
class Memory:
    """Activation memory of one trace at a batch and dtype (see the module docstring)."""

    batch: int
    """The batch the byte figures are for."""
    dtype: str
    """``fp32``, ``fp16`` or ``bf16``."""
    skip_elements: int
    """Elements of every skip pushed, at batch 1."""
    skip_bytes: int
    """The skip stack in bytes at ``batch``."""
    largest: Attention | None
    """The attention with the largest score tensor; None without attention."""
    largest_bytes: int
    """Its score tensor in bytes at ``batch``."""
    peak_materialised: int
    """Peak live activation bytes with score tensors materialised."""
    peak_efficient: int
    """Peak live activation bytes with a fused (memory-efficient) attention."""
    peak_at: str
    """The layer where the materialised peak occurs."""
    peak_efficient_at: str = ""
    """The layer where the memory-efficient peak occurs (elsewhere when the scores made the other one)."""


def attentions(t: Trace) -> list[Attention]:
    """Every attention-matmul row as an ``Attention``, in forward order."""
    out = []
    for x in t.layers:
        if x.type in ATTENTION_TYPES:
            heads, tq, tk = x.heads or 1, x.tokens or 0, x.kv_tokens or 0
            scores = (heads * tq * tk if x.type != "linear_attention"
                      else x.in_channels * x.out_channels // heads)
            out.append(Attention(path=x.path, heads=heads, tokens=tq, kv_tokens=tk, scores=scores))
    return out


def _elements(channels: int, size: tuple[int, ...] | None, tokens: int | None) -> int:
    return channels * (numel(size) if size is not None else tokens or 1)


def _work(x: Layer, copies: int | None) -> int:
    """Elements a layer's step holds at once: input and output, or an attention's q, k, v and scores."""
    if x.type not in ATTENTION_TYPES:
        return _elements(x.in_channels, x.in_size, x.tokens) + _elements(x.out_channels, x.out_size,
                                                                          x.written_tokens)
    tq, tk = x.tokens or 0, x.kv_tokens or 0
    qkv = x.in_channels * (tq + tk) + x.out_channels * (tk + tq)
    if x.type == "linear_attention" or copies is None:
        return qkv
    return qkv + copies * (x.heads or 1) * tq * tk


def _skip_ranges(t: Trace) -> list[tuple[int, int, int]]:
    """(pushed after layer, popped at layer, elements) of every skip."""
    after = {u.path: u.last for u in t.units}
    popped = {c.consumer: c.at for c in t.concats}
    out = []
    for s in t.skips:
        start = after.get(s.unit, after.get(s.source, 0))
        end = popped.get(s.to, len(t.layers)) if s.to is not None else len(t.layers)
        out.append((start, end, _elements(s.channels, s.size, None)))
    return out


def _held(t: Trace) -> Iterator[tuple[Layer, int]]:
    """Each layer with the elements held while it runs, its own input and output aside: the skips pushed and
    not yet popped, plus the input its unit keeps for the residual."""
    delta = [0] * (len(t.layers) + 1)  # skips held: +n where a skip is pushed, -n where it is popped
    for a, b, n in _skip_ranges(t):
        if a < b:
            delta[a] += n
            delta[b] -= n
    residual = [0] * len(t.layers)
    for u in t.units:
        kept = _elements(u.in_channels, u.in_size, None)
        residual[u.first + 1:u.last] = [kept] * max(0, u.last - u.first - 1)
    held = 0
    for i, x in enumerate(t.layers):
        held += delta[i]
        yield x, held + residual[i]


def peak_elements(t: Trace, copies: int | None) -> tuple[int, str]:
    """(peak live activation elements at batch 1, the layer where it is); ``copies`` None: fused attention."""
    best, at = 0, ""
    for x, held in _held(t):
        live = held + _work(x, copies)
        if live > best:
            best, at = live, x.path
    return best, at


def _peaks(t: Trace) -> tuple[int, str, int, str]:
    """(materialised peak, its layer, memory-efficient peak, its layer) in one walk: both ``peak_elements``."""
    mat, at, eff, eff_at = 0, "", 0, ""
    for x, held in _held(t):
        live = held + _work(x, SCORE_COPIES)
        if live > mat:
            mat, at = live, x.path
        fused = held + _work(x, None) if x.type in ATTENTION_TYPES else live  # the same but for scores
        if fused > eff:
            eff, eff_at = fused, x.path
    return mat, at, eff, eff_at


def memory_of(t: Trace, batch: int = 1, dtype: str = "fp16") -> Memory:
    """The memory figures of ``t`` at ``batch`` and ``dtype``."""
    return _memory(t, attentions(t), batch, dtype)


def _memory(t: Trace, atts: list[Attention], batch: int, dtype: str) -> Memory:
    size = DTYPE_BYTES[dtype] * batch
    skips = sum(n for _, _, n in _skip_ranges(t))
    largest = max(atts, key=lambda a: a.scores, default=None)
    mat, at, eff, eff_at = _peaks(t)
    return Memory(batch=batch, dtype=dtype, skip_elements=skips, skip_bytes=skips * size, largest=largest,
                  largest_bytes=(largest.scores if largest else 0) * size, peak_materialised=mat * size,
                  peak_efficient=eff * size, peak_at=at, peak_efficient_at=eff_at)


def memory_dict(t: Trace, batch: int = 1, dtype: str = "fp16") -> dict[str, Any]:
    """The JSON trace's ``"memory"``: see the module docstring, field by field."""
    atts = attentions(t)
    m = _memory(t, atts, batch, dtype)
    big = m.largest
    return {
        "batch": batch, "dtype": dtype, "bytes_per_element": DTYPE_BYTES[dtype],
        "skip_stack": {"elements": m.skip_elements, "bytes": m.skip_bytes},
        "largest_attention": None if big is None else {
            "path": big.path, "heads": big.heads, "tokens": big.tokens, "kv_tokens": big.kv_tokens,
            "elements": big.scores, "bytes": m.largest_bytes},
        "attention_scores": [{"path": a.path, "elements": a.scores} for a in atts],
        "peak": {"materialised": m.peak_materialised, "memory_efficient": m.peak_efficient, "at": m.peak_at,
                 "score_copies": SCORE_COPIES},
    }


def block_macs(t: Trace) -> dict[str, int]:
    """Block path -> MACs of its units' layers, in forward order (the blocks partition the model)."""
    out: dict[str, int] = {}
    for u in t.units:
        out[u.block] = out.get(u.block, 0) + sum(layer_macs(x) for x in t.layers[u.first:u.last])
    return out


def level_of(t: Trace, u: Unit) -> int | None:
    """The U-Net level a unit works at: how many times the input's resolution was halved to its output
    (its input for a unit without an output size); None for a unit with no spatial size (embeddings)."""
    size = u.out_size or u.in_size
    # a video's units work per frame (HxW) on an FxHxW input: compare the trailing axes
    ref = t.in_size[-len(size):] if size else ()
    if not size or len(ref) != len(size):
        return None
    # the axis halved most often: an in-plane (1, 2, 2) stride is a level as much as a (2, 2, 2) one
    return max(0, *(round(math.log2(max(1, a) / max(1, b))) for a, b in zip(ref, size, strict=True)))


def without_free_rows(t: Trace) -> Trace:
    """``t`` without its parameter-free rows (``quantities.is_free``), unit and concat indices remapped:
    the parameter-owning modules alone, as a hooked real model and a layer-level diagram see them."""
    if not any(is_free(x) for x in t.layers):
        return t
    new: list[int] = []  # new[i]: index in the stripped layers of the first kept row at or after i
    kept = 0
    for x in t.layers:
        new.append(kept)
        kept += not is_free(x)
    new.append(kept)
    units = tuple(replace(u, first=new[u.first], last=new[u.last]) for u in t.units)
    concats = tuple(replace(c, at=new[c.at]) for c in t.concats)
    return replace(t, layers=tuple(x for x in t.layers if not is_free(x)), units=units, concats=concats)

