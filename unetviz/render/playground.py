"""What the docs site's playground shows of a trace, and the config keys its controls edit.

The playground (``docs/site/playground``) runs unetviz in the browser (Pyodide): it traces the config being
edited and draws what ``view`` returns: the figures, the skip stack, every concat with its sum, the failure,
and the diagram as DOT text (Graphviz compiled to WebAssembly lays it out). ``SHAPES`` declares, per model,
the keys that shape the U (the page's controls) and the lists that have one entry per level (so the page can
add or remove a level); ``with_levels`` does that edit. Torch-free, like every renderer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Concat, Trace, fmt_size
from .explain import input_text
from .rows import concat_terms


@dataclass(frozen=True, kw_only=True)
class Knob:
    """One control of the playground: a config key and what it shapes."""

    key: str
    """The key in the config; a dotted path reaches into a nested dict (``arch_kwargs.features_per_stage``)."""
    label: str
    """What the key shapes, in the page's words (``widths``, ``layers per block``, ``heads``)."""


@dataclass(frozen=True, kw_only=True)
class Level:
    """A config list with one entry per level of the U (or one fewer: strides between levels)."""

    key: str
    """The key (a dotted path into nested dicts, as ``Knob.key``)."""
    deep_first: bool = False
    """The list runs from the deepest level up (diffusers' ``up_block_types``): a level is added or removed at
    its start, not its end."""


@dataclass(frozen=True, kw_only=True)
class Shape:
    """The keys that shape one model's U."""

    knobs: tuple[Knob, ...]
    """The page's controls, in the order shown."""
    levels: tuple[Level, ...]
    """The per-level lists; the first one's length is the number of levels (unless ``count`` is set)."""
    count: str = ""
    """The key holding the number of levels itself, where the model has one (``depth``, ``n_stages``)."""


def _knobs(*pairs: tuple[str, str]) -> tuple[Knob, ...]:
    return tuple(Knob(key=k, label=label) for k, label in pairs)


_IO = (("in_channels", "in channels"), ("out_channels", "out channels"))
_DIFFUSERS_LEVELS = (Level(key="block_out_channels"), Level(key="down_block_types"),
                     Level(key="up_block_types", deep_first=True), Level(key="layers_per_block"),
                     Level(key="attention_head_dim"), Level(key="num_attention_heads"),
                     Level(key="transformer_layers_per_block"))
_CONDITIONED = _knobs(("block_out_channels", "widths"), ("layers_per_block", "layers per block"),
                      ("down_block_types", "down blocks (attention levels)"),
                      ("up_block_types", "up blocks (attention levels)"),
                      ("attention_head_dim", "heads (attention_head_dim)"), ("num_attention_heads", "heads"),
                      ("transformer_layers_per_block", "transformer depth"),
                      ("cross_attention_dim", "context width"), *_IO)
_GUIDED = _knobs(("model_channels", "base width"), ("channel_mult", "width multipliers"),
                 ("num_res_blocks", "res blocks per level"), ("attention_resolutions", "attention at downsample rates"),
                 ("num_heads", "heads"), ("num_head_channels", "channels per head"), *_IO)
_GUIDED_LEVELS = (Level(key="channel_mult"), Level(key="num_res_blocks"), Level(key="transformer_depth"))
_NNUNET = tuple(f"arch_kwargs.{k}" for k in ("features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage",
                                              "n_blocks_per_stage", "n_conv_per_stage_decoder"))
_NNUNET_IO = (("arch_kwargs.strides", "strides"), ("arch_kwargs.kernel_sizes", "kernel sizes"),
              ("input_channels", "in channels"), ("num_classes", "classes"))

