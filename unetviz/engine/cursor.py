"""The tracer's state and the few steps every operation shares: where it is (``path``), failing where the real
forward fails (``fail``), closing a unit, handing a pending concat to its consumer. ``Tracer`` (``tracer.py``) adds
the scopes and the trace, ``LayerOps`` (``layer_ops.py``) the layers, ``SkipOps`` (``skip_ops.py``) the skip stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from ..core.config import Context
from ..core.errors import ModelFailure
from ..core.kinds import Kind, resampling
from ..core.records import Concat, Layer, Shape, Size, Unit, numel
from .acts import Act
from .registration import Registration
from .skipstack import SkipStack


@dataclass
class Cursor:
    """The cursor a builder walks. ``construct=True`` is the constructor's pass: every module the
    config makes is recorded (the ``state_dict`` manifest, the parameters) and config errors raise,
    but nothing the forward pass would do at a size fails: ``fail`` records and returns, sizes that
    would be empty are clamped to 1 and channel mismatches are noted, so the walk reaches every module."""

    family: str
    model: str
    construct: bool = False
    """The constructor's pass (see above); ``False`` for the forward pass at a size."""
    layers: list[Layer] = field(default_factory=list)
    concats: list[Concat] = field(default_factory=list)
    adds: list[Concat] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    blocks: list[tuple[str, str]] = field(default_factory=list)
    in_channels: int = 0
    in_size: Size = ()
    size_source: str = ""
    _skips: SkipStack = field(default_factory=SkipStack)
    _here: list[str] = field(default_factory=lambda: [""])
    """The path of each scope entered and not yet left, the model itself first: the last is the current one."""
    _block: str = ""
    _unit: str = ""
    _order: Registration = field(default_factory=Registration)
    _buffers: list[tuple[str, Shape]] = field(default_factory=list)
    _unrun: set[str] = field(default_factory=set)
    _aliases: list[tuple[str, str]] = field(default_factory=list)
    """(module path, the module's first path): one module registered under two paths (``alias``)."""
    _pending: int | None = None
    """A concat whose consumer is whatever module runs next (``cat(into=None)``)."""
    batch: int = 1
    """Batch rows per sample of the layers being added (see ``Layer.batch``; set with ``batched``)."""
    suppressed: list[ModelFailure] = field(default_factory=list)
    """Forward failures the constructor's pass walked past (``construct=True`` only)."""
    context: Context = None
    """The context the caller asked for (``--context``): (tokens, width), ``"none"``, or None (the default)."""
    context_used: tuple[int, int] | None = None
    context_read: bool = False
    """Whether the builder read ``context`` (a model that takes no context must refuse ``--context``)."""

    def fail(self, at: str | None, message: str) -> None:
        """Where the real forward would fail: raises ``ModelFailure``, except in the constructor's
        pass, which records it and returns so the builder goes on to the remaining modules."""
        failure = ModelFailure(at, message)
        if not self.construct:
            raise failure
        self.suppressed.append(failure)

    @contextmanager
    def batched(self, rows: int) -> Iterator[None]:
        """Layers added inside run on ``rows`` batch rows per sample (frames folded into the batch)."""
        saved, self.batch = self.batch, rows
        try:
            yield
        finally:
            self.batch = saved

    def path(self, name: str = "") -> str:
        here = self._here[-1]
        return f"{here}.{name}" if here and name else here or name

    def _close_unit(self, full: str, kind: Kind, type_: str, x: Act, out: Act, first: int, note: str) -> None:
        # a module called twice in the unit (SVD's time_mixer, once per transformer depth) owns its parameters once
        owned = dict.fromkeys(t for layer in self.layers[first:] for t in layer.tensors)
        # a module the forward never runs (unrun) is still the unit's: the real module holds its parameters
        owned.update(dict.fromkeys((k, shape) for k, shape in self._buffers if k in self._unrun and
                                   k.startswith(f"{full}.")))
        params = sum(numel(shape) for _, shape in owned)
        if kind == "conv":  # a lone conv that changes the resolution (conv_in with kernel 2) is a sampler
            kind = resampling(x.size, out.size) or kind
        # a step under no heading (conv_in, conv_norm_out) is a block of its own: blocks partition the model
        self.units.append(Unit(path=full, kind=kind, type=type_, in_channels=x.channels, out_channels=out.channels,
                               in_size=x.size, out_size=out.size, params=params, first=first, last=len(self.layers),
                               block=self._block or full, note=note))

    def _consume(self, full: str) -> None:
        if self._pending is not None:
            c = self.concats[self._pending] = replace(self.concats[self._pending], consumer=full)
            for op in c.inputs:
                if op.skip is not None:
                    self._skips.consumed(op.skip, full)
            self._pending = None
