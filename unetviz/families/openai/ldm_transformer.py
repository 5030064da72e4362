"""The latent-diffusion ``SpatialTransformer`` (``ldm.modules.attention``): GroupNorm, proj_in,
``BasicTransformerBlock`` s of ``CrossAttention`` + GEGLU ``FeedForward``, proj_out, residual, mirrored with
the real registration order: a ``BasicTransformerBlock`` registers ``attn1, ff, attn2, norm1, norm2, norm3``
but runs norm1, attn1, norm2, attn2, norm3, ff, which decides its ``state_dict`` order.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.tracer import Act, Tracer

TRANSFORMER_GROUPS = 32
"""``Normalize(in_channels)``: ``torch.nn.GroupNorm(32, in_channels, eps=1e-6)``."""


@dataclass(frozen=True, kw_only=True)
class Transformer:
    """``SpatialTransformer(ch, n_heads, d_head, depth, context_dim, disable_self_attn, use_linear)``."""

    channels: int
    heads: int
    dim_head: int
    depth: int
    context_dim: int
    """Width of the text context every block's ``attn2`` (and a disabled ``attn1``) reads."""
    disable_self_attn: bool
    use_linear: bool
    sdpa: bool = False
    """sgm's attention (``Plan.sdpa``)."""

    @property
    def inner(self) -> int:
        return self.heads * self.dim_head


def _tokens(x: Act) -> int:
    n = 1
    for d in x.size or (1,):
        n *= d
    return n


def spatial_transformer(t: Tracer, name: str, x: Act, m: Transformer, context: Act | None) -> Act:
    """``SpatialTransformer.forward``: norm, proj_in (1x1 conv before the flatten, or Linear after it),
    the blocks on (B, H*W, inner) tokens, proj_out, then ``x + x_in`` (the transformer's own tensor).

    With ``use_linear`` this ldm builds ``proj_out = nn.Linear(in_channels, inner_dim)`` (sgm later
    swapped it to ``(inner_dim, in_channels)``); the two agree whenever heads x head width equals the
    channels, and otherwise proj_out is fed ``inner`` features it does not take, and the forward fails there.
    """
    inner = m.inner
    ctx = context if context is not None else Act(m.context_dim, None, "context", tokens=1)
    note = (f"{m.heads} heads x {m.dim_head} = {inner}, {m.depth} block(s), context {m.context_dim}"
            + (", linear proj" if m.use_linear else ""))
    with t.unit(name, "transformer", "SpatialTransformer", x, note) as u:
        h = t.group_norm("norm", x, TRANSFORMER_GROUPS, m.channels)
        tokens = _tokens(x)
        if m.use_linear:
            seq = t.linear("proj_in", Act(m.channels, None, h.source, tokens), m.channels, inner)
        else:
            c = t.conv("proj_in", h, m.channels, inner, 1, 1, 0)
            seq = Act(inner, None, c.source, tokens)
        with t.scope("transformer_blocks"):
            for d in range(m.depth):
                seq = basic_transformer_block(t, str(d), seq, m, ctx)
        if m.use_linear:
            out = t.linear("proj_out", seq, m.channels, inner)
        else:
            out = t.conv("proj_out", Act(inner, x.size, seq.source), inner, m.channels, 1, 1, 0)
        return u.done(Act(m.channels, x.size, out.source))


def basic_transformer_block(t: Tracer, name: str, x: Act, m: Transformer, context: Act) -> Act:
    """``BasicTransformerBlock._forward``: three pre-norm residual steps (self-attn, cross-attn, GEGLU FF)."""
    dim = m.inner
    with t.scope(name, order=("attn1", "ff", "attn2", "norm1", "norm2", "norm3")) as block:
        h = t.layer_norm("norm1", x, dim)
        a = cross_attention(t, "attn1", h, m, context if m.disable_self_attn else None)
        h = t.layer_norm("norm2", Act(dim, None, a.source, x.tokens), dim)
        a = cross_attention(t, "attn2", h, m, context)
        h = t.layer_norm("norm3", Act(dim, None, a.source, x.tokens), dim)
        with t.unit("ff", "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
            g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
            y = t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim)
            u.done(y, new=False)
        return Act(dim, None, block, x.tokens)


def cross_attention(t: Tracer, name: str, x: Act, m: Transformer, context: Act | None) -> Act:
    """``CrossAttention``: q from ``x``, k/v from ``context`` (itself when None), bias-free, then to_out."""
    inner, dim = m.inner, m.inner
    kv = context if context is not None else x
    width = kv.channels if context is not None else dim
    note = f"{m.heads} heads x {m.dim_head}" + (f", k/v from {width}-d context" if context is not None else "")
    with t.unit(name, "attention", "CrossAttention", x, note) as u:
        t.linear("to_q", x, dim, inner, bias=False)
        t.linear("to_k", kv, width, inner, bias=False)
        t.linear("to_v", kv, width, inner, bias=False)
        t.attention_matmuls("", x, m.heads, m.dim_head, m.dim_head, x.tokens or 1, kv.tokens or 1,
                            "attention" if m.sdpa else "einsum_attention")
        out = t.linear("to_out.0", Act(inner, None, "", x.tokens), inner, dim)
        return u.done(out, new=False)
