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
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.config import Context
from ..core.errors import ModelFailure, UnetvizError
from ..core.kinds import Kind, kind_of, resampling
from ..core.quantities import layer_macs
from ..core.records import Concat, Failure, Layer, Operand, Shape, Size, Trace, Unit, fmt_size, numel
from .acts import Act, UnitCtx
from .registration import Registration
from .skipstack import SkipStack, added

__all__ = ["MAX_LAYERS", "Act", "Tracer", "UnitCtx"]


@dataclass
class Tracer:
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

    # ---- paths and scopes -------------------------------------------------------------------
    def path(self, name: str = "") -> str:
        here = self._here[-1]
        return f"{here}.{name}" if here and name else here or name

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

    # ---- layers -------------------------------------------------------------------------------
    def _add(self, name: str, type_: str, x: Act, in_c: int, out: Act, tensors: Sequence[tuple[str, Shape]],
             note: str = "", kernel: Size | None = None, stride: Size | None = None,
             padding: Size | None = None) -> Act:
        full = self.path(name)
        if len(self.layers) >= MAX_LAYERS:  # a runaway config (layers_per_block: 100000) must not hang
            raise UnetvizError(f"config: the model would have more than {MAX_LAYERS:,} layers (at {full});"
                               " unetviz traces models up to that size")
        failed = x.channels != in_c and not self.construct
        if failed:  # the real module raises inside: it has no output
            out = replace(out, size=None)
        if not self._unit:
            self._consume(full)
        keyed = tuple([(f"{full}.{t}", shape) for t, shape in tensors])
        params = sum([numel(shape) for _, shape in tensors])
        self._order.note(full)
        self.layers.append(Layer(batch=self.batch, path=full, type=type_, in_channels=in_c, out_channels=out.channels,
                                 in_size=x.size,
                                 out_size=out.size, kernel=kernel, stride=stride, padding=padding, params=params,
                                 tensors=keyed, unit=self._unit or full, note=note, tokens=x.tokens, source=x.source,
                                 # a module that changes the sequence length (pooling, a patch embedding)
                                 out_tokens=out.tokens if out.tokens not in (None, x.tokens) else None))
        if failed:
            # recorded first: the real module is entered (its hooks fire) before it raises
            raise ModelFailure(full, f"{full} ({type_}) expects {in_c} input channels but gets {x.channels}"
                                     f" from {x.source}")
        if x.channels != in_c:
            self.fail(full, f"{full} ({type_}) expects {in_c} input channels but gets {x.channels}")
        if not self._unit:  # a bare layer (conv_norm_out, an Embedding) is a unit of its own, as wide as it
            self._close_unit(full, kind_of(full, type_, x.size, out.size), type_, replace(x, channels=in_c), out,
                             len(self.layers) - 1, note)
        return out.by(full)

    def conv(self, name: str, x: Act, in_c: int, out_c: int, kernel: int | Size, stride: int | Size = 1,
             padding: int | Size = 0, bias: bool = True, dims: int = 2, groups: int = 1,
             transpose: bool = False, note: str = "") -> Act:
        """``nn.Conv{dims}d`` (or ``ConvTranspose2d``) with PyTorch's output-size arithmetic."""
        k, s, p = _tup(kernel, dims), _tup(stride, dims), _tup(padding, dims)
        full = self.path(name)
        spatial = x.size
        if spatial is None or len(spatial) != dims:
            self.fail(full, f"{full} expects a {dims}-d spatial input, got size {fmt_size(x.size)}")
            spatial = (1,) * dims  # the constructor's pass goes on at a nominal size
            x = replace(x, size=spatial)
        if transpose:
            size = tuple((n - 1) * si - 2 * pi + ki for n, ki, si, pi in zip(spatial, k, s, p, strict=True))
            wshape: Shape = (in_c, out_c // groups, *k)
            type_ = f"ConvTranspose{dims}d"
        else:
            size = tuple((n + 2 * pi - ki) // si + 1 for n, ki, si, pi in zip(spatial, k, s, p, strict=True))
            wshape = (out_c, in_c // groups, *k)
            type_ = f"Conv{dims}d"
        tensors: list[tuple[str, Shape]] = [("weight", wshape), *([("bias", (out_c,))] if bias else [])]
        too_small = min(size) < 1 and not self.construct
        if self.construct:
            size = tuple(max(1, d) for d in size)
        if in_c == 0 and transpose:
            self.fail(full, f"{full} ({type_}) has 0 input channels: F.conv_transpose needs a weight of at least 1")
        # PyTorch quirk: a convolution of a 0-channel input returns 0 channels, whatever out_channels says
        width = 0 if in_c == 0 and not self.construct else out_c
        y = self._add(name, type_, x, in_c, Act(width, None if too_small else size, ""), tensors, note, k, s, p)
        if too_small:
            raise ModelFailure(full, f"{full} ({type_} kernel {fmt_size(k)}) gets a {fmt_size(x.size)} input,"
                                     f" too small: the output would be {fmt_size(size)}")
        return y

    def linear(self, name: str, x: Act, in_f: int, out_f: int, bias: bool = True, note: str = "") -> Act:
        tensors: list[tuple[str, Shape]] = [("weight", (out_f, in_f)), *([("bias", (out_f,))] if bias else [])]
        return self._add(name, "Linear", x, in_f, Act(out_f, x.size, "", x.tokens), tensors, note)

    def group_norm(self, name: str, x: Act, groups: int, channels: int, affine: bool = True,
                   key: str = "norm_num_groups") -> Act:
        if groups < 1 or channels % groups:
            raise UnetvizError(f"{key}: got {groups}; it must divide the {channels} channels of"
                               f" {self.path(name)} (GroupNorm)")
        tensors: list[tuple[str, Shape]] = [("weight", (channels,)), ("bias", (channels,))] if affine else []
        return self._add(name, "GroupNorm", x, channels, Act(x.channels, x.size, "", x.tokens), tensors,
                         f"{groups} groups")

    def layer_norm(self, name: str, x: Act, channels: int, affine: bool = True, bias: bool = True) -> Act:
        tensors: list[tuple[str, Shape]] = []
        if affine:
            tensors = [("weight", (channels,)), *([("bias", (channels,))] if bias else [])]
        return self._add(name, "LayerNorm", x, channels, Act(x.channels, x.size, "", x.tokens), tensors)

    def embedding(self, name: str, num: int, dim: int) -> Act:
        x = Act(num, None, "input")
        return self._add(name, "Embedding", x, num, Act(dim, None, ""), [("weight", (num, dim))])

    def unrun(self, name: str, tensors: Sequence[tuple[str, Shape]]) -> None:
        """Parameters of a module the constructor makes but the forward never runs (``norm_cross`` when no
        context is passed): in the manifest, the params and its unit's params, with no layer row."""
        full = self.path(name)
        self._order.note(full)
        self._buffers.extend((f"{full}.{t}", shape) for t, shape in tensors)
        self._unrun.update(f"{full}.{t}" for t, _ in tensors)

    def buffer(self, name: str, shape: Shape) -> None:
        """A persistent buffer (a resampling kernel): a ``state_dict`` entry that is no parameter and no layer."""
        full = self.path(name)
        self._order.note(full)
        self._buffers.append((full, shape))

    def alias(self, name: str, of: str) -> None:
        """Module ``name`` (here) is module ``of`` (a full path) registered again: nnU-Net's ``all_modules.0`` is
        its block's ``conv``, and its decoder keeps the encoder. ``state_dict()`` lists the tensors under both paths
        (the manifest does too, ``Trace.aliases`` maps them to the first key) and they count once. Called after
        ``of``'s tensors are recorded; an alias of a module holding aliases maps to the first keys."""
        full = self.path(name)
        self._order.note(full)
        self._aliases.append((full, of))
        # the copy ranks its children as the module does (decoder.encoder's stem before its stages)
        start, under, reg = len(of), of + ".", self._order
        for parent in [p for p in reg.seen if p == of or p.startswith(under)]:
            reg.seen.setdefault(full + parent[start:], dict(reg.seen[parent]))
        for parent in [p for p in reg.declared if p == of or p.startswith(under)]:
            reg.declared.setdefault(full + parent[start:], reg.declared[parent])

    def _alias_keys(self, entries: Sequence[tuple[str, Shape]]) -> dict[str, tuple[Shape, str]]:
        """Alias key -> (shape, first key) for every tensor under an aliased module, in the order of ``alias``."""
        found: dict[str, tuple[Shape, str]] = {}
        for full, of in self._aliases:
            start, under = len(of), of + "."
            here = [(k, s) for k, s in entries if k.startswith(under)]
            here += [(k, s) for k, (s, _) in found.items() if k.startswith(under)]
            for key, shape in here:
                found[full + key[start:]] = (shape, found[key][1] if key in found else key)
        return found

    def owner(self, name: str, type_: str, x: Act, out: Act, tensors: Sequence[tuple[str, Shape]],
              note: str = "") -> Act:
        """A module that owns parameters directly (an RMSNorm gain, a Fourier projection)."""
        return self._add(name, type_, x, x.channels, out, tensors, note)

    # ---- parameter-free rows (for MACs and memory; ``unetviz.core.quantities.FREE_TYPES``) --------------
    def attention_matmuls(self, name: str, q: Act, heads: int, q_dim: int, v_dim: int, tokens: int,
                          kv_tokens: int, kind: str = "attention") -> None:
        """The matmuls of the attention module ``name``: q·kᵀ and attn·v (``attention``), or linear
        attention's two einsums through each head's d x e context (``linear_attention``). A row with no
        tensors and no parameters; ``q_dim`` / ``v_dim`` are per head, ``tokens`` the query's length."""
        full = self.path(name)
        self.layers.append(Layer(batch=self.batch, path=full, type=kind, in_channels=heads * q_dim,
                                 out_channels=heads * v_dim,
                                 in_size=None, out_size=None, unit=self._unit or full, tokens=tokens,
                                 note=f"{heads} heads, {tokens} x {kv_tokens} tokens", source=q.source,
                                 heads=heads, kv_tokens=kv_tokens))

    def fixed_conv(self, name: str, x: Act, out_size: Size, kernel: int, stride: int, padding: int = 0,
                   transpose: bool = False, note: str = "", at: str = "") -> None:
        """``F.conv{n}d`` / ``F.conv_transpose{n}d`` with a C x C weight the forward builds (a resampling
        kernel): a row with no tensors, for its MACs. ``x``: the (padded) input the conv gets; n: its rank.
        ``at``: the calling module's full path when it is not ``name`` in this scope (a parameter-free
        module the forward runs right after the current unit, whose MACs that unit's span holds)."""
        full, dims = at or self.path(name), len(out_size)
        self.layers.append(Layer(batch=self.batch, path=full,
                                 type=f"conv_transpose{dims}d" if transpose else f"conv{dims}d",
                                 in_channels=x.channels, out_channels=x.channels, in_size=x.size, out_size=out_size,
                                 kernel=(kernel,) * dims, stride=(stride,) * dims, padding=(padding,) * dims,
                                 unit=self._unit or full, note=note, source=x.source))

    # ---- the skip stack ----------------------------------------------------------------------------
    def push(self, x: Act, unit: str = "", empty: bool = False) -> None:
        """``hs.append(x)``: remember ``x`` for the decoder. ``empty``: the entry is ``None`` in place of ``x``
        (the k-diffusion cross-attention block without a downsampler hands the decoder ``None``)."""
        unit = unit or (self.units[-1].path if self.units else x.source)
        self._skips.push(x.source, x.channels, x.size, unit, empty)

    def pop(self, consumer: str = "") -> Act:
        """``hs.pop()``: the most recent unpopped skip."""
        where = self.path(consumer) if consumer else None
        if not self._skips.stack:
            self.fail(where, "the skip stack is empty: the decoder pops more skips than the encoder pushed")
            return Act(0, None, "input")
        s = self.pop_entry()
        if s is None:
            self.fail(where, f"torch.cat before {where}: the skip is None (a KCrossAttnDownBlock2D without a"
                             " downsampler hands the decoder None)")
            return Act(0, None, "None")
        return s

    def pop_entry(self, taker: str = "") -> Act | None:
        """The most recent unpopped entry as it is (``None`` for an empty one), taken by block ``taker``
        (a later ``cat`` of it names its consumer); the stack must not be empty (see ``depth``)."""
        s = self._skips.take(taker)
        return None if s.empty else Act(s.channels, s.size, s.source, skip=s.index)

    def depth(self) -> int:
        """Entries left on the skip stack (``len(down_block_res_samples)``)."""
        return len(self._skips.stack)

    def peek_size(self) -> Size | None:
        """Size of the skip on top of the stack (diffusers' ``upsample_size``); None if empty or no tensor."""
        top = self._skips.top()
        return None if top is None else top.size

    def peek_is_none(self) -> bool:
        """The entry on top of the stack holds no tensor (``None``)."""
        top = self._skips.top()
        return top is not None and top.empty

    def _consume(self, full: str) -> None:
        if self._pending is not None:
            c = self.concats[self._pending] = replace(self.concats[self._pending], consumer=full)
            for op in c.inputs:
                if op.skip is not None:
                    self._skips.consumed(op.skip, full)
            self._pending = None

    def cat(self, xs: Sequence[Act], into: str | None, crop: tuple[Size, Size] | None = None) -> Act:
        """``torch.cat(xs, dim=1)`` feeding module ``into`` (None: the next unit or bare layer to run, which
        may lie outside the current block); sizes must agree."""
        consumer = self.path(into) if into is not None else self.path()
        first = xs[0]
        for other in xs[1:]:
            if other.size != first.size:
                what = f"skip #{other.skip} from {other.source}" if other.skip is not None else other.source
                self.fail(consumer, f"torch.cat before {consumer}: {first.channels}ch"
                                             f" {fmt_size(first.size)} from {first.source} does not match"
                                             f" {other.channels}ch {fmt_size(other.size)} ({what})")
        ops = tuple(Operand(source=a.source, channels=a.channels, size=a.size, skip=a.skip) for a in xs)
        channels = sum(a.channels for a in xs)
        self.concats.append(Concat(consumer="" if into is None else consumer, channels=channels, size=first.size,
                                   inputs=ops, at=len(self.layers), crop=crop))
        if into is None:
            self._pending = len(self.concats) - 1
        for a in xs:
            if a.skip is not None:
                self._skips.consumed(a.skip, consumer)
        return Act(channels, first.size, "")

    def add(self, xs: Sequence[Act], into: str) -> Act:
        """``xs[0] + skip`` merging a popped skip into the decoder state (SegResNet's ``up(x) + down_x[i + 1]``),
        feeding module ``into``. The sum is the current module's arithmetic: where the shapes do not broadcast,
        that module's forward fails (not ``into``'s, which never runs)."""
        consumer = self.path(into)
        record, problem = added(xs, consumer, len(self.layers))
        if problem:
            self.fail(self.path(), f"the addition before {consumer}: {problem}")
        self.adds.append(record)
        for a in xs:
            if a.skip is not None:
                self._skips.consumed(a.skip, consumer, "add")
        return Act(record.channels, record.size or xs[0].size, "")

    # ---- finishing ---------------------------------------------------------------------------------
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


MAX_LAYERS = 20_000
"""SDXL has 1,050; the cap keeps any config's trace under a few seconds."""

def _tup(v: int | Size, dims: int) -> Size:
    return (v,) * dims if isinstance(v, int) else tuple(v)
