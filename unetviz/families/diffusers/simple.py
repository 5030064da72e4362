"""The SimpleCrossAttn family (DeepFloyd IF, Kandinsky 2.x, unCLIP/Karlo): ``Attention`` with
``added_kv_proj_dim`` run by ``AttnAddedKVProcessor2_0`` (attention_processor.py), and
``UNetMidBlock2DSimpleCrossAttn`` (unets/unet_2d_blocks.py).

The processor flattens the feature map to tokens, normalises the context (``norm_cross``: a LayerNorm
built for the block's channels, or a GroupNorm of 32 groups over the context's features), projects the
context with ``add_k_proj`` / ``add_v_proj`` and, unless ``only_cross_attention``, the image tokens with
``to_k`` / ``to_v``: keys and values are the context's tokens followed by the image's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.errors import UnetvizError
from ...engine.tracer import Act, Tracer
from .parts import Ctx, resnet_block_2d

CROSS_NORM_GROUPS = 32
"""``Attention(cross_attention_norm_num_groups=32)``: the blocks never pass another."""


@dataclass(frozen=True, kw_only=True)
class AddedKV:
    """How one SimpleCrossAttn block builds its attentions."""

    head_dim: int
    """``attention_head_dim``: heads = channels // head_dim."""
    cross_dim: int | None
    """``added_kv_proj_dim`` (the model's ``cross_attention_dim`` for this block)."""
    only_cross: bool
    norm: str | None
    """``cross_attention_norm``: None, "layer_norm" or "group_norm"."""


def added_kv_attention(t: Tracer, name: str, x: Act, ctx: Ctx, channels: int, kv: AddedKV,
                       groups: int) -> Act:
    """``Attention(query_dim=cross_attention_dim=channels, added_kv_proj_dim=cross_dim)`` on a feature map."""
    heads = channels // kv.head_dim
    inner = heads * kv.head_dim
    tokens = 1
    for d in x.size or (1,):
        tokens *= d
    # no context passed: the processor uses the image tokens (before group_norm) and skips norm_cross
    context = ctx.context if ctx.context is not None else Act(x.channels, None, x.source, tokens)
    note = f"{heads} heads x {kv.head_dim}, added k/v from a {kv.cross_dim}-d context" + \
        (", cross only" if kv.only_cross else "") + (" (none is passed: the image's)" if ctx.context is None else "")
    with t.unit(name, "attention", "Attention", x, note) as u:
        t.declare(("group_norm", "norm_cross", "to_q", "to_k", "to_v", "add_k_proj", "add_v_proj", "to_out"))
        if kv.norm is not None and ctx.context is None:
            width = channels if kv.norm == "layer_norm" or kv.cross_dim is None else kv.cross_dim
            if kv.norm == "group_norm" and width % CROSS_NORM_GROUPS:  # nn.GroupNorm's constructor checks
                raise UnetvizError(f"cross_attention_norm: got 'group_norm'; its {CROSS_NORM_GROUPS} groups must"
                                   f" divide the {width} channels of {t.path('norm_cross')} (GroupNorm)")
            t.unrun("norm_cross", [("weight", (width,)), ("bias", (width,))])
        elif kv.norm == "layer_norm":
            context = t.layer_norm("norm_cross", context, channels)
        elif kv.norm == "group_norm":
            width = kv.cross_dim if kv.cross_dim is not None else channels
            flat = Act(context.channels, (context.tokens or 1,), context.source)
            h = t.group_norm("norm_cross", flat, CROSS_NORM_GROUPS, width, key="cross_attention_norm")
            context = Act(h.channels, None, h.source, context.tokens)
        h = t.group_norm("group_norm", Act(x.channels, (tokens,), x.source), groups, channels)
        seq = Act(channels, None, h.source, tokens)
        t.linear("to_q", seq, channels, inner)
        if heads < 1:
            t.fail(u.path, f"{u.path}: 0 heads (attention_head_dim {kv.head_dim} is larger than the {channels}"
                           " channels): head_to_batch_dim divides by zero")
        if kv.cross_dim is None:
            t.fail(u.path, f"{u.path}: no add_k_proj (cross_attention_dim is null), but the processor calls it")
        else:
            t.linear("add_k_proj", context, kv.cross_dim, inner)
            t.linear("add_v_proj", context, kv.cross_dim, inner)
        kv_tokens = context.tokens or 1
        if not kv.only_cross:
            t.linear("to_k", seq, channels, inner)
            t.linear("to_v", seq, channels, inner)
            kv_tokens += tokens
        t.attention_matmuls("", seq, max(heads, 1), kv.head_dim, kv.head_dim, tokens, kv_tokens)
        if (tokens * inner) % channels:
            t.fail(u.path, f"{u.path}: {heads} heads x {kv.head_dim} = {inner} features per token do not reshape"
                           f" to the {channels} channels")
        out = t.linear("to_out.0", Act(channels, None, "", tokens * inner // channels or 1), inner, channels)
        return u.done(Act(channels, x.size, out.source))


def simple_mid_block(t: Tracer, x: Act, ctx: Ctx, channels: int, kv: AddedKV, groups: int | None) -> Act:
    """``UNetMidBlock2DSimpleCrossAttn``: resnet, then (attention, resnet) once."""
    g = groups if groups is not None else min(channels // 4, 32)
    with t.block("mid_block", "UNetMidBlock2DSimpleCrossAttn", order=("attentions", "resnets")):
        x = resnet_block_2d(t, "resnets.0", x, ctx, channels, channels, groups=g)
        x = added_kv_attention(t, "attentions.0", x, ctx, channels, kv, g)
        return resnet_block_2d(t, "resnets.1", x, ctx, channels, channels, groups=g)
