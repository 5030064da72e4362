"""``unetviz cost``: MACs, their attention share and activation memory over several input sizes (torch-free).

Every figure comes from the symbolic trace at each size: MACs as ``torch.utils.flop_counter.FlopCounterMode``
counts them (its FLOPs / 2, attention matmuls included), the figure thop / fvcore / calflops report (the same
without the attention matmuls), torchinfo's "mult-adds" (a conv's weight and bias x output positions, any
other layer its parameters once: it misses every matmul over tokens), ``unetviz.analysis.memory``'s activation
figures, ``unetviz.analysis.training``'s weights, inference and training memory (its docstring states the
conventions), and for an nnU-Net network its planner's own feature-map estimate (``analysis.nnunet_estimate``).

Sizes: ``"512px,768px,1024px"`` or ``"64,96x64"``, comma-separated, each in the one size grammar
(``unetviz.core.inputs``): a bare size is the model's own input (a latent for a latent model), ``px`` the
image, turned into the model's input by the factor the family or preset declares. Nothing is read from a
number's magnitude. The default sizes scale the model's own H and W (a video keeps its frames, a 1-D model
scales its length). Each ``SizeCost`` says what it was read as.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import bad_value
from ..core.inputs import InputSpec, read_size
from ..core.quantities import ATTENTION_TYPES, is_free, layer_macs
from ..core.records import Layer, Size, Trace, fmt_size, numel
from ..families import lookup
from ..tracing import Source, input_spec, resolve_named, trace_config
from .memory import DTYPE_BYTES, Memory, attentions, level_of, memory_of
from .nnunet_estimate import feature_map_size
from .training import Footprint, footprint, footprint_dict

DEFAULT_FACTORS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
"""Default sizes: the model's own size times these (rounded to a multiple of 8)."""
MAX_SIZES = 32


@dataclass(frozen=True, kw_only=True)
class LevelCost:
    """One U-Net level (a resolution) at one size."""

    level: int | None
    """0 at the input's resolution, 1 after one halving, ...; None for steps with no spatial size."""
    size: Size | None
    """The resolution at this level (None for the embeddings)."""
    macs: int
    """MACs of the units at this level, batch 1."""
    attention_macs: int
    """Of which attention matmuls."""
    largest_scores: int
    """Elements of the largest attention score tensor at this level, batch 1."""


@dataclass(frozen=True, kw_only=True)
class SizeCost:
    """The cost of one forward pass at one input size."""

    request: str
    """The size as asked for (``512``, ``64lat``, ``64x96``)."""
    size: Size
    """The model's input size (the latent size for a latent model)."""
    pixels: Size | None
    """The image size in pixels for a latent model, else None."""
    error: str | None
    """Where and why the model fails at this size; then the figures below are 0 and ``levels`` empty."""
    macs: int
    """MACs at batch 1: FlopCounterMode's FLOPs / 2."""
    attention_macs: int
    """Of which the attention matmuls (q·kᵀ, attn·v, linear attention's einsums)."""
    torchinfo_macs: int
    """torchinfo's "mult-adds" at batch 1 (its convention; see the module docstring)."""
    levels: tuple[LevelCost, ...]
    """Per level, in level order (the embeddings last)."""
    memory: Memory | None
    """Activation memory at the report's batch and dtype."""
    footprint: Footprint | None = None
    """Weights, inference (weights + peak activations) and training memory at the report's batch and dtype."""
    nnunet_estimate: int | None = None
    """nnU-Net's ``compute_conv_feature_map_size`` of the network at this size (elements per sample); None but
    for an nnU-Net network."""
    peak_level: int | None = None
    """The level of the layer where the activation peak (scores materialised) is (``memory.peak_at``)."""
    peak_efficient_level: int | None = None
    """The level of the layer where the fused-attention peak is (``memory.peak_efficient_at``)."""

    @property
    def no_attention_macs(self) -> int:
        """The thop / fvcore / calflops figure: MACs without the attention matmuls."""
        return self.macs - self.attention_macs


@dataclass(frozen=True, kw_only=True)
class CostReport:
    """``unetviz cost``'s result: one ``SizeCost`` per size, in the order asked."""

    name: str
    """The preset or config name."""
    family: str
    """The registry's family."""
    model: str
    """The upstream class."""
    batch: int
    """Batch of the memory figures (MACs are at batch 1)."""
    params: int
    """The model's parameters (what the weights memory counts)."""
    dtype: str
    """dtype of the memory figures."""
    latent: bool
    """A latent model: sizes are latent sizes and ``pixels`` is set."""
    space: str
    """The declared input space: ``pixel``, ``latent``, ``audio`` or ``volume``."""
    factor: int
    """Image pixels per input position (the latent's autoencoder factor; 1 for other inputs)."""
    sizes: tuple[SizeCost, ...]
    """One per size asked."""
    own: Size | None = None
    """The model's own size (its config's, or the family's default) when the report knows it."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--format json``."""
        from .memory import memory_dict  # noqa: F401  (the per-trace JSON uses the same fields)

        return {"schema": "unetviz.cost/1", "name": self.name, "family": self.family, "model": self.model,
                "batch": self.batch, "dtype": self.dtype, "params": self.params, "latent": self.latent,
                "space": self.space, "factor": self.factor,
                "sizes": [_size_dict(s) for s in self.sizes]}


