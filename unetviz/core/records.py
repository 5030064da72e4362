"""Frozen records that make up a trace: layers, concats, skip-stack entries, units, the trace.

Every field is documented where it is declared. A ``size`` is the spatial part of a tensor's
shape (``shape[2:]``) for channel-first tensors, e.g. ``(64, 64)``, or ``(4096,)`` where the
real code flattens the image before a GroupNorm or Conv1d; ``None`` for channel-last tensors
(the token sequences of a transformer, a time embedding).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .kinds import Kind

if TYPE_CHECKING:
    import graphviz

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


@dataclass(frozen=True, kw_only=True)
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
    """Spatial size of the output; ``None`` also where the module fails and returns nothing."""
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
    batch: int = 1
    """Batch rows the layer runs on per sample: a video U-Net folds its frames into the batch, so its 2-D
    layers run once per frame and its temporal transformers once per pixel. MACs and elements scale by it."""
    heads: int | None = None
    """For an attention-matmul row (``type`` ``attention`` / ``linear_attention``, no parameters): the heads.
    ``in_channels`` is then heads x the q·k width per head, ``out_channels`` heads x the value width, ``tokens``
    the query's sequence length; ``None`` on every other row."""
    kv_tokens: int | None = None
    """For an attention-matmul row: the key/value sequence length (memory kv included)."""
    out_tokens: int | None = None
    """The output's sequence length where it is not ``tokens``: diffusers' ``AttentionPooling`` reads 77 tokens and
    writes one pooled vector (1), MONAI's ``PatchEmbeddingBlock`` reads a map and writes its patch tokens, GLIGEN's
    text-image position net reads 30 boxes and writes 60 tokens. ``None``: as many as it reads (``written_tokens``)."""

    @property
    def written_tokens(self) -> int | None:
        """The output's sequence length: ``out_tokens`` where the layer changes it, else ``tokens``."""
        return self.tokens if self.out_tokens is None else self.out_tokens


@dataclass(frozen=True, kw_only=True)
class Operand:
    """One input of a channel concatenation."""

    source: str
    """Path of the module whose output this is (innermost module that returned it, or the last
    module that ran before it was made), or ``"input"`` for the model's input."""
    channels: int
    """Its channels (dim 1)."""
    size: Size | None
    """Its spatial size."""
    skip: int | None = None
    """Skip-stack index when the operand was popped from the stack."""


@dataclass(frozen=True, kw_only=True)
class Concat:
    """A ``torch.cat`` along the channel dimension (in ``Trace.adds``: an addition that merges a skip)."""

    consumer: str
    """Path of the module that receives the concatenated tensor."""
    channels: int
    """Channels of the result (the sum of the operands')."""
    size: Size | None
    """Spatial size of the result (every operand's)."""
    inputs: tuple[Operand, ...]
    """Operands in the order of the ``torch.cat`` call."""
    at: int
    """Index into ``Trace.layers`` of the first layer run after the concat."""
    crop: tuple[Size, Size] | None = None
    """For crop-and-concat (Ronneberger): the skip's size before and after the centre crop."""


@dataclass(frozen=True, kw_only=True)
class Skip:
    """One push onto the skip stack, in push order."""

    index: int
    """Push order, 0 first (``#6`` in tables)."""
    source: str
    """Path of the module whose output was pushed."""
    channels: int
    """Channels of the pushed tensor."""
    size: Size | None
    """Its spatial size."""
    to: str | None
    """Path of the module that consumes it after the pop, ``None`` if never popped."""
    unit: str = ""
    """The block-level unit that produced it (``down_blocks.1.downsamplers.0``)."""
    taken: str | None = None
    """The block that took it off the stack without concatenating it (a k-diffusion up block takes one entry
    per resnet and uses only the last); ``None`` otherwise."""
    empty: bool = False
    """The entry holds ``None``, no tensor (a KCrossAttnDownBlock2D without a downsampler hands the decoder
    ``None``): it has no channels and no size, and nothing can concatenate it."""
    merge: str = "concat"
    """How the decoder merges it: ``concat`` (a ``torch.cat`` along the channels, listed in ``Trace.concats``) or
    ``add`` (summed with the decoder state, as smp's Linknet does; listed in ``Trace.adds``)."""
    consumers: tuple[str, ...] = ()
    """Every module that receives a merge reading it, in forward order (``to`` is the first). One for a skip
    stack used last-in first-out; UNet++'s dense skips are read by several (``Trace.lifo`` is then false).
    Empty where only ``to`` is known (the symbolic builders)."""


