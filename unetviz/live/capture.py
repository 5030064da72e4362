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
  ``torch.concat`` / ``torch.concatenate`` along dim 1 of tensors of the sample's rank (skip concats;
  a timestep's sin/cos or SDXL's added embeds are other dims or ranks and are ignored). A mode, rather than
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

from ..core.records import Layer, Size
from .layer_rows import finish_layer, layer_row

CAT_FUNCS = {torch.cat, torch.concat, torch.concatenate}


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
    """Per operand: (from, channels, size, identity key, did an already finished module take it as an input
    or hand it on as an output it did not make: the marks of an encoder feature kept for later)."""
    channels: int
    size: Size
    at: int
    """``len(layers)`` when the concat ran."""
    result: int
    """Identity key of the result tensor."""
    kept: dict[int, tuple[str, int, Size]] = field(default_factory=dict)
    """For an operand that is a view (a crop) of a kept feature: identity key -> that feature's
    (from, channels, size), which is what was pushed."""
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
            _ours(self.state.before_cat, args, kwargs)
        result = func(*args, **kwargs)  # the model's own op: its exceptions are the model's failures
        _ours(self._tag, func, args, kwargs, result)
        return result

    def _tag(self, func: Any, args: Any, kwargs: Any, result: Any) -> None:
        st = self.state
        if isinstance(result, torch.Tensor):  # the common case, kept cheap: this runs for every op
            if id(result) not in st.keep:
                st.new_tensor(result)
        elif isinstance(result, (tuple, list)):
            for t in tensors_in(result):
                if id(t) not in st.keep:
                    st.new_tensor(t)
        if func in CAT_FUNCS:
            st.after_cat(args, kwargs, result)


class ObserverError(Exception):
    """A bug in unetviz's own bookkeeping during capture: never reported as the model failing."""


def _ours(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:
        raise ObserverError(f"unetviz's observer failed in {getattr(fn, '__name__', fn)}: {e!r}") from e


class _State:
    """The bookkeeping shared by the hooks and the torch-function mode."""

    def __init__(self, model: nn.Module, units: set[str]) -> None:
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.units = units
        self.cap = Capture()
        self.keep: dict[int, torch.Tensor] = {}  # strong refs: ids never get reused (meta tensors are free)
        self.claim: dict[int, str] = {}  # tensor -> innermost module that returned it
        self.tag: dict[int, str] = {}  # tensor -> module that most recently finished before it was made
        self.fed: dict[int, list[str]] = {}  # tensor -> modules it was an input of, or passed on
        self.stack: list[str] = []
        self.finished: set[str] = set()
        self.last_exited = "input"
        self.counter = 0
        self.calls: dict[str, int] = {}
        self.open_layers: dict[int, list[int]] = {}  # module id -> layer row indices awaiting output
        self.open_units: dict[int, list[UnitEvent]] = {}
        self.pending: list[CatEvent] = []
        self.pending_cat: list[torch.Tensor] = []
        self.rank = 4
        """Dimensions of the tensors the model's blocks pass: channel concats are those of tensors of this rank,
        and a 3-d tensor is a token sequence (B, N, C) unless it is 3 (``layer_rows``)."""

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
        if not ops or not isinstance(result, torch.Tensor) or result.dim() != self.rank or dim % self.rank != 1:
            return
        operands = []
        kept: dict[int, tuple[str, int, Size]] = {}
        for t in ops:
            key, fed = id(t), self._was_kept(t)
            base = t._base
            if not fed and base is not None and self._was_kept(base):
                # a crop (Ronneberger) is a view made just before the concat: its base was pushed
                key, fed = id(base), True
                kept[key] = (self.source(base), int(base.shape[1]), tuple(int(d) for d in base.shape[2:]))
            operands.append((self.source(t), int(t.shape[1]), tuple(int(d) for d in t.shape[2:]), key, fed))
        ev = CatEvent(operands, int(result.shape[1]), tuple(int(d) for d in result.shape[2:]),
                      len(self.cap.layers), id(result), kept)
        self.cap.cats.append(ev)
        self.pending.append(ev)

    def _was_kept(self, t: torch.Tensor) -> bool:
        return any(m in self.finished for m in self.fed.get(id(t), ()))

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
            row = layer_row(module, path, first_in, n, rank=self.rank)
            self.open_layers.setdefault(id(module), []).append(len(self.cap.layers))
            self.cap.layers.append(row)

    def post(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        path = self.paths.get(id(module), type(module).__name__)
        outs = list(tensors_in(output))
        for t in outs:
            if id(t) not in self.keep:
                self.new_tensor(t)
            if self.claim.setdefault(id(t), path) != path:  # hooks fire innermost first: the first claim wins
                self.fed.setdefault(id(t), []).append(path)  # an outer module hands it on (res_samples)
        if self.stack:
            self.stack.pop()
        self.finished.add(path)
        self.last_exited = path
        out = outs[0] if outs else None
        rows = self.open_layers.get(id(module))
        if rows:
            i = rows.pop()
            self.cap.layers[i] = finish_layer(module, self.cap.layers[i], out, rank=self.rank)
        units = self.open_units.get(id(module))
        if units:
            u = units.pop()
            u.out_shape = None if out is None else tuple(out.shape)
            u.last = len(self.cap.layers)


def capture(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], units: set[str],
            rank: int | None = None) -> Capture:
    """Run ``model(*args, **kwargs)`` once with hooks; never raises for a failing forward.

    ``rank``: dimensions of the tensors whose dim-1 concats are skip concats (default: the first
    argument's; a video model passes 4: its blocks fold the frames into the batch)."""
    st = _State(model, units)
    first = next(tensors_in(args), None)
    if rank is not None:
        st.rank = rank
    elif first is not None and first.dim() >= 3:
        st.rank = first.dim()
    for t in [*tensors_in(args), *tensors_in(kwargs)]:
        st.new_tensor(t, source="input")
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
        last = st.cap.layers[-1].path if st.cap.layers else None
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        st.cap.error_at = st.stack[-1] if st.stack else None
        where = ("before the first layer" if last is None else f"in layer {last}" if st.stack and st.stack[-1] == last
                 else f"after layer {last}")
        st.cap.error = f"failed {where}: {type(e).__name__}: {msg}"
    finally:
        for h in handles:
            h.remove()
    for ev in st.cap.cats:
        if ev.consumer is None:
            ev.consumer = ev.next_module
    return st.cap
