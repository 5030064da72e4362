"""The layers a builder applies (``conv``, ``linear``, the norms, ``embedding``...), each checked against what
reaches it and recorded with its tensors, plus the parameter-free rows kept for MACs and memory and the modules
that own tensors without a row (``unrun``, ``buffer``, ``alias``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..core.errors import ModelFailure, UnetvizError
from ..core.kinds import kind_of
from ..core.records import Layer, Shape, Size, fmt_size, numel
from .acts import Act
from .cursor import Cursor

MAX_LAYERS = 20_000
"""SDXL has 1,050; the cap keeps any config's trace under a few seconds."""


class LayerOps(Cursor):
    """The layer operations of ``Tracer``."""

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


def _tup(v: int | Size, dims: int) -> Size:
    return (v,) * dims if isinstance(v, int) else tuple(v)
