"""diffusers 0.42 U-Net blocks (unets/unet_2d_blocks.py): the down, mid and up blocks unetviz traces.

Each block registers ``attentions`` before ``resnets`` (that decides ``state_dict`` order) but
runs resnet, attention, resnet, attention, ... then its sampler.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.tracer import Act, Tracer
from .parts import (
    Ctx,
    attention,
    downsample_2d,
    dual_transformer_2d,
    resnet_block_2d,
    transformer_2d,
    upsample_2d,
)
from .simple import AddedKV, added_kv_attention

DOWN_BLOCK_TYPES = ("DownBlock2D", "AttnDownBlock2D", "CrossAttnDownBlock2D", "ResnetDownsampleBlock2D")
"""The down blocks every model here (ControlNetModel too) traces with the generic loop below."""
UP_BLOCK_TYPES = ("UpBlock2D", "AttnUpBlock2D", "CrossAttnUpBlock2D", "ResnetUpsampleBlock2D")
SIMPLE_DOWN, SIMPLE_UP = "SimpleCrossAttnDownBlock2D", "SimpleCrossAttnUpBlock2D"
ORDER = ("attentions", "resnets", "downsamplers", "upsamplers")


@dataclass(frozen=True)
class BlockSpec:
    """The keyword arguments ``get_down_block`` / ``get_up_block`` hand to one block."""

    type: str
    num_layers: int
    in_channels: int
    out_channels: int
    add_sampler: bool
    prev_output_channel: int = 0
    attention_head_dim: int | None = None
    """AttnDown/UpBlock2D: the real head dim (heads = out_channels // attention_head_dim)."""
    num_attention_heads: int = 1
    """CrossAttn blocks: the number of heads (diffusers' attention_head_dim naming quirk)."""
    transformer_layers: tuple[int, ...] = ()
    cross_attention_dim: int | None = None
    """CrossAttn blocks: the context width attn2's to_k/to_v are built for."""
    use_linear_projection: bool = False
    only_cross_attention: bool = False
    downsample_padding: int = 1
    sampler_type: str | None = "conv"
    """AttnDown/UpBlock2D's downsample_type / upsample_type: "conv", "resnet", anything else = none."""
    added_kv: AddedKV | None = None
    """SimpleCrossAttn blocks: how their added-k/v attentions are built."""
    dual: bool = False
    """CrossAttn blocks with ``dual_cross_attention``: DualTransformer2DModel in place of Transformer2DModel."""


def _attend(t: Tracer, b: BlockSpec, j: int, x: Act, ctx: Ctx) -> Act:
    name = f"attentions.{j}"
    if b.type.startswith("Attn"):
        dim = b.attention_head_dim or b.out_channels
        # heads = out_channels // attention_head_dim may be 0: built, but the forward divides by it
        return attention(t, name, x, b.out_channels, b.out_channels // dim, dim, ctx.groups)
    if b.added_kv is not None:
        return added_kv_attention(t, name, x, ctx, b.out_channels, b.added_kv, ctx.groups)
    if b.type.startswith("CrossAttn") and b.dual:
        heads = b.num_attention_heads
        return dual_transformer_2d(t, name, x, ctx, heads, b.out_channels // heads, b.out_channels, ctx.groups,
                                   b.cross_attention_dim)
    if b.type.startswith("CrossAttn"):
        heads = b.num_attention_heads
        return transformer_2d(t, name, x, ctx, heads, b.out_channels // heads, b.out_channels,
                              b.transformer_layers[j], ctx.groups, b.use_linear_projection,
                              b.only_cross_attention, b.cross_attention_dim)
    return x


def _sampler(b: BlockSpec) -> str | None:
    """Which sampler the block has: "conv", "resnet" or None."""
    if not b.add_sampler:
        return None
    if b.type in ("ResnetDownsampleBlock2D", "ResnetUpsampleBlock2D", SIMPLE_DOWN, SIMPLE_UP):
        return "resnet"
    if b.type in ("AttnDownBlock2D", "AttnUpBlock2D"):
        return b.sampler_type if b.sampler_type in ("conv", "resnet") else None
    return "conv"


def down_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx) -> Act:
    """DownBlock2D / AttnDownBlock2D / CrossAttnDownBlock2D / ResnetDownsampleBlock2D."""
    title = f"{b.type} {b.in_channels}->{b.out_channels}"
    with t.block(f"down_blocks.{i}", title, order=ORDER):
        for j in range(b.num_layers):
            in_channels = b.in_channels if j == 0 else b.out_channels
            x = resnet_block_2d(t, f"resnets.{j}", x, ctx, in_channels, b.out_channels)
            x = _attend(t, b, j, x, ctx)
            t.push(x)  # output_states += (hidden_states,)
        sampler = _sampler(b)
        if sampler is not None:
            if sampler == "resnet":
                x = resnet_block_2d(t, "downsamplers.0", x, ctx, b.out_channels, b.out_channels, down=True,
                                    kind="downsample")
            else:
                x = downsample_2d(t, "downsamplers.0", x, b.out_channels, b.out_channels, b.downsample_padding)
            t.push(x)
    return x


def up_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx, forward_upsample_size: bool) -> Act:
    """UpBlock2D / AttnUpBlock2D / CrossAttnUpBlock2D / ResnetUpsampleBlock2D.

    Resnet ``j`` takes ``prev_output_channel`` (j == 0) or ``out_channels``, plus a skip of
    ``in_channels`` (the last resnet) or ``out_channels``: that is why there is one more resnet
    than in the down block, and why the last one is narrower.
    """
    title = f"{b.type} {b.prev_output_channel}->{b.out_channels}"
    with t.block(f"up_blocks.{i}", title, order=ORDER):
        if b.num_layers == 0:
            # res_samples = down_block_res_samples[-0:]: a block without resnets takes every skip left
            while t.depth():
                t.pop_entry(t.path())
        for j in range(b.num_layers):
            res_skip_channels = b.in_channels if j == b.num_layers - 1 else b.out_channels
            resnet_in_channels = b.prev_output_channel if j == 0 else b.out_channels
            name = f"resnets.{j}"
            skip = t.pop(name)  # res_hidden_states_tuple[-1]
            x = t.cat([x, skip], into=name)
            x = resnet_block_2d(t, name, x, ctx, resnet_in_channels + res_skip_channels, b.out_channels)
            x = _attend(t, b, j, x, ctx)
        sampler = _sampler(b)
        if sampler is not None:
            # UNet2DConditionModel hands the next skip's size down when the input is not divisible
            upsample_size = t.peek_size() if forward_upsample_size else None
            if sampler == "resnet":
                x = resnet_block_2d(t, "upsamplers.0", x, ctx, b.out_channels, b.out_channels, up=True,
                                    kind="upsample")
            elif b.type == "AttnUpBlock2D":
                x = upsample_2d(t, "upsamplers.0", x, b.out_channels, b.out_channels, None)  # ignores it
            else:
                x = upsample_2d(t, "upsamplers.0", x, b.out_channels, b.out_channels,
                                tuple(upsample_size) if upsample_size else None)
    return x


