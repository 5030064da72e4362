"""A unit's record from what the hooked pass saw: its kind (through a module that only wraps a step), its channels
and sizes (channel-first maps, token sequences, and the channel-last maps Swin passes).

Which modules are units and headings is ``units.py``; this reads each one chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ...core.kinds import kind_of
from ...core.records import Layer, Size, Unit, enclosing
from ..capture import Capture, UnitEvent

CONTAINERS = (nn.ModuleList, nn.ModuleDict)


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def wrapped_type(model: nn.Module, path: str) -> str:
    """The class a unit's kind is read from: its own, or, for a module that only wraps one step (no parameter of
    its own, its parameters all in one child that is a step of its own modules, not a list or a Sequential), the
    step it wraps: MONAI's UnetrBasicBlock is its ``layer``, a UnetResBlock (a resnet) or a UnetBasicBlock."""
    m = model.get_submodule(path)
    while not any(True for _ in m.parameters(recurse=False)):
        kids = [c for c in m.children() if _has_params(c)]
        if len(kids) != 1 or isinstance(kids[0], (nn.Sequential, *CONTAINERS)) or not any(kids[0].children()):
            break
        m = kids[0]
    return type(m).__name__


def channel_last_units(cap: Capture, events: list[UnitEvent]) -> set[str]:
    """The units fed channel-last maps (Swin's ``(B, D, H, W, C)``): every layer of theirs is channel-last, and
    their input is a tensor a LayerNorm or Linear took or made, or one such a unit returned (a Swin stage's last
    block hands its map to the PatchMerging). Tensors by identity (``live/flow.py``), never by their sizes."""
    fed: dict[str, set[int]] = {}
    for key, paths in cap.flow.fed.items():
        for path in paths:
            fed.setdefault(path, set()).add(key)
    made: dict[str, set[int]] = {}
    for key, (path, _) in cap.flow.claim.items():
        made.setdefault(path, set()).add(key)
    known, out = set(cap.flow.channel_last), set()
    for ev in events:
        if tokens_only(cap.layers[ev.first:ev.last]) and fed.get(ev.path, set()) & known:
            out.add(ev.path)
            known |= made.get(ev.path, set())
    return out


def make_unit(u: UnitEvent, layers: tuple[Layer, ...], blocks: list[str], rank: int = 2,
              kind_type: str | None = None, channel_last: bool = False) -> Unit:
    """The record of a unit; ``rank``: the spatial dims of the tensors its sizes are read from (the sample's,
    or 2 for a video model, whose blocks fold the frames into the batch); ``kind_type``: the class its kind is
    read from (``wrapped_type``), its own by default; ``channel_last``: it is fed channel-last maps."""
    in_size, out_size = _sz(u.in_shape, rank), _sz(u.out_shape, rank)
    in_c, out_c = _ch(u.in_shape, rank), _ch(u.out_shape, rank)
    grids = in_size, out_size
    if channel_last:
        # Swin's (B, D, H, W, C): C channels, the positions as tokens, no size, as the symbolic trace reads them;
        # the grid of positions still tells a sampler (PatchMerging halves it)
        grids = _grid(u.in_shape, rank), _grid(u.out_shape, rank)
        in_c, out_c = _ch(u.in_shape, rank, last=True), _ch(u.out_shape, rank, last=True)
        in_size, out_size = (None if g is not None else s for g, s in zip(grids, (in_size, out_size), strict=True))
    if u.last - u.first == 1 and layers[u.first].path == u.path:
        # a bare layer: its own row tells, as the symbolic trace makes it (a video model's GroupNorm on
        # (B, C, F, H, W), transformer_in.norm, is FxHxW)
        row = layers[u.first]
        in_c, out_c, in_size, out_size = row.in_channels, row.out_channels, row.in_size, row.out_size
        grids = in_size, out_size
    kind = kind_of(u.path, kind_type or u.type, *grids)
    # a unit under no heading is a block of its own (as in the tracer)
    return Unit(path=u.path, kind=kind, type=u.type, in_channels=in_c, out_channels=out_c, in_size=in_size,
                out_size=out_size, params=u.params, first=u.first, last=u.last,
                block=enclosing(u.path, blocks) or u.path)


def tokens_only(rows: Sequence[Layer]) -> bool:
    """Layers that are all channel-last (LayerNorm, Linear, the attention matmuls between them: no size)."""
    return bool(rows) and all(r.in_size is None and r.out_size is None for r in rows)


def _grid(shape: tuple[int, ...] | None, rank: int) -> Size | None:
    """The positions of a channel-last map of the sample's rank, (B, *positions, C)."""
    return shape[1:-1] if shape is not None and len(shape) == 2 + rank else None


def _ch(shape: tuple[int, ...] | None, rank: int = 2, last: bool = False) -> int:
    """Channels: dim 1, but the last dim of a token sequence (B, N, C), which a 3-d tensor is in any model
    but a 1-D one (``layer_rows``): position_net's boxes are 4 wide, not 30; ``last``: a channel-last map's."""
    if shape is not None and ((rank != 1 and len(shape) == 3) or (last and len(shape) == 2 + rank)):
        return shape[-1]
    return shape[1] if shape is not None and len(shape) > 1 else 0


def _sz(shape: tuple[int, ...] | None, rank: int = 2) -> Size | None:
    """The spatial size of a channel-first tensor of the sample's rank (length, HxW, DxHxW, FxHxW)."""
    return shape[2:] if shape is not None and len(shape) == 2 + rank else None
