"""One hooked forward pass on the meta device: the raw events an observed trace is made from.

``capture(model, args, kwargs)`` runs the model once and returns a ``Capture``: the layers (every module that
owns parameters directly, in forward-entry order, and the attention matmuls), every merge (channel concat or
addition of two maps) with where each operand came from, one event per call of every module that holds
parameters (units are chosen from them afterwards, by data flow), the tensors' records (``flow.py``), the
output and any failure.

How it sees things (torchinfo style: everything is removed again in ``finally``):

* forward pre-hooks and forward hooks on every module (``with_kwargs=True``, so tensors passed by keyword count
  as inputs) keep a module stack, fill the layer rows and tell ``Flow`` who returned and who took each tensor;
* a ``TorchFunctionMode`` sees every torch call: each new tensor is recorded (``Flow.new``, ``Flow.derive``),
  merges are recorded (``merges.py``) and the attention matmuls counted (``attention_rows.py``).

A module that runs more than once gets one layer row per call (each call is a step of the forward pass);
calls after the first say ``call N`` in ``note``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from ..core.records import Layer
from . import merges
from .attention_rows import AttentionRows, is_attention
from .flow import Flow, tensors_in
from .layer_rows import CHANNEL_LAST, finish_layer, layer_row

__all__ = ["Capture", "ModuleEvent", "ObserverError", "capture", "tensors_in"]


@dataclass
class ModuleEvent:
    """One call of a module that holds parameters (its own or its children's)."""

    path: str
    type: str
    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None
    first: int
    """Index of the first layer row made during the call."""
    last: int
    """One past the last."""
    params: int
    enter: int = 0
    """The creation clock at entry: tensors made during the call are newer, up to ``leave``."""
    leave: int = 0
    out_sizes: tuple[tuple[int, ...], ...] = ()
    """Spatial sizes of every map it returned (a list-returning encoder returns several)."""


UnitEvent = ModuleEvent  # a unit is a module event chosen as one (``observe/units.py``)


@dataclass
class Capture:
    """Everything one hooked forward pass saw."""

    flow: Flow
    layers: list[Layer] = field(default_factory=list)
    merges: list[merges.MergeEvent] = field(default_factory=list)
    modules: list[ModuleEvent] = field(default_factory=list)
    output: Any = None
    error_at: str | None = None
    error: str | None = None


class ObserverError(Exception):
    """A bug in unetviz's own bookkeeping during capture: never reported as the model failing."""


def _ours(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:
        raise ObserverError(f"unetviz's observer failed in {getattr(fn, '__name__', fn)}: {e!r}") from e


class _Recorder(TorchFunctionMode):
    """Records new tensors, merges and attention matmuls (see the module docstring)."""

    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        st = self.state
        kind = merges.merge_kind(func)
        if kind is not None:
            _ours(merges.before, st.flow, kind, args, kwargs)
        if is_attention(func, args):
            counter = FlopCounterMode(display=False)
            with counter:  # torch's own count of this product, whatever its shapes
                result = func(*args, **kwargs)
            _ours(st.attention, func, args, result, counter.get_total_flops() // 2)
        else:
            result = func(*args, **kwargs)  # the model's own op: its exceptions are the model's failures
        if kind is not None:
            _ours(st.merge, kind, args, kwargs, result)
        _ours(st.tag, func, args, kwargs, result)
        return result


class _State:
    """The bookkeeping shared by the hooks and the torch-function mode."""

    def __init__(self, model: nn.Module, rank: int, batch: int) -> None:
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.holds = {id(m) for m in model.modules() if any(True for _ in m.parameters())}
        self.flow = Flow(rank)
        self.cap = Capture(self.flow)
        self.attn = AttentionRows(batch)
        self.batch = batch
        self.stack: list[str] = []
        self.entries = 0
        self.entry: list[tuple[int, int]] = []  # per open module: (entry number, op clock at entry)
        self.finished: set[str] = set()
        self.calls: dict[str, int] = {}
        self.open_layers: dict[int, list[int]] = {}  # module id -> layer row indices awaiting output
        self.open_events: dict[int, list[ModuleEvent]] = {}
        self.pending: list[merges.MergeEvent] = []

    # ---- the torch-function mode ---------------------------------------------------------------
    def tag(self, func: Any, args: Any, kwargs: Any, result: Any) -> None:
        flow = self.flow
        flow.ops += 1
        if isinstance(result, torch.Tensor):  # the common case, kept cheap: this runs for every op
            if id(result) not in flow.keep:
                flow.new(result)
                flow.derive(result, args, kwargs, getattr(func, "__name__", ""))
            else:
                flow.changed(result)
        elif isinstance(result, (tuple, list)):
            for t in tensors_in(result):
                if id(t) not in flow.keep:
                    flow.new(t)

    def merge(self, kind: str, args: Any, kwargs: Any, result: Any) -> None:
        ev = merges.record(self.flow, self.finished, kind, args, kwargs, result, len(self.cap.layers),
                           self.stack[-1] if self.stack else "")
        if ev is not None:
            self.cap.merges.append(ev)
            self.pending.append(ev)

    def attention(self, func: Any, args: Any, result: Any, macs: int) -> None:
        self.attn.row(self.cap.layers, self.stack[-1] if self.stack else "", func, args, result, macs)
        self.flow.layer_count = len(self.cap.layers)

    # ---- hooks -------------------------------------------------------------------------------
    def pre(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        flow, path = self.flow, self.paths.get(id(module), type(module).__name__)
        inputs = [*tensors_in(args), *tensors_in(kwargs)]
        tokens = isinstance(module, CHANNEL_LAST)
        for t in inputs:
            if id(t) not in flow.keep:
                flow.new(t)
            flow.fed.setdefault(id(t), []).append(path)
            if tokens and t.dim() == flow.rank:
                flow.channel_last.add(id(t))
        if self.pending:
            self._consume(path, {id(t) for t in inputs})
        self.stack.append(path)
        self.entries += 1
        self.entry.append((self.entries, flow.ops))
        first_in = inputs[0] if inputs else None
        if id(module) in self.holds:
            ev = ModuleEvent(path, type(module).__name__, None if first_in is None else tuple(first_in.shape), None,
                             len(self.cap.layers), len(self.cap.layers), sum(p.numel() for p in module.parameters()),
                             enter=flow.counter)
            self.open_events.setdefault(id(module), []).append(ev)
            self.cap.modules.append(ev)
        if module._parameters and any(p is not None for p in module._parameters.values()):
            n = self.calls[path] = self.calls.get(path, 0) + 1
            row = layer_row(module, path, first_in, n, rank=flow.rank, batch=self.batch)
            self.open_layers.setdefault(id(module), []).append(len(self.cap.layers))
            self.cap.layers.append(row)
            flow.layer_count = len(self.cap.layers)

    def _consume(self, path: str, ids: set[int]) -> None:
        for ev in self.pending:
            if ev.next_module is None:
                ev.next_module = path
            if ev.result in ids:
                ev.consumer = path
        self.pending = [ev for ev in self.pending if ev.consumer is None]

    def post(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        flow, path = self.flow, self.paths.get(id(module), type(module).__name__)
        outs = list(tensors_in(output))
        entry, since = self.entry.pop() if self.entry else (0, 0)
        tokens = isinstance(module, CHANNEL_LAST)
        for t in outs:
            if id(t) not in flow.keep:
                flow.new(t)
            flow.returned(t, path, entry, since)
            if tokens and t.dim() == flow.rank:  # a Linear's output is tokens too (a 1-D model's attention)
                flow.channel_last.add(id(t))
        if self.stack:
            self.stack.pop()
        self.finished.add(path)
        flow.last_exited = path
        out = outs[0] if outs else None
        rows = self.open_layers.get(id(module))
        if rows:
            i = rows.pop()
            self.cap.layers[i] = finish_layer(module, self.cap.layers[i], out, rank=flow.rank)
        events = self.open_events.get(id(module))
        if events:
            ev = events.pop()
            ev.out_shape = None if out is None else tuple(out.shape)
            ev.last, ev.leave = len(self.cap.layers), flow.counter
            ev.out_sizes = tuple(tuple(int(d) for d in t.shape[2:]) for t in outs if t.dim() == flow.rank)


def capture(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], rank: int | None = None) -> Capture:
    """Run ``model(*args, **kwargs)`` once with hooks; never raises for a failing forward.

    ``rank``: dimensions of the maps the model's blocks pass, whose dim-1 concats are channel concats
    (default: the first argument's; a video model passes 4: its blocks fold the frames into the batch)."""
    first = next(tensors_in(args), None)
    if rank is None:
        rank = first.dim() if first is not None and first.dim() >= 3 else 4
    st = _State(model, rank, int(first.shape[0]) if first is not None and first.dim() > 0 else 1)
    for t in [*tensors_in(args), *tensors_in(kwargs)]:
        st.flow.new(t, source="input")
    handles = []
    try:
        def pre(module: nn.Module, a: Any, kw: Any) -> None:
            _ours(st.pre, module, a, kw)

        def post(module: nn.Module, a: Any, kw: Any, output: Any) -> None:
            _ours(st.post, module, a, kw, output)

        for m in model.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        with torch.no_grad(), _Recorder(st):
            st.cap.output = model(*args, **kwargs)
    except ObserverError:
        raise
    except Exception as e:  # the model's own failure is a result, not a crash of unetviz
        _failed(st, e)
    finally:
        for h in handles:
            h.remove()
    for ev in st.cap.merges:
        if ev.consumer is None:
            ev.consumer = ev.next_module
    return st.cap


def _failed(st: _State, e: Exception) -> None:
    last = st.cap.layers[-1].path if st.cap.layers else None
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    st.cap.error_at = st.stack[-1] if st.stack else None
    where = ("before the first layer" if last is None else f"in layer {last}" if st.stack and st.stack[-1] == last
             else f"after layer {last}")
    st.cap.error = f"failed {where}: {type(e).__name__}: {msg}"
    for events in st.open_events.values():  # the calls the failure cut short hold every layer they ran
        for ev in events:
            ev.last, ev.leave = len(st.cap.layers), st.flow.counter
