"""The k-diffusion blocks of diffusers 0.42 (stabilityai/sd-x2-latent-upscaler): ``KDownBlock2D``,
``KCrossAttnDownBlock2D``, ``KUpBlock2D``, ``KCrossAttnUpBlock2D`` and ``KAttentionBlock``
(unets/unet_2d_blocks.py), ``ResnetBlockCondNorm2D`` with ``AdaGroupNorm`` (resnet.py, normalization.py),
``KDownsample2D`` / ``KUpsample2D`` (downsampling.py, upsampling.py).

What sets them apart from the other diffusers blocks:

- They ignore ``norm_num_groups``: every norm has ``channels // 32`` groups, applied by ``F.group_norm`` in
  the forward, so a count that is 0 or does not divide the channels fails there, not in the constructor.
- The time embedding reaches every norm through the norm's own Linear (a scale and a shift per channel);
  there is no ``time_emb_proj``.
- The samplers' 4x4 kernels are non-persistent buffers (not in the ``state_dict``), and their convs are
  parameter-free rows, for the MACs.
- The blocks register ``resnets`` before ``attentions``. A cross-attention down block without a downsampler
  (the last) hands the decoder ``None`` for each layer; an up block takes one entry per resnet and
  concatenates only the last, when it is a tensor.
"""

from __future__ import annotations

from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer
from .blocks import BlockSpec
from .parts import Ctx, attention

K_DOWN = ("KDownBlock2D", "KCrossAttnDownBlock2D")
K_UP = ("KUpBlock2D", "KCrossAttnUpBlock2D")
GROUP_SIZE = 32
"""``resnet_group_size`` / ``group_size``: get_down_block and get_up_block never pass another."""
K_ORDER = ("resnets", "attentions", "downsamplers", "upsamplers")


def ada_group_norm(t: Tracer, name: str, x: Act, ctx: Ctx, channels: int, groups: int) -> Act:
    """``AdaGroupNorm(temb_channels, channels, groups)``: linear(emb) -> scale, shift; F.group_norm(x, groups)."""
    full = t.path(name)
    temb_channels = ctx.temb.channels if ctx.temb_channels is None else ctx.temb_channels
    with t.scope(name):
        t.linear("linear", ctx.temb, temb_channels, 2 * channels, note="scale+shift")
    if groups < 1:
        t.fail(full, f"{full} (AdaGroupNorm): {groups} groups ({x.channels} channels // {GROUP_SIZE}):"
                     " F.group_norm divides by zero")
    elif x.channels % groups:
        t.fail(full, f"{full} (AdaGroupNorm): {groups} groups do not divide the {x.channels} channels it gets")
    if x.channels != channels:
        t.fail(full, f"{full} (AdaGroupNorm) is built for {channels} channels: its scale cannot broadcast over"
                     f" the {x.channels} channels it gets from {x.source}")
    return Act(channels, x.size, full)


