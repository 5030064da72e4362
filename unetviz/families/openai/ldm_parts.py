"""The original Stable Diffusion building blocks (``ldm.modules.attention``), one function per class.

``ResBlock``, ``AttentionBlock``, ``Downsample`` and ``Upsample`` of ``openaimodel.py`` are
guided-diffusion's, unchanged, so their records and walkers come from ``guided_parts``. What the
latent-diffusion code adds is the ``SpatialTransformer`` (``ldm_transformer``).

``plan`` and ``attention_for`` are the part of ``UNetModel.__init__`` that decides each attention
module: the head arithmetic (``num_heads`` / ``num_head_channels`` / ``legacy``) and the checks
made on it, kept beside the records they produce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError, bad_value
from ...engine.tracer import Act, Tracer
from .guided_parts import Attn, Conv, Emb, Res, Sample, attention_block, downsample, res_block, upsample
from .ldm_transformer import Transformer, spatial_transformer

Module = Res | Attn | Sample | Conv | Transformer


@dataclass(frozen=True, kw_only=True)
class Block:
    """One ``TimestepEmbedSequential``: its children and the U-Net level it sits on."""

    layers: tuple[Module, ...]
    level: int


@dataclass(frozen=True, kw_only=True)
class Label:
    """``label_emb`` by ``num_classes``: an int (Embedding), "continuous" (Linear(1, .)), or sgm's
    "sequential" (SDXL's ADM vector, ``adm_in_channels`` wide) and "timestep" MLPs."""

    kind: str
    width: int
    """Classes, or the MLP's input width."""


@dataclass(frozen=True, kw_only=True)
class Ctx:
    """What the blocks read besides their input: the time embedding and the text context."""

    emb: Emb
    context: Act | None


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The attention settings ``__init__`` reads at every attention level."""

    num_heads: int
    num_head_channels: int
    num_heads_upsample: int
    legacy: bool
    spatial: bool
    depths: tuple[int, ...]
    """``transformer_depth`` per level (an int is every level's, as sgm expands it)."""
    depth_middle: int
    context_dim: int | None
    disable_self_attentions: tuple[bool, ...] | None
    disable_middle_self_attn: bool
    num_attention_blocks: tuple[int, ...] | None
    use_linear: bool
    sdpa: bool = False
    """The attention runs as sgm's ``CrossAttention``: one ``F.scaled_dot_product_attention`` (a config using
    sgm's keywords, which only sgm builds), not ldm's two einsums (which count nothing for a size-1
    contraction: a single token)."""


def seq(a: Args, key: str, what: str) -> list[Any] | None:
    v = a.raw(key)
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
        raise bad_value(key, v, what)
    return list(v)


def _heads(a: Args, key: str) -> int:
    v = a.int(key, -1)
    if v == -1 or v >= 1 or (v == 0 and key != "num_head_channels"):
        return v
    raise bad_value(key, v, "-1 (unset) or an integer >= 1")  # pragma: no cover - a.int bounds it


def _context_dim(a: Args, spatial: bool) -> int | None:
    raw = a.raw("context_dim")
    if spatial and raw is None:  # assert context_dim is not None, 'Fool!! You forgot to include ...'
        raise UnetvizError("context_dim: null, but use_spatial_transformer is true; give the text context's width"
                           " (768 for SD 1.x, 1024 for SD 2.x, 2048 for SDXL)")
    if raw is not None and not spatial:
        raise UnetvizError(f"use_spatial_transformer: false, but context_dim is {raw!r}; the cross-attention"
                           " context needs SpatialTransformers (set use_spatial_transformer: true)")
    if raw is None:
        return None
    if isinstance(raw, (list, tuple)):
        dims = [a.int("context_dim", 1, v) for v in raw]
        if not dims or len(set(dims)) != 1:
            raise UnetvizError(f"context_dim: got {list(raw)!r}; a list must repeat one width (unetviz traces one"
                               " text context for every transformer block)")
        return dims[0]
    return a.int("context_dim", 1)


def _depths(a: Args, levels: int) -> tuple[tuple[int, ...], int]:
    raw = a.raw("transformer_depth")
    if isinstance(raw, (list, tuple)):  # sgm: one depth per level
        depths = tuple(a.int("transformer_depth", 0, v) for v in raw)
        if not depths:
            raise bad_value("transformer_depth", raw, "an integer, or a list with one depth per level")
    else:
        depths = (a.int("transformer_depth", 0),) * levels
    middle = a.raw("transformer_depth_middle")
    return depths, depths[-1] if middle is None else a.int("transformer_depth_middle", 0)


SGM_DEFAULTS: dict[str, Any] = {"adm_in_channels": None, "use_fairscale_checkpoint": False, "offload_to_cpu": False}
"""sgm's keywords that ldm's UNetModel lacks, at sgm's defaults (``spatial_transformer_attn_type`` only picks the
attention kernel, and with "softmax-xformers" but no xformers sgm runs "softmax"; it decides nothing here)."""


def sgm_keyword(kwargs: Mapping[str, Any]) -> str | None:
    """The first of sgm's keywords ``kwargs`` sets, which CompVis/Stability's ``ldm`` does not take (so only sgm's
    code builds the config); None for a config ldm builds. sgm expands an int ``transformer_depth`` per level and
    defaults ``transformer_depth_middle`` to the last level's, so those are sgm's only when they differ."""
    depth = kwargs.get("transformer_depth", 1)
    if isinstance(depth, (list, tuple)):
        return "transformer_depth"
    if kwargs.get("num_classes") in ("sequential", "timestep"):
        return "num_classes"
    if kwargs.get("transformer_depth_middle") not in (None, depth):
        return "transformer_depth_middle"
    return next((k for k, v in SGM_DEFAULTS.items() if kwargs.get(k, v) != v), None)


def plan(a: Args, levels: int, nrb: list[int]) -> Plan:
    """The checks ``__init__`` makes before the first module, in its order."""
    spatial = a.bool("use_spatial_transformer")
    context_dim = _context_dim(a, spatial)
    num_heads, nhc = _heads(a, "num_heads"), _heads(a, "num_head_channels")
    if num_heads == -1 and nhc == -1:  # 'Either num_heads or num_head_channels has to be set'
        raise UnetvizError("num_heads: -1 and num_head_channels: -1; set one of them (SD 1.x: num_heads 8,"
                           " SD 2.x/SDXL: num_head_channels 64)")
    upsample = _heads(a, "num_heads_upsample")
    depths, depth_middle = _depths(a, levels)
    dsa = seq(a, "disable_self_attentions", "null or a list of booleans, one per level")
    if dsa is not None:
        if len(dsa) != levels or not all(isinstance(v, bool) for v in dsa):
            raise UnetvizError(f"disable_self_attentions: got {dsa!r}; allowed: one boolean per level ({levels},"
                               " as channel_mult)")
    nab = seq(a, "num_attention_blocks", "null or a list of integers, one per level")
    if nab is not None:
        nab = [a.int("num_attention_blocks", 0, v) for v in nab]
        if len(nab) != levels or any(n > r for n, r in zip(nab, nrb, strict=False)):
            raise UnetvizError(f"num_attention_blocks: got {nab!r}; allowed: one count per level ({levels}), each at"
                               f" most that level's num_res_blocks {nrb}")
    return Plan(num_heads=num_heads, num_head_channels=nhc,
                num_heads_upsample=num_heads if upsample == -1 else upsample, legacy=a.bool("legacy"),
                spatial=spatial, depths=depths, depth_middle=depth_middle, context_dim=context_dim,
                disable_self_attentions=None if dsa is None else tuple(dsa),
                disable_middle_self_attn=a.bool("disable_middle_self_attn"),
                num_attention_blocks=None if nab is None else tuple(nab),
                use_linear=a.bool("use_linear_in_transformer"), sdpa=sgm_keyword(a.given) is not None)


def head_split(p: Plan, ch: int, where: str) -> tuple[int, int]:
    """(heads, head width) by ``__init__``'s arithmetic at an attention rate. It runs at every level in
    ``attention_resolutions``, before ``num_attention_blocks`` decides whether the level gets an attention, so
    its ZeroDivisionErrors (``ch // num_heads`` with 0 heads) come even where no attention is built."""
    if p.num_head_channels == -1:
        if p.num_heads == 0:  # ch // num_heads
            raise UnetvizError("num_heads: got 0 with num_head_channels -1; allowed: an integer >= 1")
        heads, dim_head = p.num_heads, ch // p.num_heads
    else:
        heads, dim_head = ch // p.num_head_channels, p.num_head_channels
    if p.legacy:
        if p.spatial and heads == 0:  # legacy's ch // num_heads
            raise UnetvizError(f"num_head_channels: got {p.num_head_channels}, wider than the {ch} channels at"
                               f" {where} (an attention resolution: 0 heads); allowed: 1 to {ch}")
        dim_head = ch // heads if p.spatial else p.num_head_channels
    return heads, dim_head


def attention_for(p: Plan, ch: int, level: int | None, upsample: bool = False) -> Attn | Transformer:
    """The attention module at one level (``level`` None: the middle block), with ``__init__``'s head
    arithmetic: ``num_heads`` becomes ``ch // num_head_channels`` when that is set, and ``legacy``
    recomputes the head width."""
    where = "the middle block" if level is None else f"level {level}"
    heads, dim_head = head_split(p, ch, where)
    if not p.spatial:
        return _attention_block(p, ch, where, p.num_heads_upsample if upsample else heads, dim_head)
    if heads < 1 or dim_head < 1:
        raise UnetvizError(f"num_heads / num_head_channels: {heads} heads of width {dim_head} at {where} ({ch}"
                           " channels); unetviz traces heads of width >= 1 only")
    if p.context_dim is None:  # pragma: no cover - _context_dim requires it with use_spatial_transformer
        raise UnetvizError("context_dim: required by SpatialTransformer")
    if level is None:
        depth, disabled = p.depth_middle, p.disable_middle_self_attn
    else:
        if level >= len(p.depths):  # transformer_depth[level]
            raise UnetvizError(f"transformer_depth: got {list(p.depths)}, no depth for level {level}")
        depth = p.depths[level]
        disabled = p.disable_self_attentions[level] if p.disable_self_attentions is not None else False
    return Transformer(channels=ch, heads=heads, dim_head=dim_head, depth=depth, context_dim=p.context_dim,
                       disable_self_attn=disabled, use_linear=p.use_linear, sdpa=p.sdpa)


def _attention_block(p: Plan, ch: int, where: str, heads: int, dim_head: int) -> Attn:
    """``AttentionBlock(ch, num_heads=heads, num_head_channels=dim_head)``."""
    if dim_head != -1:
        if dim_head < 1 or ch % dim_head:  # assert channels % num_head_channels == 0
            raise UnetvizError(f"num_heads / num_head_channels: heads of width {dim_head} do not divide the {ch}"
                               f" channels of the AttentionBlock at {where}")
        heads = ch // dim_head
    if heads < 1:
        raise UnetvizError(f"num_heads_upsample: got {heads} for the AttentionBlock at {where}; allowed: >= 1")
    return Attn(ch, heads)


def describe(block: Block) -> str:
    names = []
    for m in block.layers:
        if isinstance(m, Res):
            extra = " (up)" if m.up else " (down)" if m.down else ""
            names.append(f"ResBlock {m.channels}->{m.out_channels}{extra}")
        elif isinstance(m, Attn):
            names.append("AttentionBlock")
        elif isinstance(m, Transformer):
            names.append(f"SpatialTransformer x{m.depth}")
        elif isinstance(m, Sample):
            names.append("Upsample" if m.up else "Downsample")
        else:
            names.append(f"Conv2d {m.in_channels}->{m.out_channels}")
    return " + ".join(names)


def run_block(t: Tracer, block: Block, h: Act, ctx: Ctx) -> Act:
    """``TimestepEmbedSequential.forward``: ResBlocks get ``emb``, SpatialTransformers ``context``."""
    for j, m in enumerate(block.layers):
        name = str(j)
        if isinstance(m, Res):
            h = res_block(t, name, h, m, ctx.emb)
        elif isinstance(m, Attn):
            h = attention_block(t, name, h, m, ctx.emb.use_new_attention_order)
        elif isinstance(m, Transformer):
            h = spatial_transformer(t, name, h, m, ctx.context)
        elif isinstance(m, Sample):
            h = upsample(t, name, h, m) if m.up else downsample(t, name, h, m)
        else:
            with t.unit(name, "conv", "Conv2d", h) as u:
                h = u.done(t.conv("", h, m.in_channels, m.out_channels, 3, 1, 1), new=False)
    return h


def label_emb(t: Tracer, label: Label | None, ted: int) -> None:
    """``emb + self.label_emb(y)``: the class / ADM vector embedding."""
    if label is None:
        return
    if label.kind == "embedding":
        t.embedding("label_emb", label.width, ted)
    elif label.kind == "continuous":
        t.linear("label_emb", Act(1, None, "y"), 1, ted)
    else:  # nn.Sequential(nn.Sequential(linear, SiLU, linear)), or (Timestep, nn.Sequential(...))
        first = "0" if label.kind == "sequential" else "1"
        y = Act(label.width, None, "y")
        with t.unit("label_emb", "mlp", "Sequential", y, f"{label.kind} {label.width} -> {ted} -> {ted}") as u:
            h = t.linear(f"{first}.0", y, label.width, ted)
            u.done(t.linear(f"{first}.2", h, ted, ted), new=False)
