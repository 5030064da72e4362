"""diffusers 0.42 ``UNet2DModel`` and ``UNet2DConditionModel`` (models/unets/unet_2d*.py).

Read beside the upstream ``__init__``/``forward``: the same names, the same order. Registration
order (``state_dict`` order) is conv_in, time_proj, time_embedding, ..., down_blocks, up_blocks,
mid_block, conv_norm_out, conv_out: the two ModuleLists are created before the mid block.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...core.config import MAX_INT, Args
from ...core.errors import NotTraced, UnetvizError, bad_value
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from .blocks import (
    DOWN_BLOCK_TYPES,
    SIMPLE_DOWN,
    SIMPLE_UP,
    UP_BLOCK_TYPES,
    BlockSpec,
    down_block,
    mid_block,
    up_block,
)
from .cond import _check_config, block_specs, other_options
from .embed import (
    UNSUPPORTED,
    activation,
    embedding,
    embeddings,
    step_one,
)
from .gligen import position_net, positive_len
from .k import K_DOWN, K_UP, k_down_block, k_up_block
from .parts import Ctx, timestep_embedding
from .simple import simple_mid_block
from .skip import SKIP_DOWN, SKIP_UP, skip_down_block, skip_up_block

__all__ = ["UNET2D_CONDITION_DEFAULTS", "UNET2D_DEFAULTS", "unet2d", "unet2d_condition"]

UNET2D_DEFAULTS: dict[str, Any] = {
    "sample_size": None, "in_channels": 3, "out_channels": 3, "center_input_sample": False,
    "time_embedding_type": "positional", "time_embedding_dim": None, "freq_shift": 0, "flip_sin_to_cos": True,
    "down_block_types": ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "mid_block_type": "UNetMidBlock2D",
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [224, 448, 672, 896], "layers_per_block": 2, "mid_block_scale_factor": 1,
    "downsample_padding": 1, "downsample_type": "conv", "upsample_type": "conv", "dropout": 0.0,
    "act_fn": "silu", "attention_head_dim": 8, "norm_num_groups": 32, "attn_norm_num_groups": None,
    "norm_eps": 1e-5, "resnet_time_scale_shift": "default", "add_attention": True, "class_embed_type": None,
    "num_class_embeds": None, "num_train_timesteps": None,
}

UNET2D_CONDITION_DEFAULTS: dict[str, Any] = {
    "sample_size": None, "in_channels": 4, "out_channels": 4, "center_input_sample": False,
    "flip_sin_to_cos": True, "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "only_cross_attention": False, "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2,
    "downsample_padding": 1, "mid_block_scale_factor": 1, "dropout": 0.0, "act_fn": "silu",
    "norm_num_groups": 32, "norm_eps": 1e-5, "cross_attention_dim": 1280, "transformer_layers_per_block": 1,
    "reverse_transformer_layers_per_block": None, "encoder_hid_dim": None, "encoder_hid_dim_type": None,
    "attention_head_dim": 8, "num_attention_heads": None, "dual_cross_attention": False,
    "use_linear_projection": False, "class_embed_type": None, "addition_embed_type": None,
    "addition_time_embed_dim": None, "num_class_embeds": None, "upcast_attention": False,
    "resnet_time_scale_shift": "default", "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional", "time_embedding_dim": None, "time_embedding_act_fn": None,
    "timestep_post_act": None, "time_cond_proj_dim": None, "conv_in_kernel": 3, "conv_out_kernel": 3,
    "projection_class_embeddings_input_dim": None, "attention_type": "default",
    "class_embeddings_concat": False, "mid_block_only_cross_attention": None, "cross_attention_norm": None,
    "addition_embed_type_num_heads": 64,
}

ALL_DOWN = (*DOWN_BLOCK_TYPES, SIMPLE_DOWN, *SKIP_DOWN, *K_DOWN)
ALL_UP = (*UP_BLOCK_TYPES, SIMPLE_UP, *SKIP_UP, *K_UP)
OWN_GROUPS = (*SKIP_DOWN, *SKIP_UP, *K_DOWN, *K_UP)
"""Blocks that set their own norm groups: they build with ``norm_num_groups: null``."""
UPSTREAM_ONLY_BLOCKS = ("DownEncoderBlock2D", "AttnDownEncoderBlock2D", "UpDecoderBlock2D", "AttnUpDecoderBlock2D")
"""Block types get_down_block / get_up_block build that unetviz has no tracer for (yet)."""


def _types(a: Args, key: str, allowed: tuple[str, ...]) -> list[str]:
    raw = a.raw(key)
    # upstream strips a "UNetRes" prefix before dispatching
    value = [s[7:] if isinstance(s, str) and s.startswith("UNetRes") else s for s in raw] \
        if isinstance(raw, (list, tuple)) else raw
    if isinstance(value, list):
        other = next((b for b in value if b in UPSTREAM_ONLY_BLOCKS), None)
        if other is not None:
            raise NotTraced(f"{key}: {other!r}: {UNSUPPORTED} this block type; allowed: {', '.join(allowed)}")
    return a.str_list(key, allowed, value=value)


def _common(a: Args) -> tuple[list[str], list[str], list[int]]:
    """What both models' constructors check alike (lengths, channels, norms, activation, dropout)."""
    down = _types(a, "down_block_types", ALL_DOWN)
    up = _types(a, "up_block_types", ALL_UP)
    if len(up) != len(down):
        raise UnetvizError(f"up_block_types has {len(up)} entries but down_block_types has {len(down)}")
    channels = a.int_list("block_out_channels", 1, len(down))
    if a.raw("norm_num_groups") is None and any(b not in OWN_GROUPS for b in (*down, *up)):
        other = next(b for b in (*down, *up) if b not in OWN_GROUPS)
        raise bad_value("norm_num_groups", None, f"an integer ({other} needs GroupNorm groups)")
    a.opt_int("norm_num_groups", 1)
    only_k = all(b in (*K_DOWN, *K_UP) for b in (*down, *up))
    if only_k and a.raw("mid_block_type") is None:
        pass  # k-diffusion blocks never read resnet_time_scale_shift, and no mid block is built
    elif only_k and a.raw("resnet_time_scale_shift") == "spatial":  # the mid block builds SpatialNorm resnets
        raise NotTraced(f"resnet_time_scale_shift: 'spatial' builds SpatialNorm resnets in the mid block:"
                        f" {UNSUPPORTED} them; allowed: 'default', 'scale_shift'")
    else:
        a.choice("resnet_time_scale_shift", ("default", "scale_shift"))
    activation(a, "act_fn")
    dropout = a.float("dropout")
    if not 0 <= dropout <= 1:
        raise bad_value("dropout", a.raw("dropout"), "a probability from 0 to 1 (nn.Dropout)")
    return down, up, channels


