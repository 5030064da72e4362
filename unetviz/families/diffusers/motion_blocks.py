"""diffusers 0.42 AnimateDiff blocks (unets/unet_motion_model.py, attention.py, embeddings.py):
``AnimateDiffTransformer3D`` (a motion module), and ``CrossAttnDownBlockMotion``, ``DownBlockMotion``,
``UNetMidBlockCrossAttnMotion``, ``UpBlockMotion``, ``CrossAttnUpBlockMotion``: SD's 2-D blocks with a motion
module after every (resnet, attention) pair.

Sizes: the blocks pass frames folded into the batch, ``(B*F, C, H, W)``, so the hidden state, every skip and
every concat has the per-frame size ``HxW``. A motion module unfolds it: its GroupNorm sees ``(B, C, F, H, W)``
(``FxHxW``) and its transformer blocks attend over the F frames of each pixel (F tokens), with sinusoidal
positions (a ``pe`` buffer of ``motion_max_seq_length`` rows) added before both self-attentions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.records import fmt_size, numel
from ...engine.tracer import Act, Tracer
from .parts import BlockArgs, Ctx, attention, downsample_2d, resnet_block_2d, transformer_2d, upsample_2d

DOWN_TYPES = ("CrossAttnDownBlockMotion", "DownBlockMotion")
UP_TYPES = ("UpBlockMotion", "CrossAttnUpBlockMotion")
ORDER = ("attentions", "resnets", "motion_modules", "downsamplers", "upsamplers")
"""Registration order of a motion block's ModuleLists (the forward runs resnet, attention, motion module)."""
BLOCK_ORDER = ("pos_embed", "norm1", "attn1", "norm2", "attn2", "norm3", "ff")
"""A motion BasicTransformerBlock's children in registration order (pos_embed comes first)."""


@dataclass(frozen=True, kw_only=True)
class MotionBlock(BlockArgs):
    """What ``UNetMotionModel.__init__`` hands one down or up block."""

    heads: int = 1
    """``num_attention_heads[i]``: heads of the spatial transformers (head size ``out_channels // heads``)."""
    depths: tuple[int, ...] = ()
    """Transformer blocks of each layer's Transformer2DModel (CrossAttn blocks)."""
    cross_dim: int = 1280
    """The context width the spatial attn2's to_k/to_v are built for."""
    motion_heads: int = 8
    """``motion_num_attention_heads[i]``: heads of the motion modules (head size ``out_channels // heads``)."""
    motion_depths: tuple[int, ...] = ()
    """Transformer blocks of each layer's motion module."""
    downsample_padding: int = 1
    """Downsample2D's padding (0: an asymmetric F.pad first)."""


@dataclass(frozen=True, kw_only=True)
class Motion:
    """What every motion block needs besides its own channels."""

    ctx: Ctx
    """The 2-D context: ``emb`` (repeated per frame), GroupNorm groups, the text context."""
    frames: int
    """F: the frames folded into the batch."""
    max_seq: int
    """``motion_max_seq_length``: rows of every ``pos_embed.pe`` (the most frames the forward can take)."""
    use_linear_projection: bool = False
    """The spatial transformers' proj_in / proj_out are Linear (else 1x1 Conv2d)."""