def mid_block(t: Tracer, kind: str, x: Act, ctx: Ctx, channels: int, num_layers: int, *,
              attn_heads: int = 1, attn_head_dim: int | None = None, attn_groups: int | None = None,
              add_attention: bool = True, transformer_layers: int = 1,
              use_linear_projection: bool = False, cross_dim: int | None = None, dual: bool = False) -> Act:
    """UNetMidBlock2D (self-attention or none) or UNetMidBlock2DCrossAttn: resnet, (attn, resnet) x n."""
    with t.block("mid_block", kind, order=("attentions", "resnets")):
        x = resnet_block_2d(t, "resnets.0", x, ctx, channels, channels)
        for j in range(num_layers):
            name = f"attentions.{j}"
            if kind == "UNetMidBlock2DCrossAttn" and dual:
                x = dual_transformer_2d(t, name, x, ctx, attn_heads, channels // attn_heads, channels, ctx.groups,
                                        cross_dim)
            elif kind == "UNetMidBlock2DCrossAttn":
                x = transformer_2d(t, name, x, ctx, attn_heads, channels // attn_heads, channels,
                                   transformer_layers, ctx.groups, use_linear_projection, cross_dim=cross_dim)
            elif add_attention:
                dim = attn_head_dim or channels
                x = attention(t, name, x, channels, channels // dim, dim, attn_groups)
            x = resnet_block_2d(t, f"resnets.{j + 1}", x, ctx, channels, channels)
    return x
