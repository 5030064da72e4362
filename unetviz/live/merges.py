"""Merges as they happen: channel concatenations and additions of two maps, with where each operand came from.

``torch.cat`` / ``torch.concat`` / ``torch.concatenate`` along dim 1 of maps of the sample's rank are the
channel concats (a timestep's sin/cos or SDXL's added embeds are other dims or ranks); ``torch.add``, ``+``
and ``+=`` of two maps of one shape are the additions. Every one is recorded: which merges read a skip is
decided after the pass (``observe/skips.py``), when the whole data flow is known. Intercepted by the
torch-function mode rather than by patching ``torch.cat``, so ``from torch import cat`` aliases count too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.records import Size
from .flow import Flow, spatial

CAT_FUNCS = {torch.cat, torch.concat, torch.concatenate}
ADD_FUNCS = {torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__, torch.Tensor.__radd__,
             torch.Tensor.__iadd__}


@dataclass
class Piece:
    """One operand of a merge as it was at the merge."""

    key: int
    """Its identity (``id``), the key of every ``Flow`` record."""
    source: str
    """Its producer (``Flow.source``)."""
    channels: int
    size: Size
    kept: bool
    """A module that had already finished took it as an input or handed it on (or, for a crop, its base): the
    mark of a feature kept for later, which pairs the skips of a merge at the bottom of the U (no resolution
    below it)."""


@dataclass
class MergeEvent:
    """A concat or an addition as it happened."""

    kind: str
    """``concat`` or ``add``."""
    operands: list[Piece]
    channels: int
    size: Size
    at: int
    """``len(layers)`` when it ran."""
    time: int
    """The creation clock when it ran: operands were made before, the result at or after."""
    result: int
    """Identity key of the result tensor."""
    inside: str
    """The innermost module running it (``""``: the model's own forward)."""
    consumer: str | None = None
    next_module: str | None = None
    """The next module entered after it: the consumer if no module receives the result."""
    skips: list[int] = field(default_factory=list)
    """Positions of the operands that are skips (filled by ``observe/skips.py``)."""


def merge_kind(func: Any) -> str | None:
    if func in CAT_FUNCS:
        return "concat"
    return "add" if func in ADD_FUNCS else None


def operands(kind: str, args: Any, kwargs: Any) -> tuple[list[torch.Tensor], int]:
    """The operand tensors and the dim (1 for an addition, whose operands are whole maps)."""
    if kind == "concat":
        seq = args[0] if args else kwargs.get("tensors", ())
        dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
        return [t for t in seq if isinstance(t, torch.Tensor)], int(dim)
    pair = [*args[:2], kwargs.get("other")] if len(args) < 2 else list(args[:2])
    return [t for t in pair if isinstance(t, torch.Tensor)], 1


def before(flow: Flow, kind: str, args: Any, kwargs: Any) -> None:
    """Operands made outside the mode's view (a module input) still need their records."""
    for t in operands(kind, args, kwargs)[0]:
        if id(t) not in flow.keep and not isinstance(t, nn.Parameter):
            flow.new(t)


def record(flow: Flow, finished: set[str], kind: str, args: Any, kwargs: Any, result: Any, at: int,
           inside: str) -> MergeEvent | None:
    """The merge event of a channel concat or an addition of two same-shape maps; None for any other call."""
    ops, dim = operands(kind, args, kwargs)
    if not ops or not isinstance(result, torch.Tensor) or result.dim() != flow.rank or dim % flow.rank != 1:
        return None
    if kind == "add" and (len(ops) != 2 or ops[0].shape != ops[1].shape
                          or any(isinstance(t, nn.Parameter) or id(t) not in flow.keep or id(t) in flow.channel_last
                                 for t in ops)):
        return None  # a bias, a broadcast embedding, a scalar, a residual on Swin's tokens: no merge of two maps

    def kept(t: torch.Tensor) -> bool:
        return any(m in finished for m in flow.fed.get(id(t), ()))

    pieces = []
    for t in ops:
        base = t._base
        was_kept = kept(t) or (base is not None and kept(base))  # a crop (Ronneberger): its base was kept
        pieces.append(Piece(id(t), flow.source(t), int(t.shape[1]), spatial(t), was_kept))
    return MergeEvent(kind, pieces, int(result.shape[1]), spatial(result), at, flow.counter, id(result), inside)