def _size_dict(s: SizeCost) -> dict[str, Any]:
    m = s.memory
    return {"request": s.request, "size": list(s.size), "pixels": None if s.pixels is None else list(s.pixels),
            "error": s.error, "macs": s.macs, "attention_macs": s.attention_macs,
            "no_attention_macs": s.no_attention_macs, "torchinfo_macs": s.torchinfo_macs,
            "levels": [{"level": lv.level, "size": None if lv.size is None else list(lv.size), "macs": lv.macs,
                        "attention_macs": lv.attention_macs, "largest_scores": lv.largest_scores}
                       for lv in s.levels],
            "memory": None if m is None else {
                "skip_stack_bytes": m.skip_bytes, "largest_attention_bytes": m.largest_bytes,
                "largest_attention": None if m.largest is None else m.largest.path,
                "peak_materialised_bytes": m.peak_materialised, "peak_memory_efficient_bytes": m.peak_efficient,
                "peak_at": m.peak_at, "peak_memory_efficient_at": m.peak_efficient_at,
                **(footprint_dict(s.footprint) if s.footprint else {})},
            "nnunet_estimate_elements": s.nnunet_estimate}


def torchinfo_macs(x: Layer) -> int:
    """torchinfo 1.8's mult-adds of one layer at batch 1: every ``weight``/``bias`` tensor's size, times the
    output positions for a class named Conv*, once for any other (so a Linear on tokens counts once)."""
    if is_free(x):
        return 0
    own = sum(numel(s) for k, s in x.tensors if k.endswith((".weight", ".bias")))
    return own * numel(x.out_size) if "Conv" in x.type else own


def parse_sizes(text: str | None, t: Trace, spec: InputSpec) -> list[tuple[str, Size, Size | None]]:
    """(request, model input size, pixels or None) per size; None: the defaults around the model's size."""
    if text is None:
        return [_default(t, spec, f) for f in DEFAULT_FACTORS]
    items = [p.strip() for p in str(text).split(",") if p.strip()]
    if not items or len(items) > MAX_SIZES:
        raise bad_value("--sizes", text, f"1 to {MAX_SIZES} sizes, comma-separated, each {spec.grammar()}")
    out = []
    for item in items:
        req = read_size(item, spec, "--sizes")
        assert req is not None
        out.append((item, req.size, spec.pixels(req.size)))
    return out


def _default(t: Trace, spec: InputSpec, factor: float) -> tuple[str, Size, Size | None]:
    """The model's own size with its H and W (a 1-D model's length) scaled; a video's frames are kept."""
    keep = 1 if spec.rank == "video" else 0
    if factor == 1.0:
        return _labelled(t.in_size, spec)
    return _labelled((*t.in_size[:keep], *(max(8, round(d * factor / 8) * 8) if d >= 16 else d
                                             for d in t.in_size[keep:])), spec)


def _labelled(size: Size, spec: InputSpec) -> tuple[str, Size, Size | None]:
    """(a label the size grammar reads back, the size, its pixels): 512px, 768x512px, 14x576x576px."""
    pixels = spec.pixels(size)
    if pixels is None:
        return fmt_size(size), size, None
    video = spec.rank == "video"
    side = str(pixels[0]) if len(set(pixels)) == 1 and not video else fmt_size(pixels)
    return f"{size[0]}x{side}px" if video else f"{side}px", size, pixels


NEIGHBOURS = tuple(d * s for d in range(4, 68, 4) for s in (-1, 1))
"""Offsets tried around a default size the model fails at (-4, 4, -8, 8, ... 64): a default row should run."""
MULTIPLES = (16, 32, 64)
"""Then each axis rounded to a multiple of these: a U-Net whose axes are halved a different number of times
(nnU-Net's anisotropic strides) runs where every axis divides by its own product of strides."""


def _runs_near(config: dict[str, Any], preset: str | None, name: str, size: Size, spec: InputSpec) -> Size:
    """``size``, or the nearest size (same offset on every scaled axis) at which the model runs."""
    keep = 1 if spec.rank == "video" else 0
    if trace_config(config, size, preset, name).error is None:
        return size
    for step in NEIGHBOURS:
        near = (*size[:keep], *(d + step for d in size[keep:]))
        if min(near) >= 1 and trace_config(config, near, preset, name).error is None:
            return near
    for m in MULTIPLES:
        near = (*size[:keep], *(max(m, round(d / m) * m) for d in size[keep:]))
        if trace_config(config, near, preset, name).error is None:
            return near
    return size  # nothing near runs: the row says why it fails


