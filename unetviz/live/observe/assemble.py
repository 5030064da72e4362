"""The hooked run and the observed ``Trace`` made from it: layers, units, concats, skips, manifest, MACs.

``observe`` runs one forward pass of a meta-device model with hooks (``capture.py``) and assembles
what it saw into a ``Trace(source="observed")``, pure data like a symbolic trace.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ...core.quantities import layer_macs
from ...core.records import Failure, Size, Trace
from ..capture import Capture, capture, tensors_in
from .skips import mark_skips, pair_skips
from .unit_records import channel_last_units, make_unit, wrapped_type
from .units import data_units, unit_of, unit_paths


def build_trace(model: nn.Module, cap: Capture, blocks: list[str], *, family: str, in_channels: int,
                in_size: Size, size_source: str, frames_axis: int | None = None,
                static: list[str] | None = None) -> Trace:
    """Turn a capture into a ``Trace(source="observed")``: units chosen by data flow, skips paired, manifest
    filled in. ``frames_axis``: see ``observe``; ``static``: the unit paths of the module tree (``unit_paths``)."""
    mark_skips(cap)
    events, blocks = data_units(model, cap, static if static is not None else list(unit_paths(model)[0]), blocks)
    unit_list = list(dict.fromkeys(u.path for u in events))
    layers = tuple(replace(x, unit=unit_of(x.path, unit_list)) for x in cap.layers)

    def unit_at(ran: int, source: str) -> str:
        """The unit a tensor comes from: its producer's, or (a parameter-free producer, e.g. a swish) the
        unit of the last layer run before it was made."""
        inside = unit_of(source, unit_list)
        return inside if inside in unit_list or ran == 0 else layers[min(ran, len(layers)) - 1].unit

    concats, adds, skips, lifo = pair_skips(cap, unit_at)
    rank = len(in_size) if frames_axis is None else 2  # a video model's blocks pass (B*F, C, H, W)
    last = channel_last_units(cap, events)
    units = tuple(make_unit(u, layers, blocks, rank, wrapped_type(model, u.path), u.path in last) for u in events)
    out = next(tensors_in(cap.output), None) if cap.error is None else None
    out_c, out_size = sample_shape(out, frames_axis)
    state = model.state_dict(keep_vars=True)
    manifest = tuple((k, tuple(int(d) for d in v.shape)) for k, v in state.items())
    error = None if cap.error is None else Failure(at=cap.error_at, message=cap.error)
    return Trace(family=family, model=type(model).__name__, preset=None, in_channels=in_channels, in_size=in_size,
                 out_channels=out_c, out_size=out_size,
                 layers=layers, concats=concats, skips=skips, units=units, manifest=manifest, error=error,
                 size_source=size_source, blocks=tuple((b, type(model.get_submodule(b)).__name__) for b in blocks),
                 source="observed", buffers=frozenset(k for k, _ in model.named_buffers(remove_duplicate=False)),
                 aliases=_aliases(state), adds=adds, lifo=lifo,
                 macs=sum(layer_macs(x) for x in layers), space="observed")  # a family's caller declares its own


def _aliases(state: dict[str, Any]) -> dict[str, str]:
    """Keys of a tensor listed before under another key (a module registered under two paths) -> that key."""
    first: dict[int, str] = {}
    out: dict[str, str] = {}
    for key, tensor in state.items():
        owner = first.setdefault(id(tensor), key)
        if owner != key:
            out[key] = owner
    return out


def sample_shape(t: torch.Tensor | None, frames_axis: int | None = None) -> tuple[int | None, Size | None]:
    """(channels, size) of the model's sample or output: ``shape[1]`` and ``shape[2:]``; for a video tensor
    with frames on ``frames_axis`` (1 or 2 of a 5-d tensor), the other of axes 1 and 2 and (F, H, W)."""
    if t is None or t.dim() < 2:
        return None, None
    shape = tuple(int(d) for d in t.shape)
    if frames_axis in (1, 2) and len(shape) == 5:
        return shape[3 - frames_axis], (shape[frames_axis], *shape[3:])
    return shape[1], shape[2:]


def observe(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, family: str = "torch",
            size_source: str = "input", frames_axis: int | None = None) -> Trace:
    """Capture one forward pass of a meta-device model and build its observed trace.

    ``frames_axis``: a video model's sample and output carry frames on this axis ((B, C, F, H, W): 2,
    UNet3DConditionModel; (B, F, C, H, W): 1, SVD) and its blocks fold them into the batch. The trace's
    channels are then the other of axes 1 and 2 and its sizes FxHxW; units and concats are read per frame
    ((B*F, C, H, W): HxW) (an adapter's ``OBSERVE``). In any model but a 1-D one a 3-d tensor is a token
    sequence (B, N, C): C channels, N tokens (``layer_rows``)."""
    units, blocks = unit_paths(model)
    video = frames_axis is not None
    cap = capture(model, args, kwargs, rank=4 if video else None)
    first = next(iter([*tensors_in(args), *tensors_in(kwargs)]), None)
    in_c, size = sample_shape(first, frames_axis)
    return build_trace(model, cap, blocks, family=family, in_channels=in_c or 0, in_size=size or (),
                       size_source=size_source, frames_axis=frames_axis, static=list(units))
