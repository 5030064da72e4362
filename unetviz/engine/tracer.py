"""The tracer cursor: what a family builder calls while it walks a model's forward pass.

A builder reads like the upstream ``__init__``/``forward``: it opens scopes named after the real
attributes (``down_blocks.0``, ``resnets.1``), applies layers to symbolic activations (``Act``)
and pushes/pops the skip stack. The tracer checks every layer against what reaches it (channels,
positive sizes), records the layers in execution order, and orders the ``state_dict`` manifest by
module registration order, which the builder declares where it differs from execution order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ..core.kinds import Kind
from ..core.quantities import layer_macs
from ..core.records import Failure, Shape, Size, Trace
from .acts import Act, UnitCtx
from .layer_ops import MAX_LAYERS, LayerOps
from .skip_ops import SkipOps

__all__ = ["MAX_LAYERS", "Act", "Tracer", "UnitCtx"]


class Tracer(LayerOps, SkipOps):
    """The cursor a builder walks. ``construct=True`` is the constructor's pass: every module the
    config makes is recorded (the ``state_dict`` manifest, the parameters) and config errors raise,
    but nothing the forward pass would do at a size fails: ``fail`` records and returns, sizes that
    would be empty are clamped to 1 and channel mismatches are noted, so the walk reaches every module.
    Its state is ``Cursor``'s; the layers are ``LayerOps``', the skip stack ``SkipOps``'."""

    def heading(self, path: str, title: str) -> None:
        """A heading over top-level modules that share no parent module (lucidrains' mid steps)."""
        self.blocks.append((path, title))

    def set_size_source(self, text: str) -> None:
        """Say where the input size came from when the builder knows better than ``start`` did."""
        self.size_source = text

    def start(self, channels: int, size: Size, source: str) -> Act:
        """The model's input ``sample``: where every trace begins."""
        self.in_channels, self.in_size, self.size_source = channels, size, source
        return Act(channels, size, "input")

    def scope(self, name: str, order: Sequence[str] = ()) -> AbstractContextManager[str]:
        """Enter submodule ``name`` (``with t.scope(name) as full``). ``order``: its children in registration
        order, where that differs from the order the forward pass reaches them (it decides ``state_dict`` order)."""
        full = self.path(".".join(p for p in name.split(".") if p))
        if order:
            self._order.declare(full, order)
        return _Scope(self._here, full)

    def declare(self, order: Sequence[str]) -> None:
        """Registration order of the current scope's children (see ``scope``)."""
        self._order.declare(self.path(), order)

    @contextmanager
    def block(self, name: str, title: str, order: Sequence[str] = ()) -> Iterator[str]:
        """A heading-level block (``down_blocks.1``); units inside are grouped under it."""
        with self.scope(name, order) as full:
            saved, self._block = self._block, full
            self.blocks.append((full, title))
            try:
                yield full
            finally:
                self._block = saved

    @contextmanager
    def unit(self, name: str, kind: Kind, type_: str, x: Act, note: str = "") -> Iterator[UnitCtx]:
        """A block-level step. Close it with ``u.done(y)`` before the ``with`` ends."""
        with self.scope(name) as full:
            self._consume(full)
            ctx = UnitCtx(full, kind, type_, x, len(self.layers), note)
            # a unit inside a unit (attn1 inside a transformer) stays part of the outer one: units
            # partition the layers, so block-level views show each layer exactly once
            nested = bool(self._unit)
            saved, self._unit = self._unit, (self._unit or full)
            try:
                yield ctx
            finally:
                self._unit = saved
            if ctx.out is None:
                raise RuntimeError(f"unit {full} was not closed")  # a builder bug, not user input
            if not nested:
                self._close_unit(full, kind, type_, x, ctx.out, ctx.first, ctx.note)

    def manifest(self) -> tuple[tuple[str, Shape], ...]:
        """All tensors in ``state_dict`` order: by registration rank, path component by path component."""
        # a module the forward calls twice (time_proj for the time and the class) has one set of tensors
        owned = {key: shape for layer in self.layers for key, shape in layer.tensors}
        entries = [*owned.items(), *self._buffers]
        if self._aliases:
            entries += [(k, shape) for k, (shape, _) in self._alias_keys(entries).items()]
        return self._order.order(entries)

    def build(self, out: Act | None, error: Failure | None = None, config: Mapping[str, Any] | None = None,
              manifest: tuple[tuple[str, Shape], ...] | None = None) -> Trace:
        """The trace; ``manifest``: the state_dict order already known for this config (it is sorted once)."""
        buffers = {k for k, _ in self._buffers if k not in self._unrun}
        aliases: dict[str, str] = {}
        if self._aliases:
            owned = [(key, shape) for layer in self.layers for key, shape in layer.tensors]
            aliases = {k: first for k, (_, first) in self._alias_keys([*owned, *self._buffers]).items()}
            buffers.update(k for k, first in aliases.items() if first in buffers)
        return Trace(family=self.family, model=self.model, preset=None, in_channels=self.in_channels,
                     in_size=self.in_size, out_channels=None if out is None else out.channels,
                     out_size=None if out is None else out.size, layers=tuple(self.layers),
                     concats=tuple(self.concats), skips=tuple(self._skips.skips), units=tuple(self.units),
                     manifest=self.manifest() if manifest is None else manifest, error=error, config=config or {},
                     size_source=self.size_source, blocks=tuple(self.blocks),
                     buffers=frozenset(buffers), aliases=aliases,
                     context=self.context_used, macs=sum(layer_macs(x) for x in self.layers), adds=tuple(self.adds))


class _Scope:
    """``Tracer.scope``'s context: a plain class, as every module of a trace is entered through one."""

    __slots__ = ("full", "here")

    def __init__(self, here: list[str], full: str) -> None:
        self.here, self.full = here, full

    def __enter__(self) -> str:
        self.here.append(self.full)
        return self.full

    def __exit__(self, *exc: object) -> None:
        self.here.pop()