@dataclass(frozen=True, kw_only=True)
class Unit:
    """A block-level step: a resnet, an attention / transformer, a sampler, a lone conv."""

    path: str
    """The unit's module path."""
    kind: Kind
    """What it is, from the one vocabulary in ``unetviz.core.kinds``."""
    type: str
    """The upstream class name (ResnetBlock2D, Transformer2DModel, ...)."""
    in_channels: int
    """Channels of the unit's input."""
    out_channels: int
    """Channels of the unit's output."""
    in_size: Size | None
    """Spatial size of the input."""
    out_size: Size | None
    """Spatial size of the output."""
    params: int
    """Parameters of the unit's layers (``Trace.layers[first:last]``)."""
    first: int
    """Index of the unit's first layer in ``Trace.layers``."""
    last: int
    """Index one past the unit's last layer."""
    block: str = ""
    """The heading it sits under: ``down_blocks.1``, ``mid_block``, ``output_blocks.7``; or its own
    path for a head/tail step (``conv_in``, ``conv_norm_out``) that sits under no heading."""
    note: str = ""
    """A short human note (``8 heads x 40``, ``1920->1280 +1x1 shortcut``)."""


@dataclass(frozen=True, kw_only=True)
class Failure:
    """Where the real model would fail at this input."""

    at: str | None
    """The module where it fails, ``None`` where no module is to blame (the model's own forward)."""
    message: str
    """What fails, with the numbers (``skip 15x15 vs 16x16``)."""


