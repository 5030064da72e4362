"""One layer row of an observed trace, read off the module's attributes and the tensors it saw.

In/out channels come from the attributes of the known types (Conv, ConvTranspose, Linear,
GroupNorm, BatchNorm, InstanceNorm, LayerNorm, Embedding), else from the input/output: dim 1, or the last
dim of a token sequence. Sizes are ``shape[2:]`` for channel-first tensors of any rank and ``None`` for the
channel-last modules (Linear, LayerNorm, Embedding) and token sequences, which get a ``tokens`` count instead.

Channel-first: the convolutions and the channel norms (fed 3-d tensors or more: a GroupNorm on a flattened
(B, C, H*W) map is (H*W,)), and any other module fed a tensor of 4 or more dims (a 5-d one gives DxHxW or
FxHxW). A 3-d tensor fed to a module of no known type is read by the sample's rank (``rank``), the one thing
that tells a channel-first (B, C, L) from a token sequence (B, N, C) for every family: in a 1-D model (a 3-d
sample) it is (B, C, L); in any other (an image, a volume, a video whose blocks fold frames into the batch)
channel-first maps have 4 or more dims, so it is a token sequence: feature width C as channels, N in
``tokens`` (``docs/design.md``). A module's own parameters cannot tell: GLIGEN's gated fuser owns two
scalars, and ``position_net`` (fed 4-wide boxes) none of that width.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ..core.records import Layer, Size

CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
Conv = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d
FEATURE_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d,
                 nn.InstanceNorm2d, nn.InstanceNorm3d)
NORM_TYPES = (nn.GroupNorm, *FEATURE_NORMS)
CHANNEL_FIRST = (*CONV_TYPES, *NORM_TYPES)
CHANNEL_LAST = (nn.Linear, nn.LayerNorm, nn.Embedding)
KNOWN = (*CHANNEL_FIRST, *CHANNEL_LAST)


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


def _channels(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) channels from a known type's attributes, else None."""
    if isinstance(module, CONV_TYPES):
        return module.in_channels, module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels, module.num_channels
    if isinstance(module, FEATURE_NORMS):  # BatchNorm, InstanceNorm: one scale per channel
        return module.num_features, module.num_features
    if isinstance(module, nn.LayerNorm):
        c = int(module.normalized_shape[-1]) if module.normalized_shape else 0
        return c, c
    if isinstance(module, nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    return None


def _is_sequence(module: nn.Module, t: torch.Tensor | None, rank: int) -> bool:
    """``t`` is a channel-last token sequence for ``module`` (module docstring)."""
    if isinstance(module, CHANNEL_LAST):
        return True
    return t is not None and t.dim() == 3 and rank != 3 and not isinstance(module, CHANNEL_FIRST)


def _channel_first(module: nn.Module, t: torch.Tensor | None, rank: int) -> bool:
    """``t`` is a channel-first tensor for ``module``, whose size is ``shape[2:]`` (module docstring)."""
    if t is None or _is_sequence(module, t, rank):
        return False
    if isinstance(module, (*CONV_TYPES, nn.GroupNorm)):  # whatever it is fed: a GroupNorm on (B, C) has size ()
        return True
    return t.dim() >= 3  # a BatchNorm1d or a module of no known type also takes (B, C) vectors: no size


def layer_row(module: nn.Module, path: str, x: torch.Tensor | None, call: int, rank: int = 4,
              batch: int = 1) -> Layer:
    """The row as known at entry; ``finish_layer`` adds what the output tells. ``rank``: dims of the tensors
    the model's blocks pass (4 for an image or a video's folded frames, 5 for a volume, 3 for a 1-D signal);
    ``batch``: the sample's, so that a row's ``batch`` is the rows it runs on per sample (a video's frames
    folded into the batch, Swin's windows: a Linear's MACs count every leading dim)."""
    in_c = int(x.shape[1]) if x is not None and x.dim() > 1 else 0
    out_c = 0
    kernel = stride = padding = None
    seq = _is_sequence(module, x, rank)
    known = _channels(module)
    if known is not None:
        in_c, out_c = known
    elif seq and x is not None:
        in_c = out_c = int(x.shape[-1])
    if isinstance(module, CONV_TYPES):
        kernel, stride = _pair(module.kernel_size), _pair(module.stride)
        padding = None if isinstance(module.padding, str) else _pair(module.padding)
    in_size = _size(x) if _channel_first(module, x, rank) else None
    params = sum(p.numel() for p in module._parameters.values() if p is not None)
    return Layer(path=path, type=type(module).__name__, in_channels=in_c, out_channels=out_c, in_size=in_size,
                 out_size=None, kernel=kernel, stride=stride, padding=padding, params=params,
                 tensors=_own_tensors(module, path), note=f"call {call}" if call > 1 else "",
                 tokens=_tokens(x) if seq else None, batch=_rows(x, batch))


def _rows(x: torch.Tensor | None, batch: int) -> int:
    """Rows per sample of the input's leading dim (1 for a scalar or vector input)."""
    if x is None or x.dim() < 2:
        return 1
    return max(1, int(x.shape[0]) // max(1, batch))


def finish_layer(module: nn.Module, row: Layer, out: torch.Tensor | None, rank: int = 4) -> Layer:
    """``row`` completed with its output's channels (for a module of no known type) and size."""
    out_c = row.out_channels
    # a Linear(4, 0) has 0 out features; only modules with no such attribute take it from the output
    if not isinstance(module, KNOWN) and out is not None and out.dim() > 1:
        # a token sequence (position_net's grounding tokens, a gated fuser's) has its channels last
        out_c = int(out.shape[-1] if _is_sequence(module, out, rank) else out.shape[1])
    out_size = None
    # a module fed a map that returns tokens (UNETR's patch embedding: DxHxW in, (B, N, C) out) has no out size
    if not _is_sequence(module, out, rank) and (row.in_size is not None or _channel_first(module, out, rank)):
        out_size = _size(out)
    return replace(row, out_channels=out_c, out_size=out_size, out_tokens=_out_tokens(module, row, out, rank,
                                                                                       out_size))


def _out_tokens(module: nn.Module, row: Layer, out: torch.Tensor | None, rank: int,
                out_size: Size | None) -> int | None:
    """The output's sequence length where it is not the input's (``Layer.out_tokens``): a pooling of tokens into one
    vector (AttentionPooling: 77 -> 1, a (B, C) output), a map read into patch tokens; None otherwise."""
    if out is None or out_size is not None or out.dim() < 2:
        return None
    written = 1 if out.dim() == 2 else int(out.shape[1]) if _is_sequence(module, out, rank) else None
    return written if written is not None and written != (row.tokens or 1) else None
