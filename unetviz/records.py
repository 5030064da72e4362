"""Frozen records that make up a trace: layers, concats, skip-stack entries, units, the trace.

Every field is documented where it is declared. A ``size`` is the spatial part of a tensor's
shape (``shape[2:]``) for channel-first tensors, e.g. ``(64, 64)``, or ``(4096,)`` where the
real code flattens the image before a GroupNorm or Conv1d; ``None`` for channel-last tensors
(the token sequences of a transformer, a time embedding).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Size = tuple[int, ...]
Shape = tuple[int, ...]

SCHEMA = "unetviz.trace/1"


def within(path: str, prefix: str) -> bool:
    """``path`` is the module ``prefix`` or one of its submodules."""
    return path == prefix or path.startswith(prefix + ".")


def enclosing(path: str, prefixes: Iterable[str]) -> str:
    """The longest of ``prefixes`` that ``path`` lies within, or ``""``."""
    best = ""
    for p in prefixes:
        if within(path, p) and len(p) > len(best):
            best = p
    return best


def numel(shape: Size | Shape | None) -> int:
    """The product of a shape's dimensions (1 for a scalar or no shape)."""
    n = 1
    for d in shape or ():
        n *= d
    return n


def fmt_size(size: Size | Shape | None) -> str:
    """``64x96`` (height x width); ``-`` for no spatial size."""
    return "-" if size is None else "x".join(str(d) for d in size)


WEIGHTS_SCHEMA = "unetviz.weights/1"


@dataclass(frozen=True)
class Layer:
    """One module that owns parameters, in the order the forward pass runs it."""

    path: str
    """The module's path in the real model's ``named_modules()``."""
    type: str
    """The torch class name: Conv2d, Linear, GroupNorm, LayerNorm, Embedding, ..."""
    in_channels: int
    """Input channels (``in_features`` for Linear, ``num_embeddings`` for Embedding)."""
    out_channels: int
    """Output channels (``out_features``, ``embedding_dim``)."""
    in_size: Size | None
    """Spatial size of the input, ``None`` for channel-last inputs."""
    out_size: Size | None
    """Spatial size of the output."""
    kernel: Size | None = None
    """Kernel size of a convolution."""
    stride: Size | None = None
    """Stride of a convolution."""
    padding: Size | None = None
    """Padding of a convolution (before any explicit ``F.pad`` the block does)."""
    params: int = 0
    """Number of parameters the module owns directly."""
    tensors: tuple[tuple[str, Shape], ...] = ()
    """The module's own ``state_dict`` entries: (full key, shape), in registration order."""
    unit: str = ""
    """The block-level unit the layer belongs to (a resnet, an attention, a sampler)."""
    note: str = ""
    """A short human note: heads x head_dim, where keys and values come from, groups."""
    tokens: int | None = None
    """For channel-last layers on a token sequence: the sequence length."""
    source: str = ""
    """The producer of the layer's input: a module path, ``input``, or a named tensor of the forward
    (``encoder_hidden_states``, ``time_proj``). Diagrams draw data flow from it."""


@dataclass(frozen=True)
class Operand:
    """One input of a channel concatenation."""

    source: str
    """Path of the module whose output this is (innermost module that returned it, or the last
    module that ran before it was made), or ``"input"`` for the model's input."""
    channels: int
    size: Size | None
    skip: int | None = None
    """Skip-stack index when the operand was popped from the stack."""


@dataclass(frozen=True)
class Concat:
    """A ``torch.cat`` along the channel dimension."""

    consumer: str
    """Path of the module that receives the concatenated tensor."""
    channels: int
    """Channels of the result (the sum of the operands')."""
    size: Size | None
    inputs: tuple[Operand, ...]
    """Operands in the order of the ``torch.cat`` call."""
    at: int
    """Index into ``Trace.layers`` of the first layer run after the concat."""
    crop: tuple[Size, Size] | None = None
    """For crop-and-concat (Ronneberger): the skip's size before and after the centre crop."""


@dataclass(frozen=True)
class Skip:
    """One push onto the skip stack, in push order."""

    index: int
    source: str
    """Path of the module whose output was pushed."""
    channels: int
    size: Size | None
    to: str | None
    """Path of the module that consumes it after the pop, ``None`` if never popped."""
    unit: str = ""
    """The block-level unit that produced it (``down_blocks.1.downsamplers.0``)."""


@dataclass(frozen=True)
class Unit:
    """A block-level step: a resnet, an attention / transformer, a sampler, a lone conv."""

    path: str
    kind: str
    """One of: conv, norm, embed, resnet, attention, transformer, downsample, upsample, mlp."""
    type: str
    """The upstream class name (ResnetBlock2D, Transformer2DModel, ...)."""
    in_channels: int
    out_channels: int
    in_size: Size | None
    out_size: Size | None
    params: int
    first: int
    """Index of the unit's first layer in ``Trace.layers``."""
    last: int
    """Index one past the unit's last layer."""
    block: str = ""
    """The heading it sits under: ``down_blocks.1``, ``mid_block``, ``output_blocks.7``."""
    note: str = ""