def resnet_block_cond_norm_2d(t: Tracer, name: str, x: Act, ctx: Ctx, in_channels: int, out_channels: int,
                              groups_out: int, conv_2d_out_channels: int | None = None) -> Act:
    """``ResnetBlockCondNorm2D(time_embedding_norm="ada_group", conv_shortcut_bias=False)``:
    norm1 -> conv1 -> norm2 -> conv2 (to ``conv_2d_out_channels``), + a bias-free 1x1 shortcut."""
    conv_out = conv_2d_out_channels or out_channels
    shortcut = in_channels != conv_out
    note = f"{in_channels}->{conv_out}, AdaGroupNorm" + (" +1x1 shortcut" if shortcut else "")
    with t.unit(name, "resnet", "ResnetBlockCondNorm2D", x, note) as u:
        h = ada_group_norm(t, "norm1", x, ctx, in_channels, in_channels // GROUP_SIZE)
        h = t.conv("conv1", h, in_channels, out_channels, 3, 1, 1)
        h = ada_group_norm(t, "norm2", h, ctx, out_channels, groups_out)
        h = t.conv("conv2", h, out_channels, conv_out, 3, 1, 1)
        if shortcut:
            t.conv("conv_shortcut", x, in_channels, conv_out, 1, 1, 0, bias=False)
        return u.done(h)


def k_attention_block(t: Tracer, name: str, x: Act, ctx: Ctx, dim: int, head_dim: int, cross_dim: int | None,
                      self_attention: bool) -> Act:
    """``KAttentionBlock``: (norm1 -> attn1 +) norm2 -> attn2 (to the context) + residual, no feed-forward."""
    heads = dim // head_dim
    expects = f"expects a {cross_dim}-d context" if cross_dim is not None else "no context width"
    note = f"{heads} heads x {head_dim}, {'self + ' if self_attention else ''}cross, {expects}"
    groups = max(1, dim // GROUP_SIZE)
    tokens = 1
    for d in x.size or (1,):
        tokens *= d
    with t.unit(name, "attention", "KAttentionBlock", x, note) as u:
        if self_attention:
            h = ada_group_norm(t, "norm1", x, ctx, dim, groups)
            attention(t, "attn1", Act(dim, None, h.source, tokens), dim, heads, head_dim, None, spatial=False)
        h = ada_group_norm(t, "norm2", x, ctx, dim, groups)
        # attn2: cross_attention_norm="layer_norm"; UNet2DModel passes no context, and it attends to the image
        attention(t, "attn2", Act(dim, None, h.source, tokens), dim, heads, head_dim, None, context=ctx.context,
                  spatial=False, context_dim=cross_dim if cross_dim is not None else dim, norm_cross=True)
        return u.done(Act(dim, x.size, ""))


def k_downsample_2d(t: Tracer, name: str, x: Act) -> Act:
    """``KDownsample2D``: reflect-pad 1, then F.conv2d with the [1, 3, 3, 1]/8 kernel on the diagonal, stride 2."""
    full, size = t.path(name), x.size or (1, 1)
    if min(size) < 2:  # F.pad(mode="reflect") needs the padding (1) to be smaller than each side
        t.fail(full, f"{full} (KDownsample2D): reflect padding 1 needs every side above 1, gets {fmt_size(size)}")
    out = tuple(max(1, (d + 2 - 4) // 2 + 1) for d in size)
    with t.unit(name, "downsample", "KDownsample2D", x, "4x4 kernel, reflect pad 1, stride 2") as u:
        t.fixed_conv("", Act(x.channels, tuple(d + 2 for d in size), x.source), out, 4, 2)
        return u.done(Act(x.channels, out, u.path), new=False)  # the module returns it: its `from`


def k_upsample_2d(t: Tracer, name: str, x: Act) -> Act:
    """``KUpsample2D``: reflect-pad 1, then a fixed transposed conv, stride 2, padding 3: H -> 2 H."""
    full, size = t.path(name), x.size or (1, 1)
    if min(size) < 2:
        t.fail(full, f"{full} (KUpsample2D): reflect padding 1 needs every side above 1, gets {fmt_size(size)}")
    out = tuple(2 * d for d in size)
    with t.unit(name, "upsample", "KUpsample2D", x, "4x4 kernel, reflect pad 1, transposed stride 2") as u:
        t.fixed_conv("", Act(x.channels, tuple(d + 2 for d in size), x.source), out, 4, 2, 3, transpose=True)
        return u.done(Act(x.channels, out, u.path), new=False)


def k_down_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx) -> Act:
    """KDownBlock2D / KCrossAttnDownBlock2D; the cross one attends to itself too when it has no downsampler."""
    cross = b.type == "KCrossAttnDownBlock2D"
    with t.block(f"down_blocks.{i}", f"{b.type} {b.in_channels}->{b.out_channels}", order=K_ORDER):
        for j in range(b.num_layers):
            in_channels = b.in_channels if j == 0 else b.out_channels
            x = resnet_block_cond_norm_2d(t, f"resnets.{j}", x, ctx, in_channels, b.out_channels,
                                          b.out_channels // GROUP_SIZE)
            if cross:
                x = k_attention_block(t, f"attentions.{j}", x, ctx, b.out_channels, b.attention_head_dim or 1,
                                      b.cross_attention_dim, self_attention=not b.add_sampler)
            t.push(x, empty=cross and not b.add_sampler)  # output_states += (None,) without a downsampler
        if b.add_sampler:
            x = k_downsample_2d(t, "downsamplers.0", x)
    return x


def k_up_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx, forward_upsample_size: bool) -> Act:
    """KUpBlock2D / KCrossAttnUpBlock2D: ``num_layers - 1`` resnets from ``2 * out_channels`` (the first cross
    block, ``in == out == temb_channels``, from ``out_channels``, with self-attention) to ``in_channels``."""
    cross = b.type == "KCrossAttnUpBlock2D"
    temb = ctx.temb.channels if ctx.temb_channels is None else ctx.temb_channels
    first = cross and b.in_channels == b.out_channels == temb
    middle = b.in_channels != b.out_channels
    k_in, k_out, n = (b.out_channels if first else 2 * b.out_channels), b.in_channels, b.num_layers
    with t.block(f"up_blocks.{i}", f"{b.type} {b.prev_output_channel}->{b.out_channels}", order=K_ORDER) as path:
        # res_samples = down_block_res_samples[-len(resnets):] ([-0:] takes them all); only [-1] is used
        entries = [t.pop_entry(path) for _ in range(t.depth() if n == 0 else min(n, t.depth()))]
        if not entries:
            t.fail(path, f"{path}: res_hidden_states_tuple[-1] of an empty tuple (no skip is left)")
        if forward_upsample_size and (t.peek_is_none() or not t.depth()):
            t.fail("", f"upsample_size = down_block_res_samples[-1].shape before {path}: the entry is "
                       f"{'None' if t.depth() else 'missing'}")
        if entries and entries[0] is not None:
            # no resnet: the next module to run (the upsampler, or one past this block) takes the concat
            x = t.cat([x, entries[0]], into="resnets.0" if n else ("upsamplers.0" if b.add_sampler else None))
        for j in range(n):
            in_channels, last = (k_in if j == 0 else b.out_channels), j == n - 1
            if cross:
                x = resnet_block_cond_norm_2d(t, f"resnets.{j}", x, ctx, in_channels, b.out_channels,
                                              b.out_channels // GROUP_SIZE, k_out if middle and last else None)
                dim = k_out if last else b.out_channels
                x = k_attention_block(t, f"attentions.{j}", x, ctx, dim, b.attention_head_dim or 1,
                                      b.cross_attention_dim, self_attention=first)
            else:
                x = resnet_block_cond_norm_2d(t, f"resnets.{j}", x, ctx, in_channels,
                                              k_out if last else b.out_channels, b.out_channels // GROUP_SIZE)
        if b.add_sampler:
            x = k_upsample_2d(t, "upsamplers.0", x)
    return x
