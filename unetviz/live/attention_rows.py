"""The attention matmuls of a live model as parameter-free rows, counted as ``FlopCounterMode`` counts them.

q·kᵀ and attn·v own no module, so no hook sees them; the symbolic builders add them as rows of type
``attention`` (``Tracer.attention_matmuls``) and the cost convention includes them. Here every
``F.scaled_dot_product_attention``, ``matmul`` / ``@``, ``bmm``, ``baddbmm`` and ``einsum`` of two activations
(no parameter among its operands) runs under a ``FlopCounterMode`` of its own, so the row's MACs are torch's
count exactly, and becomes a row under the innermost running module: heads x width per head in
``in_channels`` (q·kᵀ) and ``out_channels`` (attn·v), the query's tokens, the keys', the batch rows per sample
(Swin's windows). An attn·v whose weights have the scores' shape joins the q·kᵀ row of the same module, as the
symbolic side makes one row per attention. A product no such reading fits is one row of its own MACs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..core.records import Layer

MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__, torch.bmm,
           torch.Tensor.bmm, torch.baddbmm, torch.Tensor.baddbmm, torch.einsum, F.scaled_dot_product_attention}


def products(func: Any, args: Any) -> list[torch.Tensor]:
    """The tensors a matmul multiplies (``baddbmm``'s added input left out)."""
    if func is torch.einsum:
        rest = args[1:]
        if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
            rest = rest[0]
        return [t for t in rest if isinstance(t, torch.Tensor)]
    ts = [a for a in args if isinstance(a, torch.Tensor)]
    return ts[1:] if func in (torch.baddbmm, torch.Tensor.baddbmm) else ts


def is_attention(func: Any, args: Any) -> bool:
    """A product of two activations: ``func`` is a matmul and no operand is a parameter."""
    if func not in MATMULS:
        return False
    ts = products(func, args)
    return len(ts) >= 2 and not any(isinstance(t, nn.Parameter) for t in ts)


def _prod(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n


class AttentionRows:
    """The rows made so far, and the score shape each q·kᵀ row awaits its attn·v with."""

    def __init__(self, batch: int) -> None:
        self.batch = max(1, batch)
        """The sample's batch: a row's ``batch`` is its leading dim per sample (Swin's windows)."""
        self.open: dict[str, tuple[int, tuple[int, ...]]] = {}  # module path -> (row index, score shape)

    def row(self, layers: list[Layer], path: str, func: Any, args: Any, result: Any, macs: int) -> None:
        """Add (or complete) the row of one product of ``macs`` multiply-accumulates."""
        if macs <= 0:
            return
        ts = products(func, args)
        if func is F.scaled_dot_product_attention and len(ts) >= 3:
            q, k, v = ts[:3]
            heads = _prod(q.shape[1:-2])
            self._new(layers, path, int(q.shape[0]), heads, int(q.shape[-2]), int(k.shape[-2]),
                      heads * int(q.shape[-1]), heads * int(v.shape[-1]), macs)
            return
        if not isinstance(result, torch.Tensor) or result.dim() < 3:
            self._new(layers, path, 1, 1, 1, 1, macs, 0, macs)
            return
        opened = self.open.pop(path, None)
        if opened is not None and ts and tuple(ts[0].shape) == opened[1]:
            i = opened[0]
            # a row's figures are a sample's: torch counted every sample of the batch
            per = self.batch * layers[i].batch * (layers[i].tokens or 1) * (layers[i].kv_tokens or 1)
            if macs % per == 0:  # attn·v: weights of the scores' shape, the value width of every head
                layers[i] = replace(layers[i], out_channels=macs // per)
                return
        rows, tq, tk = int(result.shape[0]), int(result.shape[-2]), int(result.shape[-1])
        self._new(layers, path, rows, _prod(result.shape[1:-2]), tq, tk, macs // (rows * tq * tk), 0, macs)
        if layers[-1].tokens == tq:
            self.open[path] = (len(layers) - 1, tuple(int(d) for d in result.shape))

    def _new(self, layers: list[Layer], path: str, rows: int, heads: int, tq: int, tk: int, in_c: int, out_c: int,
             macs: int) -> None:
        batch = rows // self.batch or 1
        macs //= self.batch  # torch counted the whole batch; a row holds one sample's
        if batch * tq * tk * (in_c + out_c) != macs:  # a reading that misses torch's count: one row of its MACs
            in_c, out_c, tq, tk, batch, heads = macs, 0, 1, 1, 1, 1
        windows = f", {batch} windows" if batch > 1 else ""
        layers.append(Layer(path=path, type="attention", in_channels=in_c, out_channels=out_c, in_size=None,
                            out_size=None, tokens=tq, kv_tokens=tk, heads=heads, batch=batch,
                            note=f"{heads} heads, {tq} x {tk} tokens{windows}"))
