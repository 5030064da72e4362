"""diffusers 0.42 ModelScope blocks (unets/unet_3d_blocks.py, resnet.py, transformers/transformer_temporal.py):
``TemporalConvLayer``, ``TransformerTemporalModel`` and the 3-D down, mid and up blocks built of them and of the
2-D ``ResnetBlock2D`` / ``Transformer2DModel`` / samplers.

Sizes: the blocks pass frames folded into the batch, ``(B*F, C, H, W)``, so the running hidden state, every
skip and every concat has the per-frame size ``HxW``. The temporal layers unfold it: a ``TemporalConvLayer``'s
GroupNorms and ``Conv3d``\\ s see ``(B, C, F, H, W)`` (size ``FxHxW``), and a ``TransformerTemporalModel``
attends over the F frames of each pixel (its linears see ``F`` tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.records import fmt_size, numel
from ...engine.tracer import Act, Tracer
from .parts import BlockArgs, Ctx, attention, downsample_2d, resnet_block_2d, transformer_2d, upsample_2d

DOWN_TYPES = ("CrossAttnDownBlock3D", "DownBlock3D")
UP_TYPES = ("UpBlock3D", "CrossAttnUpBlock3D")
ORDER = ("resnets", "temp_convs", "attentions", "temp_attentions", "downsamplers", "upsamplers")
"""Registration order of a 3-D block's ModuleLists (the forward runs resnet, temp_conv, attn, temp_attn)."""


@dataclass(frozen=True, kw_only=True)
class Block3D(BlockArgs):
    """What ``get_down_block`` / ``get_up_block`` of unet_3d_blocks hand one block."""

    heads: int = 1
    """``num_attention_heads`` handed to the block: the head *size* of its transformers (diffusers' naming)."""
    downsample_padding: int = 1
    """Downsample2D's padding (0: an asymmetric F.pad first)."""


@dataclass(frozen=True, kw_only=True)
class Video:
    """What every 3-D block needs besides its own channels."""

    ctx: Ctx
    """The 2-D context: ``emb`` (repeated per frame), GroupNorm groups, the text context."""
    frames: int
    """F: the frames folded into the batch."""
    cross_dim: int
    """``cross_attention_dim`` every attn2 is built for."""


def temporal_conv_layer(t: Tracer, name: str, x: Act, channels: int, groups: int, frames: int) -> Act:
    """``TemporalConvLayer``: four (GroupNorm, SiLU, (Dropout,) Conv3d 3x1x1) over the frames, + identity."""
    note = f"4 x Conv3d 3x1x1 over {frames} frames, + identity"
    with t.unit(name, "conv", "TemporalConvLayer", x, note) as u, t.batched(1):  # frames unfolded again
        h = Act(x.channels, (frames, *(x.size or (1, 1))), x.source)  # (B, C, F, H, W)
        for i, (norm, conv) in enumerate((("0", "2"), ("0", "3"), ("0", "3"), ("0", "3"))):
            h = t.group_norm(f"conv{i + 1}.{norm}", h, groups, channels)
            h = t.conv(f"conv{i + 1}.{conv}", h, channels, channels, (3, 1, 1), 1, (1, 0, 0), dims=3)
        return u.done(Act(channels, x.size, u.path))


