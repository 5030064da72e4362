"""MONAI's ViT (``nets/vit.py``) as UNETR builds it: ``PatchEmbeddingBlock``, ``TransformerBlock`` (``SABlock``,
``MLPBlock``) and the final ``LayerNorm``, over a ``(B, N, hidden)`` token sequence.

Rows follow the token-sequence rule: a Linear or LayerNorm reports the width as channels and N in ``tokens``.
``PatchEmbeddingBlock`` owns ``position_embeddings`` itself (a row when entered, before its
``patch_embeddings``); ``SABlock``'s two ``torch.einsum`` calls are an ``einsum_attention`` row, counted as
FlopCounterMode counts them. ``TransformerBlock`` always makes ``norm_cross_attn``, which only a
cross-attention block runs: its parameters are unrun.
"""

from __future__ import annotations

from math import prod

from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer


def patch_embedding(t: Tracer, x: Act, img: Size, patch: Size, hidden: int, proj: str) -> Act:
    """``PatchEmbeddingBlock.forward``: the patches (a strided conv, or einops' ``Rearrange`` and a Linear),
    flattened to tokens, plus ``position_embeddings`` (1, n_patches, hidden), which must broadcast."""
    n = prod(i // p for i, p in zip(img, patch, strict=True))
    d, size = len(patch), x.size or ()
    with t.unit("patch_embedding", "embed", "PatchEmbeddingBlock", x) as u:
        t.declare(("patch_embeddings", "dropout"))
        t.owner("", "PatchEmbeddingBlock", x, Act(hidden, None, "", n), [("position_embeddings", (1, n, hidden))])
        if proj == "conv":
            y = t.conv("patch_embeddings", x, x.channels, hidden, patch, patch, 0, dims=d)
            tokens = prod(y.size or ())
        else:
            # Rearrange("b c (h p1) (w p2) ...") needs every axis a multiple of its patch
            if any(s % p for s, p in zip(size, patch, strict=True)):
                at = t.path("patch_embeddings.0")
                t.fail(at, f"{at} (Rearrange): the {fmt_size(size)} input is not a multiple of the patch"
                           f" {fmt_size(patch)} on every axis")
            tokens = prod(s // p for s, p in zip(size, patch, strict=True)) or 1
            seq = Act(x.channels * prod(patch), None, t.path("patch_embeddings.0"), tokens)
            y = t.linear("patch_embeddings.1", seq, x.channels * prod(patch), hidden)
        if tokens not in (n, 1) and n != 1:
            t.fail(u.path, f"{u.path} (PatchEmbeddingBlock): x + position_embeddings: {tokens} patch tokens of the"
                           f" {fmt_size(size)} input and the {n} of img_size {fmt_size(img)} do not broadcast")
        # the sum broadcasts: one patch token takes every position's embedding (and one position every token)
        return u.done(Act(hidden, None, t.path("dropout"), max(tokens, n)), new=False)


def sa_block(t: Tracer, x: Act, hidden: int, heads: int, qkv_bias: bool) -> Act:
    """``SABlock`` with its defaults (combined qkv, out_proj): registered out_proj, qkv."""
    n = x.tokens or 1
    with t.scope("attn", order=("out_proj", "qkv")):
        qkv = t.linear("qkv", x, hidden, 3 * hidden, bias=qkv_bias)
        t.attention_matmuls("", qkv, heads, hidden // heads, hidden // heads, n, n, kind="einsum_attention")
        t.linear("out_proj", Act(hidden, None, t.path("out_rearrange"), n), hidden, hidden)
        return Act(hidden, None, t.path("drop_output"), n)  # the dropout returns the map


def mlp_block(t: Tracer, x: Act, hidden: int, mlp_dim: int, drop: str = "drop2") -> Act:
    """``MLPBlock``: linear1, GELU, linear2 (``mlp_dim`` 0 means ``hidden``). ``drop``: the module returning the
    map (Swin's ``drop2`` is ``drop1`` registered again)."""
    mlp_dim = mlp_dim or hidden
    with t.scope("mlp", order=("linear1", "linear2", "fn", "drop1", "drop2")):
        h = t.linear("linear1", x, hidden, mlp_dim)
        t.linear("linear2", Act(mlp_dim, None, t.path("drop1"), h.tokens), mlp_dim, hidden)
        return Act(hidden, None, t.path(drop), x.tokens)


def transformer_block(t: Tracer, name: str, x: Act, hidden: int, mlp_dim: int, heads: int, qkv_bias: bool) -> Act:
    """``TransformerBlock``: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""
    with t.unit(name, "transformer", "TransformerBlock", x) as u:
        t.declare(("mlp", "norm1", "attn", "norm2", "norm_cross_attn", "cross_attn"))
        a = sa_block(t, t.layer_norm("norm1", x, hidden), hidden, heads, qkv_bias)
        mlp_block(t, t.layer_norm("norm2", a, hidden), hidden, mlp_dim)
        t.unrun("norm_cross_attn", [("weight", (hidden,)), ("bias", (hidden,))])
        return u.done(Act(hidden, None, "", x.tokens))


def vit(t: Tracer, x: Act, img: Size, patch: Size, hidden: int, mlp_dim: int, layers: int, heads: int,
        proj: str, qkv_bias: bool) -> tuple[Act, list[Act]]:
    """``ViT.forward`` (no classification token): the final normed tokens and every block's output."""
    with t.block("vit", "ViT encoder", order=("patch_embedding", "blocks", "norm")):
        h = patch_embedding(t, x, img, patch, hidden, proj)
        hidden_states = []
        for i in range(layers):
            h = transformer_block(t, f"blocks.{i}", h, hidden, mlp_dim, heads, qkv_bias)
            hidden_states.append(h)
        return t.layer_norm("norm", h, hidden), hidden_states