def _sample(t: Tracer, a: Args, size: Size | None, hint: int = 0) -> Act:
    """The caller's ``sample``; ``hint``: channels the model concatenates to it before conv_in (image_hint)."""
    in_channels = max(1, a.int("in_channels", 1) - hint)
    if size is not None:
        return t.start(in_channels, size, "--size")
    s = a.raw("sample_size")
    if s is None:
        return t.start(in_channels, (64, 64), "family default (sample_size is null)")
    if isinstance(s, (list, tuple)) and len(s) == 2:
        return t.start(in_channels, (a.int("sample_size", 1, s[0]), a.int("sample_size", 1, s[1])), "sample_size")
    n = a.int("sample_size", 1)
    return t.start(in_channels, (n, n), "sample_size")


def _conv_in(t: Tracer, a: Args, sample: Act, c0: int, k: int = 3) -> Act:
    with t.unit("conv_in", "conv", "Conv2d", sample) as u:
        x = u.done(t.conv("", sample, a.int("in_channels", 1), c0, k, 1, (k - 1) // 2), new=False)
    t.push(x)  # down_block_res_samples = (sample,)
    return x


def _finish(t: Tracer, a: Args, x: Act, c0: int, norm_out: bool = True) -> Act:
    """# 6. post-process: conv_norm_out, conv_act, conv_out. ``norm_out``: without norm groups
    UNet2DConditionModel builds no conv_norm_out (UNet2DModel uses min(c0 // 4, 32) groups)."""
    groups = a.opt_int("norm_num_groups", 1)
    if groups is not None or norm_out:
        x = t.group_norm("conv_norm_out", x, min(c0 // 4, 32) if groups is None else groups, c0)
    k = a.int("conv_out_kernel", 1) if "conv_out_kernel" in a.values else 3
    with t.unit("conv_out", "conv", "Conv2d", x) as u:
        return u.done(t.conv("", x, c0, a.int("out_channels", 1), k, 1, (k - 1) // 2), new=False)


def _head_dim(a: Args, v: Any, channels: int) -> int:
    """AttnDown/UpBlock2D's and UNetMidBlock2D's attention_head_dim (None: the block's channels)."""
    return channels if v is None else a.int("attention_head_dim", 1, v)


def _unet2d_time(t: Tracer, a: Args, c0: int, ted: int) -> Act:
    """# 1. time of UNet2DModel: time_proj, time_embedding, then the class embedding added to it."""
    kind = a.choice("time_embedding_type", ("positional", "fourier", "learned"))

    def time_proj() -> Act:
        timestep = Act(0, None, "timestep")  # shape (B,): no channel axis, as hooks see it
        if kind == "fourier":
            return t.owner("time_proj", "GaussianFourierProjection", timestep, Act(2 * c0, None, ""),
                           [("weight", (c0,))], "sin/cos of random frequencies")
        if kind == "learned":
            return embedding(t, "time_proj", a.int("num_train_timesteps", 1), c0, "timestep")
        return Act(c0, None, "time_proj")  # Timesteps: sinusoidal, no parameters

    t_emb = time_proj()
    emb = timestep_embedding(t, "time_embedding", t_emb, t_emb.channels, ted)
    cls = a.raw("class_embed_type")  # any other value: no class_embedding (upstream's final else)
    if cls is None and a.opt_int("num_class_embeds", 1) is not None:
        embedding(t, "class_embedding", a.int("num_class_embeds", 1), ted, "class_labels")
    elif cls == "timestep":
        # class_labels = self.time_proj(class_labels): the same module runs a second time
        labels = time_proj()
        timestep_embedding(t, "class_embedding", labels, labels.channels, ted)
    return Act(ted, None, emb.source)


def _unet2d_blocks(a: Args, down: list[str], up: list[str],
                   boc: list[int]) -> tuple[list[BlockSpec], MidSpec | None, list[BlockSpec]]:
    """What UNet2DModel's get_down_block / UNetMidBlock2D / get_up_block calls are handed."""
    c0, n = boc[0], len(boc)
    lpb = a.int("layers_per_block", -MAX_INT)  # range(num_layers): a negative count builds no resnet
    ahd = a.raw("attention_head_dim")
    groups = a.opt_int("norm_num_groups", 1) or min(boc[-1] // 4, 32)  # UNetMidBlock2D's resnet_groups
    # the samplers AttnDown/UpBlock2D get: `downsample_type or "conv"`; an unknown one builds none
    down_type, up_type = a.raw("downsample_type") or "conv", a.raw("upsample_type") or "conv"
    down_specs = []
    output_channel = c0
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        attends = kind.startswith("Attn") or kind == "KCrossAttnDownBlock2D"
        head_dim = _head_dim(a, ahd, output_channel) if attends and lpb > 0 else None
        down_specs.append(BlockSpec(kind, max(0, lpb), input_channel, output_channel, i != n - 1,
                                    attention_head_dim=head_dim, downsample_padding=a.int("downsample_padding"),
                                    sampler_type=down_type))
    mid = None
    if a.raw("mid_block_type") is not None:  # any non-null value builds UNetMidBlock2D
        add_attention = a.flag("add_attention")
        attn_groups = a.opt_int("attn_norm_num_groups", 1) if add_attention else None
        if attn_groups is None:
            attn_groups = groups if a.raw("resnet_time_scale_shift") == "default" else None
        mid = MidSpec(attention_head_dim=_head_dim(a, ahd, boc[-1]) if add_attention else None,
                      attn_groups=attn_groups, add_attention=add_attention)
    rev = list(reversed(boc))
    up_specs = []
    output_channel = rev[0]
    for i, kind in enumerate(up):
        prev_output_channel, output_channel = output_channel, rev[i]
        attn = kind == "AttnSkipUpBlock2D" or (kind == "AttnUpBlock2D" and lpb + 1 > 0)  # the former: always one
        attn = attn or (kind == "KCrossAttnUpBlock2D" and lpb > 0)
        head_dim = _head_dim(a, ahd, output_channel) if attn else None
        resnets = max(0, lpb if kind in K_UP else lpb + 1)  # a K up block has num_layers - 1
        up_specs.append(BlockSpec(kind, resnets, rev[min(i + 1, n - 1)], output_channel, i != n - 1,
                                  prev_output_channel, attention_head_dim=head_dim, sampler_type=up_type))
    return down_specs, mid, up_specs


@dataclass(frozen=True, kw_only=True)
class MidSpec:
    """UNet2DModel's UNetMidBlock2D arguments."""

    attention_head_dim: int | None
    attn_groups: int | None
    add_attention: bool


def unet2d(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet2DModel``: unconditional (or class-conditional) pixel-space U-Net."""
    down, up, boc = _common(a)
    for key, types in (("down_block_types", down), ("up_block_types", up)):
        cross = [b for b in types if b.startswith(("CrossAttn", "SimpleCrossAttn"))]
        if cross:  # get_*_block raises: UNet2DModel passes no cross_attention_dim
            known = ALL_UP if key == "up_block_types" else ALL_DOWN
            raise UnetvizError(f"{key}: {cross[0]!r} needs cross_attention_dim, which UNet2DModel does not have;"
                               f" allowed: {', '.join(b for b in known if 'CrossAttn' not in b)}")
    c0, groups = boc[0], a.opt_int("norm_num_groups", 1) or 0  # 0: only skip blocks, which set their own
    down_specs, mid, up_specs = _unet2d_blocks(a, down, up, boc)
    ted = a.opt_int("time_embedding_dim", 0) or c0 * 4

    t.declare(("conv_in", "time_proj", "time_embedding", "class_embedding", "down_blocks", "up_blocks",
               "mid_block", "conv_norm_out", "conv_act", "conv_out"))
    sample = _sample(t, a, size)
    # 1. time
    emb = _unet2d_time(t, a, c0, ted)
    ctx = Ctx(emb, groups, time_embedding_norm=a.raw("resnet_time_scale_shift"))
    # 2. pre-process
    skip: Act | None = sample  # skip_sample = sample: the score-SDE blocks' image path
    x = _conv_in(t, a, sample, c0)
    # 3. down
    for i, spec in enumerate(down_specs):
        if spec.type in SKIP_DOWN and skip is not None:
            x, skip = skip_down_block(t, i, spec, x, ctx, skip)
        elif spec.type in K_DOWN:
            x = k_down_block(t, i, spec, x, ctx)
        else:
            x = down_block(t, i, spec, x, ctx)
    # 4. mid
    if mid is not None:
        x = mid_block(t, "UNetMidBlock2D", x, replace(ctx, groups=ctx.groups or min(boc[-1] // 4, 32)), boc[-1], 1,
                      attn_head_dim=mid.attention_head_dim, attn_groups=mid.attn_groups,
                      add_attention=mid.add_attention)
    # 5. up
    skip = None
    for i, spec in enumerate(up_specs):
        if spec.type in SKIP_UP:
            x, skip = skip_up_block(t, i, spec, x, ctx, skip)
        elif spec.type in K_UP:
            x = k_up_block(t, i, spec, x, ctx, forward_upsample_size=False)
        else:
            x = up_block(t, i, spec, x, ctx, forward_upsample_size=False)  # UNet2DModel never passes it
    # 6. post-process
    out = _finish(t, a, x, c0)
    if skip is not None and (skip.channels, skip.size) != (out.channels, out.size):  # sample += skip_sample
        t.fail("", f"sample += skip_sample: the output is {out.channels}ch {fmt_size(out.size)}, the image path"
                   f" {skip.channels}ch {fmt_size(skip.size)}")
    return out


def unet2d_condition(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet2DConditionModel``: the Stable Diffusion U-Net (SD 1.x, 2.x, SDXL)."""
    if a.raw("num_attention_heads") is not None:
        raise UnetvizError("num_attention_heads: must be null; diffusers 0.42 raises ValueError for it (set"
                           " attention_head_dim, which UNet2DConditionModel uses as the number of heads)")
    down, up, boc = _common(a)
    pb = _check_config(a, len(down))
    e = embeddings(a, boc[0])
    other_options(a, down, up)
    mid = a.raw("mid_block_type")
    down_specs, mid_spec, up_specs = block_specs(a, down, up, boc, pb, mid)
    blocks_time_embed_dim = e.time_embed_dim * (2 if e.concat else 1)
    n, c0, groups = len(down), boc[0], a.opt_int("norm_num_groups", 1)

    gligen = positive_len(a)
    t.declare(("conv_in", "time_proj", "time_embedding", "encoder_hid_proj", "class_embedding", "add_time_proj",
               "add_embedding", "time_embed_act", "down_blocks", "up_blocks", "mid_block", "conv_norm_out",
               "conv_act", "conv_out", "position_net"))
    hint = e.added is not None and e.added.add_type == "image_hint"
    sample = _sample(t, a, size, hint=4 if hint else 0)
    # 1. time (and the class, added and context embeddings)
    emb, context, sample = step_one(t, e, c0, a.raw("cross_attention_dim"), sample, a.raw("dual_cross_attention"))
    # null groups: only blocks with their own (K blocks) and a mid block's min(channels // 4, 32) remain
    ctx = Ctx(emb, groups or min(boc[-1] // 4, 32), time_embedding_norm=a.raw("resnet_time_scale_shift"),
              context=context, temb_channels=blocks_time_embed_dim)
    # 2. pre-process
    x = _conv_in(t, a, sample, c0, a.int("conv_in_kernel", 1))
    if gligen is not None:  # 2.5 GLIGEN position net, with the boxes its pipeline passes
        ctx = replace(ctx, objs=position_net(t, str(a.raw("attention_type")), gligen))
    forward_upsample_size = any(d % (2 ** (n - 1)) for d in sample.size or ())
    # 3. down
    for i, spec in enumerate(down_specs):
        x = k_down_block(t, i, spec, x, ctx) if spec.type in K_DOWN else down_block(t, i, spec, x, ctx)
    # 4. mid
    if mid_spec is not None and mid_spec.added_kv is not None:
        x = simple_mid_block(t, x, ctx, boc[-1], mid_spec.added_kv, groups)  # None: its own fallback
    elif mid_spec is not None:
        x = mid_block(t, str(mid), x, ctx, boc[-1], 1 if mid == "UNetMidBlock2DCrossAttn" else 0,
                      attn_heads=mid_spec.num_attention_heads, transformer_layers=(*mid_spec.transformer_layers, 1)[0],
                      use_linear_projection=mid_spec.use_linear_projection, add_attention=False,
                      cross_dim=mid_spec.cross_attention_dim, dual=mid_spec.dual)
    # 5. up
    for i, spec in enumerate(up_specs):
        block = k_up_block if spec.type in K_UP else up_block
        x = block(t, i, spec, x, ctx, forward_upsample_size and i != n - 1)
    # 6. post-process
    return _finish(t, a, x, c0, norm_out=False)