@dataclass(frozen=True, kw_only=True)
class Trace:
    """The symbolic (or observed) trace of one model at one input size."""

    family: str
    """The registry's family name: ``diffusers``, ``lucidrains``, ``guided``, ..."""
    model: str
    """The upstream class name."""
    preset: str | None
    """The preset traced, if any."""
    in_channels: int
    """Channels of the model's input ``sample``."""
    in_size: Size
    """Spatial size of the input."""
    out_channels: int | None
    """Channels of the output; ``None`` when the model fails."""
    out_size: Size | None
    """Spatial size of the output; ``None`` when the model fails."""
    layers: tuple[Layer, ...]
    """Every parameter-owning module, in forward order (up to the failure, if any)."""
    concats: tuple[Concat, ...]
    """Every channel concatenation, in forward order."""
    skips: tuple[Skip, ...]
    """The skip stack, in push order."""
    units: tuple[Unit, ...]
    """Block-level steps; they partition ``layers``."""
    manifest: tuple[tuple[str, Shape], ...]
    """The ``state_dict`` keys and shapes in the real model's order: every module the constructor
    makes, also when the forward fails part-way."""
    error: Failure | None = None
    """Where the model fails at this input, if it does."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """The resolved constructor arguments (defaults filled in), read-only."""
    given: Mapping[str, Any] = field(default_factory=dict)
    """The config as given (``_class_name`` or ``family`` plus the arguments set), read-only."""
    size_source: str = ""
    """Where the input size came from: ``--size``, ``sample_size``, ``family default``."""
    blocks: tuple[tuple[str, str], ...] = ()
    """Block headings in order: (block path, human description)."""
    source: str = "symbolic"
    """``symbolic`` (built from a config) or ``observed`` (hooked forward pass)."""
    name: str = ""
    """What to call it in titles: the preset, the config file's name, or empty."""
    buffers: frozenset[str] = frozenset()
    """``state_dict`` keys that are persistent buffers (resampling kernels), not parameters."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """``state_dict`` keys that name a tensor already listed under another key (a module registered under two
    paths, as nnU-Net's ``ConvDropoutNormReLU`` registers its conv): alias -> the first key. They stay in the
    manifest, as ``state_dict()`` lists them, but count once."""
    context: tuple[int, int] | None = None
    """The ``encoder_hidden_states`` the trace was fed, (tokens, width); None if the model takes none or the
    caller passes none (``verify`` feeds the real model the same)."""
    warnings: tuple[str, ...] = ()
    """Things worth saying that are no error: config keys ignored as upstream ignores them."""
    space: str = "pixel"
    """What the input is, as the family (or preset) declares it: ``pixel``, ``latent``, ``audio`` or ``volume``;
    ``observed`` for a live module no record declares."""
    factor: int = 1
    """Image pixels per input position along H and W (8 for Stable Diffusion's VAE latent), 1 otherwise."""
    macs: int = 0
    """Multiply-accumulates of one forward pass at batch 1 (FlopCounterMode's FLOPs / 2): the sum of
    ``quantities.layer_macs`` over ``layers``, parameter-free matmul rows included, up to a failure."""
    adds: tuple[Concat, ...] = ()
    """The additions that merge a skip into the decoder state (smp's Linknet, residual U-Nets), shaped like
    ``concats`` (``channels``: of each operand and of the sum); an addition that reads no skip (a resnet's
    residual) is not listed."""
    lifo: bool = True
    """The skips are used last-in first-out, as a stack: each read by one merge, the last made first. False for
    dense designs (UNet++), where a skip is read by several merges (``Skip.consumers``)."""

    @property
    def params(self) -> int:
        """Total parameters: every tensor of the state_dict but its buffers, each tensor once (``aliases``)."""
        return sum(numel(shape) for key, shape in self.manifest if key not in self.buffers and key not in self.aliases)

    @property
    def pixels(self) -> Size | None:
        """The image a latent input stands for (H x W; a video's frames left out); None for other inputs."""
        if self.space != "latent":
            return None
        return tuple(d * self.factor for d in self.in_size[-2:])

    def to_dict(self) -> dict[str, Any]:
        """The JSON trace of ``../shared/spec/interface.md`` as plain data."""
        from ..render.json_trace import trace_dict  # the writer lives with the renderers

        return trace_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)

    def weights(self) -> dict[str, Any]:
        """The weights manifest: exact ``state_dict`` keys and shapes, in order."""
        from ..render.json_trace import weights_dict

        return weights_dict(self)

    def graph(self, detail: str = "units") -> graphviz.Digraph:
        """A ``graphviz.Digraph`` of the U; displays as SVG in a notebook."""
        from ..render.graph.draw import fit_width, to_graphviz

        return fit_width(to_graphviz(self, detail=detail))  # a notebook shows it scaled to its width

    def _repr_html_(self) -> str:
        from ..render.formats import to_html

        return to_html(self)

    def __repr__(self) -> str:
        # the dataclass repr spells out every record: hundreds of KB for SD in a notebook
        name = self.name or self.preset or self.model
        fails = f", fails at {self.error.at}" if self.error is not None else ""
        return (f"<Trace {name}: {self.family} {self.model}, {self.in_channels}x{fmt_size(self.in_size)},"
                f" {len(self.layers)} layers, {len(self.skips)} skips, {self.params:,} params{fails}>")


@dataclass(frozen=True, kw_only=True)
class Weights:
    """The ``state_dict`` manifest of a model, from its config alone (no input size is involved)."""

    tensors: Mapping[str, Shape]
    """Key -> shape, in the real model's ``state_dict()`` order (read-only)."""
    family: str
    """The registry's family name."""
    model: str
    """The upstream class name."""
    preset: str | None = None
    """The preset, if any."""
    name: str = ""
    """What to call it in titles."""
    buffers: frozenset[str] = frozenset()
    """Keys of ``tensors`` that are persistent buffers, not parameters."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Keys of ``tensors`` that name a tensor already listed under another key (see ``Trace.aliases``)."""

    @property
    def params(self) -> int:
        """Parameters: the sum of every tensor's size but the buffers', each tensor once (``aliases``)."""
        return sum(numel(s) for k, s in self.tensors.items() if k not in self.buffers and k not in self.aliases)

    @property
    def manifest(self) -> tuple[tuple[str, Shape], ...]:
        """(key, shape) pairs in order, as ``Trace.manifest``."""
        return tuple(self.tensors.items())

    def to_dict(self) -> dict[str, Any]:
        """The weights JSON of the interface (``unetviz.weights/1``)."""
        return {"schema": WEIGHTS_SCHEMA, "count": len(self.tensors), "params": self.params,
                "tensors": {k: list(v) for k, v in self.tensors.items()}}

    def to_json(self, indent: int | None = 1) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent)
