"""diffusers 0.42 building blocks, one function per upstream class, in the order its forward runs.

``ResnetBlock2D`` (models/resnet.py), ``Attention`` + ``AttnProcessor2_0`` (attention_processor.py),
``Transformer2DModel`` continuous input (transformers/transformer_2d.py), ``BasicTransformerBlock``
and ``FeedForward``/``GEGLU`` (attention.py), ``Downsample2D``/``Upsample2D``, ``TimestepEmbedding``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ...core.kinds import Kind
from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer
from .fir import fir_filter


@dataclass(frozen=True)
class Ctx:
    """What every block needs besides its own channels (the ``temb`` and the text context)."""

    temb: Act
    """The ``emb`` the model hands its blocks (its width is what the caller's inputs made of it)."""
    groups: int
    eps_note: str = ""
    time_embedding_norm: str = "default"
    context: Act | None = None
    """The ``encoder_hidden_states`` the blocks get (after encoder_hid_proj)."""
    temb_channels: int | None = None
    """What every ``time_emb_proj`` was built for (``blocks_time_embed_dim``); default: ``temb``'s width."""
    objs: Act | None = None
    """GLIGEN's grounding tokens (``position_net``'s output), which every transformer block's fuser reads."""


@dataclass(frozen=True, kw_only=True)
class BlockArgs:
    """What every ``get_down_block`` / ``get_up_block`` hands a block, in any diffusers U-Net class (the video
    and motion families extend it with their own options)."""

    type: str
    """The block class (``CrossAttnDownBlock3D``, ``UpBlockMotion``, ...)."""
    num_layers: int
    """Resnets in the block (``layers_per_block``, one more in an up block)."""
    in_channels: int
    """The block's ``in_channels`` (an up block's last skip width)."""
    out_channels: int
    """The block's ``out_channels``."""
    add_sampler: bool
    """Whether it ends with a Downsample2D / Upsample2D."""
    prev_output_channel: int = 0
    """An up block's input width (the block below's output)."""


def resnet_block_2d(t: Tracer, name: str, x: Act, ctx: Ctx, in_channels: int, out_channels: int,
                    groups: int | None = None, groups_out: int | None = None, up: bool = False,
                    down: bool = False, kind: Kind = "resnet", shortcut: bool | None = None, fir: bool = False,
                    after: Callable[[], None] | None = None) -> Act:
    """``ResnetBlock2D``: norm1 -> conv1 (+ time_emb_proj) -> norm2 -> conv2, + shortcut. ``shortcut``:
    ``use_in_shortcut`` (default: the channels differ); ``fir``: ``kernel="fir"`` resampling; ``after``:
    steps the caller runs inside this unit's span (a parameter-free row the block runs next)."""
    groups = ctx.groups if groups is None else groups
    groups_out = groups if groups_out is None else groups_out
    shortcut = in_channels != out_channels if shortcut is None else shortcut
    note = f"{in_channels}->{out_channels}" + (" +1x1 shortcut" if shortcut else "")
    with t.unit(name, kind, "ResnetBlock2D", x, note) as u:
        h = t.group_norm("norm1", x, groups, in_channels)
        shortcut_in = x
        if up or down:
            # the resnet resamples both paths without a conv (Upsample2D / Downsample2D use_conv=False)
            size = x.size or ()
            new = tuple(d * 2 for d in size) if up else tuple(d // 2 for d in size)
            if min(new) < 1:
                t.fail(u.path, f"{u.path} cannot downsample a {fmt_size(x.size)} input")
            h = Act(h.channels, new, h.source)
            shortcut_in = Act(x.channels, new, x.source)
            if fir:  # upsample_2d / downsample_2d of the input and of the hidden states
                fir_filter(t, "", x, up)
                fir_filter(t, "", Act(in_channels, x.size, h.source), up)
        h = t.conv("conv1", h, in_channels, out_channels, 3, 1, 1)
        proj = out_channels * (2 if ctx.time_embedding_norm == "scale_shift" else 1)
        temb_channels = ctx.temb.channels if ctx.temb_channels is None else ctx.temb_channels
        t.linear("time_emb_proj", ctx.temb, temb_channels, proj,
                 note="scale+shift" if proj != out_channels else "")
        h = t.group_norm("norm2", h, groups_out, out_channels)
        h = t.conv("conv2", h, out_channels, out_channels, 3, 1, 1)
        if shortcut:
            t.conv("conv_shortcut", shortcut_in, in_channels, out_channels, 1, 1, 0)
        if after is not None:
            after()
        return u.done(h)


def attention(t: Tracer, name: str, x: Act, query_dim: int, heads: int, dim_head: int,
              norm_groups: int | None, bias: bool = True, context: Act | None = None,
              kind: Kind = "attention", spatial: bool = True, context_dim: int | None = None,
              norm_cross: bool = False) -> Act:
    """``Attention`` run by ``AttnProcessor2_0``.

    On a 4-d input (``spatial``) it flattens to tokens first, so its GroupNorm sees (B, C, H*W)
    and the residual is added inside: the output is the attention's own tensor. ``context_dim``:
    the ``cross_attention_dim`` to_k/to_v were built for (the context passed may differ: then to_k
    fails, as the real one does). ``norm_cross``: built with ``cross_attention_norm="layer_norm"``
    (registered first), which normalises a passed context between to_q and to_k and never runs
    without one. With 0 heads the processor divides by zero after to_q/to_k/to_v.
    """
    inner = heads * dim_head
    cross = context is not None
    kv_dim = context_dim if context_dim is not None else (context.channels if context else query_dim)
    note = f"{heads} heads x {dim_head}" + (f", k/v from a {kv_dim}-d context" if cross else "")
    with t.unit(name, kind, "Attention", x, note) as u:
        tokens = x.tokens
        h = x
        if spatial and x.size is not None:
            tokens = 1
            for d in x.size:
                tokens *= d
            h = Act(x.channels, (tokens,), x.source)
        if norm_groups is not None:
            h = t.group_norm("group_norm", h, norm_groups, query_dim)
        seq = Act(h.channels, None, h.source, tokens)
        kv_in = context if cross and context is not None else seq
        if norm_cross:
            t.declare(("norm_cross", "to_q", "to_k", "to_v", "to_out"))
        t.linear("to_q", seq, query_dim, inner, bias)
        if norm_cross and cross:
            kv_in = t.layer_norm("norm_cross", kv_in, kv_dim)
        elif norm_cross:
            t.unrun("norm_cross", [("weight", (kv_dim,)), ("bias", (kv_dim,))])
        t.linear("to_k", kv_in, kv_dim, inner, bias)
        t.linear("to_v", kv_in, kv_dim, inner, bias)
        if heads < 1:
            t.fail(u.path, f"{u.path}: {heads} heads (attention_head_dim {dim_head} is larger than the"
                           f" {query_dim} channels): head_dim = inner_dim // heads divides by zero")
        t.attention_matmuls("", seq, heads, dim_head, dim_head, tokens or 1, kv_in.tokens or 1)
        out = t.linear("to_out.0", Act(inner, None, "", tokens), inner, query_dim, True)
        y = Act(query_dim, x.size, out.source, x.tokens) if spatial else out
        return u.done(y, new=spatial)


def feed_forward(t: Tracer, name: str, h: Act, dim: int) -> Act:
    """``FeedForward(dim, activation_fn="geglu")``: net.0.proj to 2 x 4 dim (GEGLU halves it), net.2 back."""
    with t.unit(name, "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
        g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
        y = t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim)
        return u.done(y, new=False)


def gated_self_attention_dense(t: Tracer, name: str, x: Act, objs: Act, dim: int, context_dim: int | None,
                               heads: int, head_dim: int) -> Act:
    """GLIGEN's ``fuser``: the grounding tokens, projected to ``dim``, join the image tokens for one self-attention
    (whose image part is kept), then a GEGLU feed-forward; each added through a tanh gate (alpha_attn/dense)."""
    tokens = x.tokens or 1
    with t.scope(name, order=("linear", "attn", "ff", "norm1", "norm2")) as full:
        # it owns alpha_attn and alpha_dense itself: a row of its own, on the image tokens
        t.owner("", "GatedSelfAttentionDense", Act(dim, None, x.source, tokens), Act(dim, None, full),
                [("alpha_attn", ()), ("alpha_dense", ())], "tanh-gated")
        o = t.linear("linear", objs, context_dim if context_dim is not None else dim, dim)
        joint = Act(dim, None, x.source, tokens + (o.tokens or 1))  # torch.cat([x, objs], dim=1)
        h = t.layer_norm("norm1", joint, dim)
        attention(t, "attn", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm2", x, dim)
        feed_forward(t, "ff", h, dim)
    return Act(dim, None, full, tokens)


def basic_transformer_block(t: Tracer, name: str, x: Act, dim: int, heads: int, head_dim: int,
                            context: Act | None, only_cross_attention: bool, cross_dim: int | None,
                            objs: Act | None = None) -> Act:
    """``BasicTransformerBlock`` with ``norm_type="layer_norm"``: self-attn, cross-attn, GEGLU FF.

    ``cross_dim`` None: no norm2/attn2 (and attn1, if only_cross_attention, still gets the context
    but was built for ``dim``-wide keys). ``context`` None (the caller passes none): attn2 attends to
    the image tokens with its to_k / to_v built for ``cross_dim``. ``objs``: GLIGEN's grounding tokens, which
    the ``fuser`` (registered last, run after attn1) mixes in."""
    with t.scope(name, order=("norm1", "attn1", "norm2", "attn2", "norm3", "ff", "fuser")) as block:
        h = t.layer_norm("norm1", x, dim)
        a = attention(t, "attn1", h, dim, heads, head_dim, None, bias=False, spatial=False,
                      context=context if only_cross_attention else None,
                      context_dim=(cross_dim or dim) if only_cross_attention else None)
        if objs is not None:
            a = gated_self_attention_dense(t, "fuser", a, objs, dim, cross_dim, heads, head_dim)
        if cross_dim is not None:
            h = t.layer_norm("norm2", a, dim)
            a = attention(t, "attn2", h, dim, heads, head_dim, None, bias=False, spatial=False, context=context,
                          context_dim=cross_dim)
        h = t.layer_norm("norm3", a, dim)
        feed_forward(t, "ff", h, dim)
        return Act(dim, None, block, x.tokens)


def transformer_2d(t: Tracer, name: str, x: Act, ctx: Ctx, heads: int, head_dim: int, in_channels: int,
                   num_layers: int, groups: int, use_linear_projection: bool,
                   only_cross_attention: bool = False, cross_dim: int | None = None) -> Act:
    """``Transformer2DModel`` on continuous input: norm -> proj_in -> blocks -> proj_out + residual.

    With ``use_linear_projection`` the reshape after proj_out uses the input's channels, so any
    heads x head_dim works; the note names the context width this block's attn2 expects."""
    inner = heads * head_dim
    expects = f"expects a {cross_dim}-d context" if cross_dim is not None else "no cross-attention"
    if cross_dim is not None and ctx.context is None:
        expects += " (none is passed: attn2 attends to the image)"
    note = f"{heads} heads x {head_dim} = {inner}, {num_layers} block(s), {expects}"
    with t.unit(name, "transformer", "Transformer2DModel", x, note) as u:
        h = t.group_norm("norm", x, groups, in_channels)
        size = x.size or (1,)
        tokens = 1
        for d in size:
            tokens *= d
        if use_linear_projection:
            seq = t.linear("proj_in", Act(in_channels, None, h.source, tokens), in_channels, inner)
        else:
            c = t.conv("proj_in", h, in_channels, inner, 1, 1, 0)
            seq = Act(inner, None, c.source, tokens)
        with t.scope("transformer_blocks"):
            for i in range(num_layers):
                seq = basic_transformer_block(t, str(i), seq, inner, heads, head_dim, ctx.context,
                                              only_cross_attention, cross_dim, ctx.objs)
        if use_linear_projection:
            out = t.linear("proj_out", seq, inner, in_channels)
        else:
            out = t.conv("proj_out", Act(inner, x.size, seq.source), inner, in_channels, 1, 1, 0)
        if out.channels != in_channels:  # proj_out of 0 channels (heads x 0) returns 0: the residual add fails
            t.fail(u.path, f"{u.path}: output + residual: proj_out returns {out.channels} channels ({heads} heads"
                           f" x {head_dim}), the input has {in_channels}")
        return u.done(Act(in_channels, x.size, out.source))


CONDITION_LENGTHS = (77, 257)
"""``DualTransformer2DModel.condition_lengths``: the text's tokens, then the image's (Versatile Diffusion's
dual-guided pipeline passes the two contexts concatenated: 334 tokens)."""
CONDITION_TRANSFORMER = (1, 0)
"""``transformer_index_for_condition``: the text goes to transformers.1, the image to transformers.0."""


def dual_transformer_2d(t: Tracer, name: str, x: Act, ctx: Ctx, heads: int, head_dim: int, in_channels: int,
                        groups: int, cross_dim: int | None) -> Act:
    """``DualTransformer2DModel``: two one-layer Transformer2DModels, each fed its slice of the context, their
    residuals mixed half and half and added to the input."""
    with t.unit(name, "transformer", "DualTransformer2DModel", x, "text -> transformers.1, image ->"
                f" transformers.0, mixed 0.5 / 0.5, each expects a {cross_dim}-d context") as u:
        # diffusers 0.42 builds it, but every block that holds one calls it with a keyword it does not take
        t.fail(u.path, f"{u.path}: DualTransformer2DModel.forward() got an unexpected keyword argument"
                       " 'encoder_attention_mask' (diffusers 0.42 builds dual_cross_attention models but cannot run"
                       " them)")
        if ctx.context is None:
            t.fail(u.path, f"{u.path}: encoder_hidden_states is None, and DualTransformer2DModel slices it")
        context = ctx.context or Act(cross_dim or in_channels, None, "encoder_hidden_states", 1)
        total, start = context.tokens or 1, 0
        for n, index in zip(CONDITION_LENGTHS, CONDITION_TRANSFORMER, strict=True):
            part = Act(context.channels, None, context.source, max(0, min(start + n, total) - start))
            # its Transformer2DModels get no attention_type: no GLIGEN fuser inside
            transformer_2d(t, f"transformers.{index}", x, replace(ctx, context=part, objs=None), heads, head_dim,
                           in_channels, 1, groups, False, cross_dim=cross_dim)
            start += n
        return u.done(Act(in_channels, x.size, ""))


def downsample_2d(t: Tracer, name: str, x: Act, channels: int, out_channels: int, padding: int) -> Act:
    """``Downsample2D(use_conv=True, name="op")``: padding 0 means an asymmetric F.pad(0,1,0,1) first."""
    note = "3x3 stride 2" + (", pad (0,1,0,1)" if padding == 0 else "")
    with t.unit(name, "downsample", "Downsample2D", x, note) as u:
        h = x
        if padding == 0 and x.size is not None:
            h = Act(x.channels, tuple(d + 1 for d in x.size), x.source)
        y = t.conv("conv", h, channels, out_channels, 3, 2, padding)
        return u.done(y, new=False)


def upsample_2d(t: Tracer, name: str, x: Act, channels: int, out_channels: int,
                output_size: tuple[int, ...] | None) -> Act:
    """``Upsample2D(use_conv=True)``: nearest x2 (or to ``output_size``), then a 3x3 conv."""
    size = output_size if output_size is not None else tuple(d * 2 for d in (x.size or ()))
    note = "nearest x2" if output_size is None else f"nearest to {fmt_size(output_size)} (upsample_size)"
    with t.unit(name, "upsample", "Upsample2D", x, note) as u:
        if x.channels != channels:
            t.fail(u.path, f"{u.path} expects {channels} channels, gets {x.channels}")
        y = t.conv("conv", Act(x.channels, size, x.source), channels, out_channels, 3, 1, 1)
        return u.done(y, new=False)


def timestep_embedding(t: Tracer, name: str, x: Act, in_channels: int, time_embed_dim: int,
                       cond_proj_dim: int | None = None, out_dim: int | None = None) -> Act:
    """``TimestepEmbedding``: (cond_proj +) linear_1 -> act -> linear_2."""
    with t.scope(name, order=("linear_1", "cond_proj", "act", "linear_2")):
        with t.unit("", "mlp", "TimestepEmbedding", x, f"{in_channels}->{time_embed_dim}") as u:
            if cond_proj_dim is not None:
                t.linear("cond_proj", Act(cond_proj_dim, None, "timestep_cond"), cond_proj_dim, in_channels, False)
            h = t.linear("linear_1", x, in_channels, time_embed_dim)
            y = t.linear("linear_2", h, time_embed_dim, out_dim or time_embed_dim)
            return u.done(y, new=False)
