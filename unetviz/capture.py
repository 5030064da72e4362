"""One hooked forward pass on the meta device: the raw events an observed trace is made from.

``capture(model, args, kwargs)`` runs the model once and returns a ``Capture``: the layers (every
module that owns parameters directly, in forward-entry order), the channel concatenations with
where each operand came from, the units (block-level modules), the output and any failure.

How it sees things (torchinfo style: everything is removed again in ``finally``):

* forward pre-hooks and forward hooks on every module (``with_kwargs=True``, so tensors passed
  by keyword count as inputs) keep a module stack and fill the layer rows;
* a ``TorchFunctionMode`` sees every torch call: it tags each new tensor with a creation number
  and the module that most recently finished (the ``from`` of a tensor no module returned, like
  ``attn(x) + x`` computed in a parent's forward), and it intercepts ``torch.cat`` /
  ``torch.concat`` / ``torch.concatenate`` along dim 1 of 4-d tensors (skip concats; a timestep's
  sin/cos or SDXL's added embeds are other dims or ranks and are ignored). A mode, rather than
  patching ``torch.cat`` on the module, also catches ``from torch import cat`` aliases.

A module that runs more than once gets one layer row per call (each call is a step of the
forward pass); calls after the first say ``call N`` in ``note``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .records import Layer, Size

CAT_FUNCS = {torch.cat, torch.concat, torch.concatenate}
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
CHANNEL_LAST = (nn.Linear, nn.LayerNorm, nn.Embedding)


def tensors_in(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor inside an output or argument structure (tuples, lists, dicts, diffusers' outputs)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 4 and isinstance(obj, (list, tuple)):
        for item in obj:
            yield from tensors_in(item, depth + 1)
    elif depth < 4 and isinstance(obj, Mapping):
        for item in obj.values():
            yield from tensors_in(item, depth + 1)


@dataclass
class CatEvent:
    """A channel concatenation as it happened."""

    operands: list[tuple[str, int, Size, int, bool]]
    """Per operand: (from, channels, size, identity key, was it fed to an already finished module)."""
    channels: int
    size: Size
    at: int
    """``len(layers)`` when the concat ran."""
    result: int
    """Identity key of the result tensor."""
    consumer: str | None = None
    next_module: str | None = None
    """The next module entered after the concat: the consumer if no module receives the result."""


@dataclass
class UnitEvent:
    path: str
    type: str
    in_shape: tuple[int, ...] | None
    out_shape: tuple[int, ...] | None
    first: int
    last: int
    params: int


@dataclass
class Capture:
    """Everything one hooked forward pass saw."""

    layers: list[Layer] = field(default_factory=list)
    cats: list[CatEvent] = field(default_factory=list)
    units: list[UnitEvent] = field(default_factory=list)
    creation: dict[int, int] = field(default_factory=dict)
    """Identity key of a tensor -> its creation number (model inputs are 0)."""
    output: Any = None
    error_at: str | None = None
    error: str | None = None


class _Recorder(TorchFunctionMode):
    """Tags new tensors and records channel concats (see the module docstring)."""

    def __init__(self, state: _State) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in CAT_FUNCS:
            self.state.before_cat(args, kwargs)
        result = func(*args, **kwargs)
        st = self.state
        for t in tensors_in(result):
            if id(t) not in st.keep:
                st.new_tensor(t)
        if func in CAT_FUNCS:
            st.after_cat(args, kwargs, result)
        return result


class _State:
    """The bookkeeping shared by the hooks and the torch-function mode."""

    def __init__(self, model: nn.Module, units: set[str]) -> None:
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.units = units
        self.cap = Capture()
        self.keep: dict[int, torch.Tensor] = {}  # strong refs: ids never get reused (meta tensors are free)
        self.claim: dict[int, str] = {}  # tensor -> innermost module that returned it
        self.tag: dict[int, str] = {}  # tensor -> module that most recently finished before it was made
        self.fed: dict[int, list[str]] = {}  # tensor -> modules it was an input of
        self.stack: list[str] = []
        self.finished: set[str] = set()
        self.last_exited = "input"
        self.counter = 0
        self.calls: dict[str, int] = {}
        self.open_layers: dict[int, list[int]] = {}  # module id -> layer row indices awaiting output
        self.open_units: dict[int, list[UnitEvent]] = {}
        self.pending: list[CatEvent] = []
        self.pending_cat: list[torch.Tensor] = []

    # ---- tensors ---------------------------------------------------------------------------
    def new_tensor(self, t: torch.Tensor, source: str | None = None) -> None:
        self.counter += 1
        self.keep[id(t)] = t
        self.cap.creation[id(t)] = self.counter if source is None else 0
        self.tag[id(t)] = self.last_exited if source is None else source

    def source(self, t: torch.Tensor) -> str:
        """The ``from`` rule: the innermost module that returned ``t``, else its creation tag."""
        return self.claim.get(id(t)) or self.tag.get(id(t), "input")

    # ---- concats -----------------------------------------------------------------------------
    @staticmethod
    def _cat_args(args: Any, kwargs: Any) -> tuple[list[torch.Tensor], int]:
        seq = args[0] if args else kwargs.get("tensors", ())
        dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
        return [t for t in seq if isinstance(t, torch.Tensor)], int(dim)

    def before_cat(self, args: Any, kwargs: Any) -> None:
        # operands made outside the mode's view (a module input) still need a tag
        for t in self._cat_args(args, kwargs)[0]:
            if id(t) not in self.keep:
                self.new_tensor(t)

    def after_cat(self, args: Any, kwargs: Any, result: Any) -> None:
        ops, dim = self._cat_args(args, kwargs)
        if not ops or not isinstance(result, torch.Tensor) or result.dim() != 4 or dim % 4 != 1:
            return
        operands = [(self.source(t), int(t.shape[1]), tuple(int(d) for d in t.shape[2:]), id(t),
                     any(m in self.finished for m in self.fed.get(id(t), ()))) for t in ops]
        ev = CatEvent(operands, int(result.shape[1]), tuple(int(d) for d in result.shape[2:]),
                      len(self.cap.layers), id(result))
        self.cap.cats.append(ev)
        self.pending.append(ev)

    # ---- hooks -------------------------------------------------------------------------------
    def pre(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        path = self.paths.get(id(module), type(module).__name__)
        inputs = [*tensors_in(args), *tensors_in(kwargs)]
        for t in inputs:
            if id(t) not in self.keep:
                self.new_tensor(t)
            self.fed.setdefault(id(t), []).append(path)
        if self.pending:
            ids = {id(t) for t in inputs}
            for ev in self.pending:
                if ev.next_module is None:
                    ev.next_module = path
                if ev.result in ids:
                    ev.consumer = path
            self.pending = [ev for ev in self.pending if ev.consumer is None]
        self.stack.append(path)
        first_in = inputs[0] if inputs else None
        if path in self.units:
            u = UnitEvent(path, type(module).__name__, None if first_in is None else tuple(first_in.shape), None,
                          len(self.cap.layers), len(self.cap.layers), sum(p.numel() for p in module.parameters()))
            self.open_units.setdefault(id(module), []).append(u)
            self.cap.units.append(u)
        if module._parameters and any(p is not None for p in module._parameters.values()):
            n = self.calls[path] = self.calls.get(path, 0) + 1
            row = _layer(module, path, first_in, n)
            self.open_layers.setdefault(id(module), []).append(len(self.cap.layers))
            self.cap.layers.append(row)

    def post(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        path = self.paths.get(id(module), type(module).__name__)
        outs = list(tensors_in(output))
        for t in outs:
            if id(t) not in self.keep:
                self.new_tensor(t)
            self.claim.setdefault(id(t), path)  # hooks fire innermost first: the first claim wins
        if self.stack:
            self.stack.pop()
        self.finished.add(path)
        self.last_exited = path
        out = outs[0] if outs else None
        rows = self.open_layers.get(id(module))
        if rows:
            i = rows.pop()
            self.cap.layers[i] = _finish_layer(module, self.cap.layers[i], out)
        units = self.open_units.get(id(module))
        if units:
            u = units.pop()
            u.out_shape = None if out is None else tuple(out.shape)
            u.last = len(self.cap.layers)


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


def _layer(module: nn.Module, path: str, x: torch.Tensor | None, call: int) -> Layer:
    """The row as known at entry; ``_finish_layer`` adds what the output tells."""
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
    channel_last = isinstance(module, CHANNEL_LAST)
    spatial = isinstance(module, (*CONV_TYPES, nn.GroupNorm)) or (x is not None and x.dim() == 4)
    in_size = _size(x) if spatial and not channel_last else None
    tokens = _tokens(x) if channel_last else None
    params = sum(p.numel() for p in module._parameters.values() if p is not None)
    return Layer(path, type(module).__name__, in_c, out_c, in_size, None, kernel, stride, padding, params,
                 _own_tensors(module, path), "", f"call {call}" if call > 1 else "", tokens)


def _finish_layer(module: nn.Module, row: Layer, out: torch.Tensor | None) -> Layer:
    from dataclasses import replace

    out_c = row.out_channels
    if not out_c and out is not None and out.dim() > 1:
        out_c = int(out.shape[1])
    out_size = None
    if row.in_size is not None or (out is not None and out.dim() == 4 and not isinstance(module, CHANNEL_LAST)):
        out_size = _size(out)
    return replace(row, out_channels=out_c, out_size=out_size)


def capture(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], units: set[str]) -> Capture:
    """Run ``model(*args, **kwargs)`` once with hooks; never raises for a failing forward."""
    st = _State(model, units)
    for t in [*tensors_in(args), *tensors_in(kwargs)]:
        st.new_tensor(t, source="input")
    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(st.pre, with_kwargs=True))
            handles.append(m.register_forward_hook(st.post, with_kwargs=True))
        with torch.no_grad(), _Recorder(st):
            st.cap.output = model(*args, **kwargs)
    except Exception as e:  # the model's own failure is a result, not a crash of unetviz
        last = st.cap.layers[-1].path if st.cap.layers else "the first layer"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        st.cap.error_at = st.stack[-1] if st.stack else None
        st.cap.error = f"failed after layer {last}: {type(e).__name__}: {msg}"
    finally:
        for h in handles:
            h.remove()
    for ev in st.cap.cats:
        if ev.consumer is None:
            ev.consumer = ev.next_module
    return st.cap