SHAPES: dict[tuple[str, str], Shape] = {
    ("diffusers", "UNet2DConditionModel"): Shape(knobs=_CONDITIONED, levels=_DIFFUSERS_LEVELS),
    ("diffusers", "UNet3DConditionModel"): Shape(knobs=_CONDITIONED, levels=_DIFFUSERS_LEVELS),
    ("diffusers", "UNetSpatioTemporalConditionModel"): Shape(
        knobs=(*_CONDITIONED, Knob(key="num_frames", label="frames")), levels=_DIFFUSERS_LEVELS),
    ("diffusers", "UNetMotionModel"): Shape(
        knobs=(*_CONDITIONED, Knob(key="motion_num_attention_heads", label="motion heads")), levels=_DIFFUSERS_LEVELS),
    ("diffusers", "ControlNetModel"): Shape(
        knobs=(*(k for k in _CONDITIONED if k.key not in ("up_block_types", "out_channels")),
               Knob(key="conditioning_embedding_out_channels", label="hint encoder widths")),
        levels=tuple(x for x in _DIFFUSERS_LEVELS if x.key != "up_block_types")),
    ("diffusers", "UNet2DModel"): Shape(
        knobs=_knobs(("block_out_channels", "widths"), ("layers_per_block", "layers per block"),
                     ("down_block_types", "down blocks (attention levels)"),
                     ("up_block_types", "up blocks (attention levels)"), ("attention_head_dim", "channels per head"),
                     *_IO), levels=_DIFFUSERS_LEVELS),
    ("diffusers", "UNet1DModel"): Shape(
        knobs=_knobs(("block_out_channels", "widths"), ("down_block_types", "down blocks (attention levels)"),
                     ("up_block_types", "up blocks (attention levels)"), ("extra_in_channels", "extra in channels"),
                     *_IO), levels=_DIFFUSERS_LEVELS),
    ("guided", "UNetModel"): Shape(knobs=_GUIDED, levels=_GUIDED_LEVELS),
    ("ldm", "UNetModel"): Shape(knobs=(*_GUIDED, *_knobs(("transformer_depth", "transformer depth"),
                                                          ("context_dim", "context width"))), levels=_GUIDED_LEVELS),
    ("lucidrains", "Unet"): Shape(
        knobs=_knobs(("dim", "base width"), ("dim_mults", "width multipliers"),
                     ("full_attn", "full attention per level"), ("attn_heads", "heads"),
                     ("attn_dim_head", "channels per head"), ("channels", "image channels")),
        levels=(Level(key="dim_mults"), Level(key="full_attn"), Level(key="attn_heads"),
                Level(key="attn_dim_head"))),
    ("ronneberger", "UNet2015"): Shape(
        knobs=_knobs(("depth", "levels"), ("base_channels", "base width"), ("in_channels", "in channels"),
                     ("num_classes", "classes")), levels=(), count="depth"),
    ("nnunet", "PlainConvUNet"): Shape(
        knobs=_knobs(("arch_kwargs.features_per_stage", "widths"), ("arch_kwargs.n_conv_per_stage", "convs per stage"),
                     ("arch_kwargs.n_conv_per_stage_decoder", "convs per decoder stage"), *_NNUNET_IO),
        levels=tuple(Level(key=k) for k in _NNUNET), count="arch_kwargs.n_stages"),
    ("nnunet", "ResidualEncoderUNet"): Shape(
        knobs=_knobs(("arch_kwargs.features_per_stage", "widths"),
                     ("arch_kwargs.n_blocks_per_stage", "residual blocks per stage"),
                     ("arch_kwargs.n_conv_per_stage_decoder", "convs per decoder stage"), *_NNUNET_IO),
        levels=tuple(Level(key=k) for k in _NNUNET), count="arch_kwargs.n_stages"),
    ("monai", "UNet"): Shape(
        knobs=_knobs(("channels", "widths"), ("strides", "strides"), ("num_res_units", "residual units"), *_IO),
        levels=(Level(key="channels"), Level(key="strides"))),
}
"""The keys that shape each model's U (family, model): the controls the playground offers."""