@dataclass(frozen=True)
class Failure:
    """Where the real model would fail at this input."""

    at: str | None
    message: str


@dataclass(frozen=True)
class Trace:
    """The symbolic (or observed) trace of one model at one input size."""

    family: str
    model: str
    preset: str | None
    in_channels: int
    in_size: Size
    out_channels: int | None
    out_size: Size | None
    layers: tuple[Layer, ...]
    concats: tuple[Concat, ...]
    skips: tuple[Skip, ...]
    units: tuple[Unit, ...]
    manifest: tuple[tuple[str, Shape], ...]
    """The ``state_dict`` keys and shapes in the real model's order."""
    error: Failure | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    """The resolved constructor arguments (defaults filled in), read-only."""
    size_source: str = ""
    """Where the input size came from: ``--size``, ``sample_size``, ``family default``."""
    blocks: tuple[tuple[str, str], ...] = ()
    """Block headings in order: (block path, human description)."""
    source: str = "symbolic"
    """``symbolic`` (built from a config) or ``observed`` (hooked forward pass)."""

    @property
    def params(self) -> int:
        """Total parameters: every tensor of the state_dict."""
        return sum(numel(shape) for _, shape in self.manifest)

    def to_dict(self) -> dict[str, Any]:
        """The JSON trace of ``../shared/spec/interface.md`` as plain data."""
        return {
            "schema": SCHEMA,
            "family": self.family,
            "model": self.model,
            "preset": self.preset,
            "source": self.source,
            "input": {"channels": self.in_channels, "size": list(self.in_size)},
            "output": None
            if self.out_channels is None
            else {"channels": self.out_channels, "size": _list(self.out_size)},
            "params": self.params,
            "layers": [_layer_dict(x) for x in self.layers],
            "concats": [_concat_dict(c) for c in self.concats],
            "skips": [_skip_dict(s) for s in self.skips],
            "units": [_unit_dict(u) for u in self.units],
            "error": None if self.error is None else {"at": self.error.at, "message": self.error.message},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def weights(self) -> dict[str, Any]:
        """The weights manifest: exact ``state_dict`` keys and shapes, in order."""
        return {
            "schema": WEIGHTS_SCHEMA,
            "count": len(self.manifest),
            "params": self.params,
            "tensors": {k: list(v) for k, v in self.manifest},
        }

    def graph(self, detail: str = "blocks") -> Any:
        """A ``graphviz.Digraph`` of the U; displays as SVG in a notebook."""
        from .render.graph import to_graphviz

        return to_graphviz(self, detail=detail)

    def _repr_html_(self) -> str:
        from .render.formats import to_html

        return to_html(self)


def _list(size: Size | None) -> list[int] | None:
    return None if size is None else list(size)


def _layer_dict(x: Layer) -> dict[str, Any]:
    d: dict[str, Any] = {
        "path": x.path,
        "type": x.type,
        "in_channels": x.in_channels,
        "out_channels": x.out_channels,
        "in_size": _list(x.in_size),
        "out_size": _list(x.out_size),
    }
    if x.kernel is not None:
        d["kernel"] = list(x.kernel)
        d["stride"] = _list(x.stride)
        d["padding"] = _list(x.padding)
    d["params"] = x.params
    d["unit"] = x.unit
    if x.tokens is not None:
        d["tokens"] = x.tokens
    if x.note:
        d["note"] = x.note
    return d


def _concat_dict(c: Concat) -> dict[str, Any]:
    inputs = []
    for op in c.inputs:
        o: dict[str, Any] = {"from": op.source, "channels": op.channels, "size": _list(op.size)}
        if op.skip is not None:
            o["skip"] = op.skip
        inputs.append(o)
    d: dict[str, Any] = {"consumer": c.consumer, "channels": c.channels, "size": _list(c.size), "inputs": inputs}
    if c.crop is not None:
        d["crop"] = {"from": list(c.crop[0]), "to": list(c.crop[1])}
    return d


def _skip_dict(s: Skip) -> dict[str, Any]:
    return {
        "index": s.index,
        "from": s.source,
        "unit": s.unit,
        "channels": s.channels,
        "size": _list(s.size),
        "to": s.to,
    }


def _unit_dict(u: Unit) -> dict[str, Any]:
    return {
        "path": u.path,
        "kind": u.kind,
        "type": u.type,
        "block": u.block,
        "in_channels": u.in_channels,
        "out_channels": u.out_channels,
        "in_size": _list(u.in_size),
        "out_size": _list(u.out_size),
        "params": u.params,
        "layers": [u.first, u.last],
        **({"note": u.note} if u.note else {}),
    }