def _motion_block(t: Tracer, name: str, x: Act, dim: int, heads: int, head_dim: int, m: Motion) -> Act:
    """The motion ``BasicTransformerBlock``: positions added, then self-attention twice
    (``double_self_attention``: attn2 gets no context), no q/k/v biases, a GEGLU feed-forward."""
    with t.scope(name, order=BLOCK_ORDER) as block:
        t.buffer("pos_embed.pe", (1, m.max_seq, dim))
        h = t.layer_norm("norm1", x, dim)  # pos_embed(norm1(x)): the positions are added after the norm
        if m.frames > m.max_seq:
            t.fail(f"{block}.pos_embed", f"{block}.pos_embed: {m.frames} frames but pe has"
                   f" motion_max_seq_length = {m.max_seq} positions: x + pe[:, :{m.frames}] does not broadcast")
        a = attention(t, "attn1", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm2", a, dim)
        a = attention(t, "attn2", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm3", a, dim)
        with t.unit("ff", "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
            g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
            y = t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim)
            u.done(y, new=False)
        return Act(dim, None, block, x.tokens)


def motion_module(t: Tracer, name: str, x: Act, channels: int, heads: int, depth: int, m: Motion) -> Act:
    """``AnimateDiffTransformer3D``: norm (on B, C, F, H, W) -> proj_in -> blocks over the F frames of each
    pixel -> proj_out, + the input."""
    head_dim = channels // heads
    inner = heads * head_dim
    note = f"{heads} heads x {head_dim} over {m.frames} frames at each of {fmt_size(x.size)} pixels, {depth} block(s)"
    with t.unit(name, "transformer", "AnimateDiffTransformer3D", x, note) as u:
        t.declare(("norm", "proj_in", "transformer_blocks", "proj_out"))
        with t.batched(1):  # the norm sees (B, C, F, H, W)
            h = t.group_norm("norm", Act(x.channels, (m.frames, *(x.size or (1, 1))), x.source), m.ctx.groups,
                             channels)
        with t.batched(numel(x.size)):  # then each pixel is a sequence of F frame tokens
            seq = t.linear("proj_in", Act(channels, None, h.source, m.frames), channels, inner)
            with t.scope("transformer_blocks"):
                for i in range(depth):
                    seq = _motion_block(t, str(i), seq, inner, heads, head_dim, m)
            t.linear("proj_out", seq, inner, channels)
        return u.done(Act(channels, x.size, u.path))


def _layer(t: Tracer, b: MotionBlock, j: int, x: Act, m: Motion, c_in: int) -> Act:
    """resnet j, (in a CrossAttn block) attention j, then motion module j."""
    x = resnet_block_2d(t, f"resnets.{j}", x, m.ctx, c_in, b.out_channels)
    if b.type.startswith("CrossAttn"):
        x = transformer_2d(t, f"attentions.{j}", x, m.ctx, b.heads, b.out_channels // b.heads, b.out_channels,
                           b.depths[j], m.ctx.groups, m.use_linear_projection, cross_dim=b.cross_dim)
    return motion_module(t, f"motion_modules.{j}", x, b.out_channels, b.motion_heads, b.motion_depths[j], m)


def down_block(t: Tracer, i: int, b: MotionBlock, x: Act, m: Motion) -> Act:
    """CrossAttnDownBlockMotion / DownBlockMotion: pushes every layer's output and the downsampler's."""
    with t.block(f"down_blocks.{i}", f"{b.type} {b.in_channels}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            x = _layer(t, b, j, x, m, b.in_channels if j == 0 else b.out_channels)
            t.push(x)  # output_states += (hidden_states,)
        if b.add_sampler:
            x = downsample_2d(t, "downsamplers.0", x, b.out_channels, b.out_channels, b.downsample_padding)
            t.push(x)
    return x


def mid_block(t: Tracer, x: Act, m: Motion, b: MotionBlock) -> Act:
    """``UNetMidBlockCrossAttnMotion``: resnet, then (attention, motion module, resnet) x num_layers."""
    c = b.out_channels
    with t.block("mid_block", "UNetMidBlockCrossAttnMotion", order=ORDER):
        x = resnet_block_2d(t, "resnets.0", x, m.ctx, c, c)
        for j in range(b.num_layers):
            x = transformer_2d(t, f"attentions.{j}", x, m.ctx, b.heads, c // b.heads, c, b.depths[j], m.ctx.groups,
                               m.use_linear_projection, cross_dim=b.cross_dim)
            x = motion_module(t, f"motion_modules.{j}", x, c, b.motion_heads, b.motion_depths[j], m)
            x = resnet_block_2d(t, f"resnets.{j + 1}", x, m.ctx, c, c)
    return x


def up_block(t: Tracer, i: int, b: MotionBlock, x: Act, m: Motion, forward_upsample_size: bool) -> Act:
    """UpBlockMotion / CrossAttnUpBlockMotion: each layer concatenates one skip first."""
    with t.block(f"up_blocks.{i}", f"{b.type} {b.prev_output_channel}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            skip_channels = b.in_channels if j == b.num_layers - 1 else b.out_channels
            c_in = b.prev_output_channel if j == 0 else b.out_channels
            skip = t.pop(f"resnets.{j}")  # res_hidden_states_tuple[-1]
            x = t.cat([x, skip], into=f"resnets.{j}")
            x = _layer(t, b, j, x, m, c_in + skip_channels)
        if b.add_sampler:
            size = t.peek_size() if forward_upsample_size else None
            x = upsample_2d(t, "upsamplers.0", x, b.out_channels, b.out_channels, tuple(size) if size else None)
    return x
