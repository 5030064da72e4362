"""One layer row of an observed trace, read off the module's attributes and the tensors it saw.

In/out channels come from the attributes of the known types (Conv, ConvTranspose, Linear,
GroupNorm, LayerNorm, Embedding), else from dim 1 of the input/output. Sizes are ``shape[2:]`` for
channel-first modules (convolutions, GroupNorm, anything fed a 4-d tensor) and ``None`` for the
channel-last ones (Linear, LayerNorm, Embedding), which get a ``tokens`` count instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..core.records import Layer, Size

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
CHANNEL_LAST = (nn.Linear, nn.LayerNorm, nn.Embedding)


def _size(t: torch.Tensor | None) -> Size | None:
    return None if t is None else tuple(int(d) for d in t.shape[2:])


def _tokens(t: torch.Tensor | None) -> int | None:
    if t is None or t.dim() < 3:
        return None
    n = 1
    for d in t.shape[1:-1]:
        n *= int(d)
    return n


def _pair(v: Any) -> Size:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),)


def _own_tensors(module: nn.Module, path: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    prefix = f"{path}." if path else ""
    out = [(f"{prefix}{k}", tuple(int(d) for d in p.shape)) for k, p in module._parameters.items() if p is not None]
    out += [(f"{prefix}{k}", tuple(int(d) for d in b.shape)) for k, b in module._buffers.items()
            if b is not None and k not in module._non_persistent_buffers_set]
    return tuple(out)


def layer_row(module: nn.Module, path: str, x: torch.Tensor | None, call: int, tokens: bool = False) -> Layer:
    """The row as known at entry; ``_finish_layer`` adds what the output tells. ``tokens``: a 3-d input of a
    module of no known type is a token sequence (B, N, C) (a video model's AlphaBlender)."""
    in_c = int(x.shape[1]) if x is not None and x.dim() > 1 else 0
    out_c = 0
    kernel = stride = padding = None
    if isinstance(module, CONV_TYPES):
        in_c, out_c = module.in_channels, module.out_channels
        kernel, stride = _pair(module.kernel_size), _pair(module.stride)
        padding = None if isinstance(module.padding, str) else _pair(module.padding)
    elif isinstance(module, nn.Linear):
        in_c, out_c = module.in_features, module.out_features
    elif isinstance(module, nn.GroupNorm):
        in_c = out_c = module.num_channels
    elif isinstance(module, nn.LayerNorm):
        in_c = out_c = int(module.normalized_shape[-1]) if module.normalized_shape else 0
    elif isinstance(module, nn.Embedding):
        in_c, out_c = module.num_embeddings, module.embedding_dim
    elif tokens and x is not None and x.dim() == 3:
        in_c = out_c = int(x.shape[-1])
    channel_last = isinstance(module, CHANNEL_LAST) or (tokens and x is not None and x.dim() == 3)
    spatial = isinstance(module, (*CONV_TYPES, nn.GroupNorm)) or (x is not None and x.dim() == 4)
    in_size = _size(x) if spatial and not channel_last else None
    seq = _tokens(x) if channel_last else None
    params = sum(p.numel() for p in module._parameters.values() if p is not None)
    return Layer(path=path, type=type(module).__name__, in_channels=in_c, out_channels=out_c, in_size=in_size,
                 out_size=None, kernel=kernel, stride=stride, padding=padding, params=params,
                 tensors=_own_tensors(module, path), note=f"call {call}" if call > 1 else "", tokens=seq)


def finish_layer(module: nn.Module, row: Layer, out: torch.Tensor | None) -> Layer:
    out_c = row.out_channels
    # a Linear(4, 0) has 0 out features; only modules with no such attribute take it from the output
    known = isinstance(module, (*CONV_TYPES, nn.Linear, nn.GroupNorm, nn.LayerNorm, nn.Embedding))
    if not known and out is not None and out.dim() > 1:
        # a row read as a token sequence (``tokens``: a video model's AlphaBlender) has its channels last
        out_c = int(out.shape[-1] if row.tokens is not None and out.dim() == 3 else out.shape[1])
    out_size = None
    if row.in_size is not None or (out is not None and out.dim() == 4 and not isinstance(module, CHANNEL_LAST)):
        out_size = _size(out)
    return replace(row, out_channels=out_c, out_size=out_size)
