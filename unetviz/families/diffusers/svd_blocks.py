"""diffusers 0.42 Stable Video Diffusion blocks (unets/unet_3d_blocks.py, resnet.py, attention.py,
transformers/transformer_temporal.py): ``SpatioTemporalResBlock``, ``TransformerSpatioTemporalModel`` (with its
``TemporalBasicTransformerBlock``), ``AlphaBlender`` and the down, mid and up blocks built of them.

Sizes: the blocks pass frames folded into the batch, ``(B*F, C, H, W)``: the hidden state, skips and concats
are per frame (HxW). A ``TemporalResnetBlock`` sees ``(B, C, F, H, W)`` (FxHxW); a temporal transformer block
attends over the F frames of each pixel (F tokens). Every GroupNorm has 32 groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.tracer import Act, Tracer
from .parts import (
    BlockArgs,
    Ctx,
    attention,
    basic_transformer_block,
    downsample_2d,
    resnet_block_2d,
    upsample_2d,
)
from .parts import timestep_embedding as timestep_mlp

DOWN_TYPES = ("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal")
UP_TYPES = ("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal")
ORDER = ("attentions", "resnets", "downsamplers", "upsamplers")
GROUPS = 32
"""Every GroupNorm of these blocks (ResnetBlock2D's default, TemporalResnetBlock's, the transformer's)."""


@dataclass(frozen=True, kw_only=True)
class SVDBlock(BlockArgs):
    """What ``get_down_block`` / ``get_up_block`` hand one spatio-temporal block."""

    heads: int = 1
    """``num_attention_heads`` of its transformers (head size ``out_channels // heads``)."""
    depths: tuple[int, ...] = ()
    """Transformer blocks of each layer's TransformerSpatioTemporalModel."""
    cross_dim: int = 1024
    """The context width attn2's to_k/to_v are built for."""


@dataclass(frozen=True, kw_only=True)
class Frames:
    """What every block needs besides its own channels."""

    ctx: Ctx
    """``emb`` (repeated per frame) and the 32 GroupNorm groups."""
    frames: int
    """F: the frames folded into the batch."""
    context: Act
    """``encoder_hidden_states``: the CLIP image embedding, one token per frame."""


def _mixer(t: Tracer, name: str, x: Act, note: str) -> None:
    """``AlphaBlender(merge_strategy="learned_with_images")``: one learned ``mix_factor``. Its row reads what it
    is fed: a resnet's (B, C, F, H, W) maps (C channels, FxHxW), a transformer's token sequence (its width
    and its tokens)."""
    t.owner(name, "AlphaBlender", x, x, [("mix_factor", (1,))], note)


def spatio_temporal_res_block(t: Tracer, name: str, x: Act, f: Frames, c_in: int, c_out: int) -> Act:
    """``SpatioTemporalResBlock``: a ResnetBlock2D per frame, a TemporalResnetBlock (Conv3d 3x1x1) over the
    frames, and their learned blend."""
    note = f"{c_in}->{c_out}, then Conv3d 3x1x1 over {f.frames} frames, blended"
    with t.unit(name, "resnet", "SpatioTemporalResBlock", x, note) as u:
        h = resnet_block_2d(t, "spatial_res_block", x, f.ctx, c_in, c_out)
        size = (f.frames, *(h.size or (1, 1)))
        with t.scope("temporal_res_block"), t.batched(1):  # (B, C, F, H, W): the frames unfolded
            v = t.group_norm("norm1", Act(c_out, size, h.source), GROUPS, c_out, key="block_out_channels")
            v = t.conv("conv1", v, c_out, c_out, (3, 1, 1), 1, (1, 0, 0), dims=3)
            # temb.reshape(B, F, -1): one embedding per frame
            t.linear("time_emb_proj", Act(f.ctx.temb.channels, None, f.ctx.temb.source, f.frames),
                     f.ctx.temb.channels, c_out)
            v = t.group_norm("norm2", v, GROUPS, c_out, key="block_out_channels")
            t.conv("conv2", v, c_out, c_out, (3, 1, 1), 1, (1, 0, 0), dims=3)
        with t.batched(1):  # blends the (B, C, F, H, W) maps: frames unfolded, as the temporal block's
            _mixer(t, "time_mixer", Act(c_out, size, h.source), "spatial vs temporal, learned")
        return u.done(Act(c_out, x.size, u.path))


def temporal_basic_block(t: Tracer, name: str, x: Act, dim: int, heads: int, head_dim: int, context: Act,
                         cross_dim: int) -> Act:
    """``TemporalBasicTransformerBlock``: on the F frames of each pixel, norm_in -> ff_in (+ residual), self-
    attention, cross-attention to the first frame's context, GEGLU feed-forward."""
    with t.scope(name) as block:
        h = t.layer_norm("norm_in", x, dim)
        with t.unit("ff_in", "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
            g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
            u.done(t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim), new=False)
        h = t.layer_norm("norm1", x, dim)
        a = attention(t, "attn1", h, dim, heads, head_dim, None, bias=False, spatial=False)
        h = t.layer_norm("norm2", a, dim)
        attention(t, "attn2", h, dim, heads, head_dim, None, bias=False, spatial=False, context=context,
                  context_dim=cross_dim)
        h = t.layer_norm("norm3", x, dim)
        with t.unit("ff", "mlp", "FeedForward", h, f"GEGLU {dim}->{4 * dim}x2->{dim}") as u:
            g = t.linear("net.0.proj", h, dim, 4 * dim * 2)
            u.done(t.linear("net.2", Act(4 * dim, None, g.source, g.tokens), 4 * dim, dim), new=False)
        return Act(dim, None, block, x.tokens)


def transformer_spatio_temporal(t: Tracer, name: str, x: Act, f: Frames, heads: int, channels: int, depth: int,
                                cross_dim: int) -> Act:
    """``TransformerSpatioTemporalModel``: per layer a spatial BasicTransformerBlock on the HxW tokens, a
    temporal block on the F frames (with a frame-index embedding added), and their learned blend."""
    head_dim = channels // heads
    inner = heads * head_dim
    pixels = 1
    for d in x.size or (1,):
        pixels *= d
    note = f"{heads} heads x {head_dim}, {depth} spatial + temporal block(s) over {f.frames} frames"
    order = ("norm", "proj_in", "transformer_blocks", "temporal_transformer_blocks", "time_pos_embed", "time_proj",
             "time_mixer", "proj_out")
    with t.unit(name, "transformer", "TransformerSpatioTemporalModel", x, note) as u:
        t.declare(order)
        h = t.group_norm("norm", x, GROUPS, channels, key="block_out_channels")
        seq = t.linear("proj_in", Act(channels, None, h.source, pixels), channels, inner)
        # time_proj(arange(F)) -> time_pos_embed: one C-wide embedding per frame, added before each temporal block
        emb = timestep_mlp(t, "time_pos_embed", Act(channels, None, "time_proj"), channels, 4 * channels,
                           out_dim=channels)
        context = Act(f.context.channels, None, f.context.source, f.context.tokens)  # the first frame's, per pixel
        for i in range(depth):
            with t.scope("transformer_blocks"):
                seq = basic_transformer_block(t, str(i), seq, inner, heads, head_dim, f.context, False, cross_dim)
            if emb.channels != inner:
                t.fail(u.path, f"{u.path}: hidden_states_mix + emb: the {inner}-wide tokens ({heads} heads x"
                               f" {head_dim}) and the {emb.channels}-wide frame embedding do not add ({channels}"
                               f" channels are not a multiple of {heads} heads)")
            with t.scope("temporal_transformer_blocks"), t.batched(pixels):  # each pixel: F frame tokens
                mix = temporal_basic_block(t, str(i), Act(inner, None, seq.source, f.frames), inner, heads, head_dim,
                                           context, cross_dim)
            _mixer(t, "time_mixer", seq, "spatial vs temporal, learned")
            seq = Act(inner, None, mix.source, pixels)
        if depth == 0:  # time_mixer is built but never runs: its mix_factor is in the state_dict, on no layer row
            t.buffer("time_mixer.mix_factor", (1,))
        out = t.linear("proj_out", seq, inner, channels)
        return u.done(Act(channels, x.size, out.source))


def _layer(t: Tracer, b: SVDBlock, j: int, x: Act, f: Frames, c_in: int) -> Act:
    x = spatio_temporal_res_block(t, f"resnets.{j}", x, f, c_in, b.out_channels)
    if b.type.startswith("CrossAttn"):
        x = transformer_spatio_temporal(t, f"attentions.{j}", x, f, b.heads, b.out_channels, b.depths[j],
                                        b.cross_dim)
    return x


def down_block(t: Tracer, i: int, b: SVDBlock, x: Act, f: Frames) -> Act:
    """CrossAttnDownBlockSpatioTemporal / DownBlockSpatioTemporal: pushes every layer's output and the sampler's."""
    with t.block(f"down_blocks.{i}", f"{b.type} {b.in_channels}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            x = _layer(t, b, j, x, f, b.in_channels if j == 0 else b.out_channels)
            t.push(x)
        if b.add_sampler:
            x = downsample_2d(t, "downsamplers.0", x, b.out_channels, b.out_channels, 1)
            t.push(x)
    return x


def mid_block(t: Tracer, x: Act, f: Frames, b: SVDBlock) -> Act:
    """``UNetMidBlockSpatioTemporal``: resnet, then (transformer, resnet)."""
    with t.block("mid_block", "UNetMidBlockSpatioTemporal", order=ORDER):
        x = spatio_temporal_res_block(t, "resnets.0", x, f, b.out_channels, b.out_channels)
        x = transformer_spatio_temporal(t, "attentions.0", x, f, b.heads, b.out_channels, b.depths[0], b.cross_dim)
        return spatio_temporal_res_block(t, "resnets.1", x, f, b.out_channels, b.out_channels)


def up_block(t: Tracer, i: int, b: SVDBlock, x: Act, f: Frames, forward_upsample_size: bool) -> Act:
    """UpBlockSpatioTemporal / CrossAttnUpBlockSpatioTemporal: each layer concatenates one skip first."""
    with t.block(f"up_blocks.{i}", f"{b.type} {b.prev_output_channel}->{b.out_channels}", order=ORDER):
        for j in range(b.num_layers):
            skip_channels = b.in_channels if j == b.num_layers - 1 else b.out_channels
            c_in = b.prev_output_channel if j == 0 else b.out_channels
            skip = t.pop(f"resnets.{j}")
            x = t.cat([x, skip], into=f"resnets.{j}")
            x = _layer(t, b, j, x, f, c_in + skip_channels)
        if b.add_sampler:
            size = t.peek_size() if forward_upsample_size else None
            x = upsample_2d(t, "upsamplers.0", x, b.out_channels, b.out_channels, tuple(size) if size else None)
    return x