def size_cost(t: Trace, request: str, pixels: Size | None, batch: int, dtype: str) -> SizeCost:
    """The figures of one trace."""
    if t.error is not None:
        where = f"{t.error.at}: " if t.error.at else ""
        return SizeCost(request=request, size=t.in_size, pixels=pixels, error=where + t.error.message, macs=0,
                        attention_macs=0, torchinfo_macs=0, levels=(), memory=None)
    macs = t.macs  # summed once, when the trace was built
    att = sum(layer_macs(x) for x in t.layers if x.type in ATTENTION_TYPES)
    memory = memory_of(t, batch, dtype)
    return SizeCost(request=request, size=t.in_size, pixels=pixels, error=None, macs=macs, attention_macs=att,
                    torchinfo_macs=sum(torchinfo_macs(x) for x in t.layers), levels=levels(t),
                    memory=memory, footprint=footprint(t, memory), nnunet_estimate=feature_map_size(t),
                    peak_level=layer_level(t, memory.peak_at),
                    peak_efficient_level=layer_level(t, memory.peak_efficient_at))


def layer_level(t: Trace, path: str) -> int | None:
    """The level (``memory.level_of``) of the unit holding the layer at ``path``; None if no unit holds it."""
    index = next((i for i, x in enumerate(t.layers) if x.path == path), None)
    unit = next((u for u in t.units if index is not None and u.first <= index < u.last), None)
    return None if unit is None else level_of(t, unit)


def levels(t: Trace) -> tuple[LevelCost, ...]:
    """MACs and the largest score tensor per U-Net level (units grouped by ``memory.level_of``)."""
    scores = {a.path: a.scores for a in attentions(t)}
    acc: dict[int | None, list[int]] = {}
    sizes: dict[int | None, Size | None] = {}
    for u in t.units:
        lv = level_of(t, u)
        row = acc.setdefault(lv, [0, 0, 0])
        sizes.setdefault(lv, (u.out_size or u.in_size) if lv is not None else None)
        for x in t.layers[u.first:u.last]:
            m = layer_macs(x)
            row[0] += m
            if x.type in ATTENTION_TYPES:
                row[1] += m
                row[2] = max(row[2], scores.get(x.path, 0))
    order = sorted(acc, key=lambda k: (k is None, k or 0))
    return tuple(LevelCost(level=k, size=sizes[k], macs=acc[k][0], attention_macs=acc[k][1],
                           largest_scores=acc[k][2]) for k in order)


def cost(source: Source, sizes: str | None = None, batch: int | None = None, dtype: str = "fp16") -> CostReport:
    """The cost of ``source`` (preset, config path or dict) at each size of ``sizes`` (see the module); ``batch``
    for memory, default: the config's own (an nnU-Net plans configuration's ``batch_size``), else 1."""
    config, preset, name = resolve_named(source)
    if batch is None:
        own = config.get("batch_size")
        batch = own if isinstance(own, int) and not isinstance(own, bool) and own > 0 else 1
    _check(batch, dtype)
    family, kwargs = lookup(config)
    spec = input_spec(family, preset, kwargs)
    base = trace_config(config, None, preset, name)
    runs = []
    for request, size, _ in parse_sizes(sizes, base, spec):
        if sizes is None and size != base.in_size:  # a default size: move to the nearest one the model runs at
            request, size, _ = _labelled(_runs_near(config, preset, name, size, spec), spec)
        same = size == base.in_size  # the model's own size: already traced
        runs.append((request, base if same else trace_config(config, size, preset, name)))
    return cost_report(runs, batch, dtype, own=base.in_size)


def cost_report(runs: Sequence[tuple[str, Trace]], batch: int = 1, dtype: str = "fp16",
                own: Size | None = None) -> CostReport:
    """The report of traces of one model at several sizes, each with the size as asked (symbolic or observed);
    ``own``: the model's own size, the one the report's sentences quote when it is among them."""
    _check(batch, dtype)
    if not runs:
        raise bad_value("--sizes", "", "at least one size")
    base = runs[0][1]
    return CostReport(name=base.name or base.model, family=base.family, model=base.model, batch=batch, dtype=dtype,
                      params=base.params,
                      latent=base.space == "latent", space=base.space, factor=base.factor,
                      sizes=tuple(size_cost(t, request, t.pixels, batch, dtype) for request, t in runs), own=own)


def _check(batch: int, dtype: str) -> None:
    if dtype not in DTYPE_BYTES:
        raise bad_value("--dtype", dtype, ", ".join(DTYPE_BYTES))
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise bad_value("--batch", batch, "a positive integer")
