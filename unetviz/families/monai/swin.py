"""The Swin transformer of ``nets/swin_unetr.py`` (``SwinTransformer``): ``PatchEmbed``, four ``BasicLayer``s of
``SwinTransformerBlock``s ending in ``PatchMerging``, and the normalised hidden state of each stage.

A block runs on a channel-last ``(B, D, H, W, C)`` map: rows report the width as channels and the positions as
``tokens``. Its attention runs per window, windows folded into the batch (``window_partition``): ``attn``'s
rows are ``batched`` by the window count, each over the window's positions. The window is clipped to the map
where the map is no larger (and that axis not shifted); the map is padded up to whole windows. Shifted blocks
(every odd one) roll the map and add a mask to the scores: no parameter, no MAC.
"""

from __future__ import annotations

from math import ceil, prod

from ...core.records import Size
from ...engine.tracer import Act, Tracer
from .vit import mlp_block


def window_size(size: Size, window: Size, shift: Size) -> tuple[Size, Size]:
    """``get_window_size``: an axis no larger than the window is one window, not shifted."""
    clip = tuple(s <= w for s, w in zip(size, window, strict=True))
    return (tuple(s if c else w for s, w, c in zip(size, window, clip, strict=True)),
            tuple(0 if c else h for h, c in zip(shift, clip, strict=True)))


def window_attention(t: Tracer, x: Act, dim: int, heads: int, window: Size, qkv_bias: bool) -> None:
    """``WindowAttention`` on ``x``'s windows: it owns ``relative_position_bias_table`` (one row per relative
    offset, one column per head) and the persistent ``relative_position_index`` buffer, made for the full window
    (a clipped window reads its top-left corner)."""
    n, full = x.tokens or 1, prod(window)
    with t.scope("attn"):
        table = prod(2 * w - 1 for w in window)
        t.owner("", "WindowAttention", x, Act(dim, None, "", n), [("relative_position_bias_table", (table, heads))])
        t.buffer("relative_position_index", (full, full))
        qkv = t.linear("qkv", x, dim, 3 * dim, bias=qkv_bias)
        if dim % heads:
            t.fail(t.path(), f"{t.path()} (WindowAttention): qkv(x).reshape(b, n, 3, {heads}, {dim} // {heads})"
                             f" cannot hold the {3 * dim} features")
        t.attention_matmuls("", qkv, heads, dim // heads, dim // heads, n, n)
        t.linear("proj", Act(dim, None, t.path(), n), dim, dim)


def swin_block(t: Tracer, name: str, x: Act, size: Size, dim: int, heads: int, window: Size, shift: Size,
               mlp_ratio: float, qkv_bias: bool) -> Act:
    """``SwinTransformerBlock``: ``x + attn(norm1(x))`` over (shifted) windows, then ``x + mlp(norm2(x))``."""
    ws, _ = window_size(size, window, shift)
    windows = prod(ceil(s / w) for s, w in zip(size, ws, strict=True))
    with t.unit(name, "transformer", "SwinTransformerBlock", x) as u:
        t.declare(("norm1", "attn", "drop_path", "norm2", "mlp"))
        h = t.layer_norm("norm1", x, dim)
        with t.batched(windows):
            window_attention(t, Act(dim, None, h.source, prod(ws)), dim, heads, window, qkv_bias)
        h = t.layer_norm("norm2", Act(dim, None, "", x.tokens), dim)
        mlp_block(t, h, dim, int(dim * mlp_ratio), drop="drop1")  # Swin's drop2 is drop1 registered again
        return u.done(Act(dim, None, "", x.tokens))


def patch_merging(t: Tracer, x: Act, size: Size, dim: int, type_: str) -> tuple[Act, Size]:
    """``PatchMerging`` / ``PatchMergingV2``: the map padded to even sizes, its 2x2(x2) neighbours concatenated
    (8 or 4 x dim), ``norm``, ``reduction`` to 2 x dim; registered reduction, norm."""
    half = tuple(ceil(s / 2) for s in size)
    wide = 2 ** len(size) * dim
    with t.unit("downsample", "downsample", type_, x) as u:
        t.declare(("reduction", "norm"))
        h = t.layer_norm("norm", Act(wide, None, "", prod(half)), wide)
        return u.done(t.linear("reduction", h, wide, 2 * dim, bias=False), new=False), half


def basic_layer(t: Tracer, name: str, x: Act, dim: int, depth: int, heads: int, window: Size, mlp_ratio: float,
                qkv_bias: bool, merging: str) -> Act:
    """``BasicLayer``: ``depth`` blocks (odd ones shifted by half a window), the merging, back to channels
    first."""
    size = x.size or ()
    shift = tuple(w // 2 for w in window)
    with t.block(name, f"Swin stage {name.split('.')[-2][-1]}: {depth} blocks, {heads} heads",
                 order=("blocks", "downsample")) as full:
        h = Act(dim, None, x.source, prod(size))  # rearrange(x, "b c d h w -> b d h w c")
        for i in range(depth):
            h = swin_block(t, f"blocks.{i}", h, size, dim, heads, window, (0,) * len(size) if i % 2 == 0 else shift,
                           mlp_ratio, qkv_bias)
        h, half = patch_merging(t, h, size, dim, merging)
        return Act(h.channels, half, full)  # the layer returns the rearranged map