def get(config: dict[str, Any], key: str) -> Any:
    """The value at a dotted ``key`` of ``config`` (``None`` where it is not set)."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _put(config: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = config
    for part in path:
        node = node[part]
    node[last] = value


def levels(config: dict[str, Any], shape: Shape, default: Any = None) -> int | None:
    """How many levels ``config`` has, by ``shape``'s declaration (``None``: the config does not say);
    ``default``: the count the model used where the config leaves it to the default (ronneberger's ``depth``)."""
    if shape.count:
        value = get(config, shape.count)
        value = default if value is None else value
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    first = get(config, shape.levels[0].key) if shape.levels else None
    return len(first) if isinstance(first, list) else None


def with_levels(config: dict[str, Any], shape: Shape, n: int, default: Any = None) -> dict[str, Any]:
    """``config`` with ``n`` levels: every per-level list it sets loses its deepest entries, or repeats its
    deepest entry, until it has ``n`` entries (``n - 1`` for a list one shorter than the levels, like strides);
    ``default`` as for ``levels``."""
    now = levels(config, shape, default)
    if now is None:
        raise UnetvizError("levels: this config does not set its levels in a list the playground knows")
    if n < 1 or n > 12:
        raise UnetvizError(f"levels: got {n}; allowed: 1 to 12")
    out = copy.deepcopy(config)
    if shape.count:
        _put(out, shape.count, n)
    for lv in shape.levels:
        value = get(out, lv.key)
        if not isinstance(value, list) or len(value) not in (now, now - 1) or not value:
            continue  # an int for every level (layers_per_block: 2), or a list that is not per level
        want = n - (now - len(value))
        items = value[::-1] if lv.deep_first else list(value)
        items = items[:want] if want <= len(items) else items + [copy.deepcopy(items[-1])] * (want - len(items))
        _put(out, lv.key, items[::-1] if lv.deep_first else items)
    return out


def controls(trace: Trace, config: dict[str, Any]) -> dict[str, Any]:
    """The controls for ``config`` (traced as ``trace``): each declared key with its value (the config's, else
    the default the trace used), and the number of levels where the model's lists say it."""
    shape = SHAPES.get((trace.family, trace.model))
    if shape is None:
        return {"knobs": [], "levels": None}
    knobs = []
    for k in shape.knobs:
        value = get(config, k.key)
        if value is None and "." not in k.key:
            value = trace.config.get(k.key)
        if isinstance(value, (int, str, list)) and _plain(value):
            knobs.append({"key": k.key, "label": k.label, "value": value, "given": get(config, k.key) is not None})
    return {"knobs": knobs, "levels": levels(config, shape, count_default(trace, shape))}


def count_default(trace: Trace, shape: Shape) -> Any:
    """The number of levels the trace used where the model keeps it in a key of its own (else ``None``)."""
    return trace.config.get(shape.count) if shape.count and "." not in shape.count else None


def _plain(value: Any) -> bool:
    """A JSON value the page's fields can edit: an int, a string, or a list of them (lists of lists too)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return isinstance(value, (int, str)) and not isinstance(value, float)


def concat_sum(c: Concat) -> str:
    """``1920 = 1280 + 640``: a concat's channels and its operands', in the order of the ``torch.cat``."""
    return f"{c.channels} = " + " + ".join(str(op.channels) for op in c.inputs)


def _concat(trace: Trace, c: Concat) -> dict[str, Any]:
    return {"consumer": c.consumer, "channels": c.channels, "size": fmt_size(c.size), "sum": concat_sum(c),
            "terms": concat_terms(trace, c),
            "inputs": [{"from": op.source, "channels": op.channels, "size": fmt_size(op.size), "skip": op.skip}
                       for op in c.inputs]}


def view(trace: Trace, detail: str = "units") -> dict[str, Any]:
    """Everything the playground shows of ``trace``: figures, skips, concats (each with its sum), the failure
    and the diagram's DOT text at ``detail``."""
    from .graph.draw import to_graphviz

    skips = [{"index": s.index, "unit": s.unit, "from": s.source, "channels": s.channels, "size": fmt_size(s.size),
              "to": s.to} for s in trace.skips]
    error = None if trace.error is None else {"at": trace.error.at, "message": trace.error.message}
    return {"family": trace.family, "model": trace.model, "preset": trace.preset, "input": input_text(trace),
            "size": fmt_size(trace.in_size),
            "output": None if trace.out_size is None else f"{trace.out_channels}x{fmt_size(trace.out_size)}",
            "params": trace.params, "macs": trace.macs, "units": len(trace.units), "layers": len(trace.layers),
            "skips": skips, "concats": [_concat(trace, c) for c in trace.concats], "error": error,
            "warnings": list(trace.warnings), "dot": to_graphviz(trace, detail=detail).source}