def temporal_basic_block(t: Tracer, name: str, x: Act, dim: int, heads: int, head_dim: int) -> Act:
    """TransformerTemporalModel's ``BasicTransformerBlock``: double self-attention (attn2 gets no context,
    ``double_self_attention=True``), no biases on q/k/v, GEGLU feed-forward; ``x`` is F tokens per pixel."""
    with t.scope(name) as block:
        h = t.layer_norm("norm1", x, dim)
        a = attention(t, "attn1", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm2", a, dim)
        a = attention(t, "attn2", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm3", a, dim)
        with t.unit("ff", "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
            g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
            y = t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim)
            u.done(y, new=False)
        return Act(dim, None, block, x.tokens)


def _temporal_body(t: Tracer, x: Act, heads: int, head_dim: int, channels: int, groups: int, frames: int,
                   as_units: bool) -> Act:
    """norm (on B, C, F, H, W) -> proj_in -> one block over the F frames -> proj_out, on F tokens."""
    inner = heads * head_dim
    with t.batched(1):  # the norm sees (B, C, F, H, W)
        h = t.group_norm("norm", Act(x.channels, (frames, *(x.size or (1, 1))), x.source), groups, channels)
    with t.batched(numel(x.size)):  # then each pixel is a sequence of F tokens
        seq = t.linear("proj_in", Act(channels, None, h.source, frames), channels, inner)
        if as_units:  # transformer_in is a heading: its block is a step of its own
            with t.unit("transformer_blocks.0", "transformer", "BasicTransformerBlock", seq) as u:
                seq = u.done(temporal_basic_block(t, "", seq, inner, heads, head_dim), new=False)
        else:
            seq = temporal_basic_block(t, "transformer_blocks.0", seq, inner, heads, head_dim)
        return t.linear("proj_out", seq, inner, channels)


def transformer_temporal(t: Tracer, name: str, x: Act, heads: int, head_dim: int, channels: int, groups: int,
                         frames: int) -> Act:
    """``TransformerTemporalModel`` (a block's ``temp_attentions.j``): attention across frames, + residual."""
    note = f"{heads} heads x {head_dim} over {frames} frames at each of {fmt_size(x.size)} pixels"
    with t.unit(name, "transformer", "TransformerTemporalModel", x, note) as u:
        t.declare(("norm", "proj_in", "transformer_blocks", "proj_out"))
        _temporal_body(t, x, heads, head_dim, channels, groups, frames, as_units=False)
        return u.done(Act(channels, x.size, u.path))


def transformer_in(t: Tracer, x: Act, head_dim: int, channels: int, groups: int, frames: int) -> Act:
    """The model's ``transformer_in`` (8 heads): a heading of its own, as its ModuleList makes it."""
    title = f"TransformerTemporalModel 8 heads x {head_dim} over {frames} frames"
    with t.block("transformer_in", title, order=("norm", "proj_in", "transformer_blocks", "proj_out")):
        _temporal_body(t, x, 8, head_dim, channels, groups, frames, as_units=True)
    return Act(channels, x.size, "transformer_in")


def _layer(t: Tracer, b: Block3D, j: int, x: Act, v: Video, c_in: int) -> Act:
    """resnet j, temp_conv j, then (in a CrossAttn block) attention j and temporal attention j."""
    x = resnet_block_2d(t, f"resnets.{j}", x, v.ctx, c_in, b.out_channels)
    x = temporal_conv_layer(t, f"temp_convs.{j}", x, b.out_channels, v.ctx.groups, v.frames)
    if b.type.startswith("CrossAttn"):
        heads = b.out_channels // b.heads
        x = transformer_2d(t, f"attentions.{j}", x, v.ctx, heads, b.heads, b.out_channels, 1, v.ctx.groups, True,
                           cross_dim=v.cross_dim)
        x = transformer_temporal(t, f"temp_attentions.{j}", x, heads, b.heads, b.out_channels, v.ctx.groups,
                                 v.frames)
    return x


def down_block(t: Tracer, i: int, b: Block3D, x: Act, v: Video) -> Act:
    """CrossAttnDownBlock3D / DownBlock3D: pushes every layer's output and the downsampler's."""
    with t.block(f"down_blocks.{i}", f"{b.type} {b.in_channels}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            x = _layer(t, b, j, x, v, b.in_channels if j == 0 else b.out_channels)
            t.push(x)  # output_states += (hidden_states,)
        if b.add_sampler:
            x = downsample_2d(t, "downsamplers.0", x, b.out_channels, b.out_channels, b.downsample_padding)
            t.push(x)
    return x


def mid_block(t: Tracer, x: Act, v: Video, channels: int, head_dim: int) -> Act:
    """``UNetMidBlock3DCrossAttn``: resnet, temp_conv, then (attn, temp_attn, resnet, temp_conv)."""
    with t.block("mid_block", "UNetMidBlock3DCrossAttn", order=ORDER):
        x = resnet_block_2d(t, "resnets.0", x, v.ctx, channels, channels)
        x = temporal_conv_layer(t, "temp_convs.0", x, channels, v.ctx.groups, v.frames)
        heads = channels // head_dim
        x = transformer_2d(t, "attentions.0", x, v.ctx, heads, head_dim, channels, 1, v.ctx.groups, True,
                           cross_dim=v.cross_dim)
        x = transformer_temporal(t, "temp_attentions.0", x, heads, head_dim, channels, v.ctx.groups, v.frames)
        x = resnet_block_2d(t, "resnets.1", x, v.ctx, channels, channels)
        return temporal_conv_layer(t, "temp_convs.1", x, channels, v.ctx.groups, v.frames)


def up_block(t: Tracer, i: int, b: Block3D, x: Act, v: Video, forward_upsample_size: bool) -> Act:
    """UpBlock3D / CrossAttnUpBlock3D: each layer concatenates one skip first."""
    with t.block(f"up_blocks.{i}", f"{b.type} {b.prev_output_channel}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            skip_channels = b.in_channels if j == b.num_layers - 1 else b.out_channels
            c_in = b.prev_output_channel if j == 0 else b.out_channels
            skip = t.pop(f"resnets.{j}")  # res_hidden_states_tuple[-1]
            x = t.cat([x, skip], into=f"resnets.{j}")
            x = _layer(t, b, j, x, v, c_in + skip_channels)
        if b.add_sampler:
            size = t.peek_size() if forward_upsample_size else None
            x = upsample_2d(t, "upsamplers.0", x, b.out_channels, b.out_channels, tuple(size) if size else None)
    return x
