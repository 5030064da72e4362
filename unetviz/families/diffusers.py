"""diffusers 0.42 ``UNet2DModel`` and ``UNet2DConditionModel`` (models/unets/unet_2d*.py).

Read beside the upstream ``__init__``/``forward``: the same names, the same order. Registration
order (``state_dict`` order) is conv_in, time_proj, time_embedding, ..., down_blocks, up_blocks,
mid_block, conv_norm_out, conv_out: the two ModuleLists are created before the mid block.
"""

from __future__ import annotations

from typing import Any

from ..config import Args
from ..errors import UnetvizError, bad_value
from ..records import Size
from ..tracer import Act, Tracer
from .diffusers_blocks import DOWN_BLOCK_TYPES, UP_BLOCK_TYPES, BlockSpec, down_block, mid_block, up_block
from .diffusers_parts import Ctx, timestep_embedding

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

TEXT_TOKENS = 77  # CLIP's sequence length: the context every Stable Diffusion pipeline passes


def _types(a: Args, key: str, allowed: tuple[str, ...]) -> list[str]:
    # upstream strips a "UNetRes" prefix before dispatching
    raw = a.raw(key)
    if isinstance(raw, (list, tuple)):
        a.values[key] = [s[7:] if isinstance(s, str) and s.startswith("UNetRes") else s for s in raw]
    return a.str_list(key, allowed)


def _common(a: Args) -> tuple[list[str], list[str], list[int]]:
    down = _types(a, "down_block_types", DOWN_BLOCK_TYPES)
    up = _types(a, "up_block_types", UP_BLOCK_TYPES)
    if len(up) != len(down):
        raise UnetvizError(f"up_block_types has {len(up)} entries but down_block_types has {len(down)}")
    channels = a.int_list("block_out_channels", 1, len(down))
    if a.raw("norm_num_groups") is None:
        raise bad_value("norm_num_groups", None, "an integer (its blocks need GroupNorm groups)")
    a.choice("resnet_time_scale_shift", ("default", "scale_shift"))
    return down, up, channels


def _sample(t: Tracer, a: Args, size: Size | None) -> Act:
    in_channels = a.int("in_channels", 1)
    if size is not None:
        return t.start(in_channels, size, "--size")
    s = a.raw("sample_size")
    if s is None:
        return t.start(in_channels, (64, 64), "family default (sample_size is null)")
    if isinstance(s, (list, tuple)) and len(s) == 2:
        return t.start(in_channels, (a.int("sample_size", 1, s[0]), a.int("sample_size", 1, s[1])), "sample_size")
    n = a.int("sample_size", 1)
    return t.start(in_channels, (n, n), "sample_size")


def _finish(t: Tracer, a: Args, x: Act, c0: int) -> Act:
    x = t.group_norm("conv_norm_out", x, a.int("norm_num_groups", 1), c0)
    k = a.int("conv_out_kernel", 1) if "conv_out_kernel" in a.values else 3
    with t.unit("conv_out", "conv", "Conv2d", x) as u:
        return u.done(t.conv("", x, c0, a.int("out_channels", 1), k, 1, (k - 1) // 2), new=False)


def unet2d(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet2DModel``: unconditional (or class-conditional) pixel-space U-Net."""
    down, up, boc = _common(a)
    for key, types in (("down_block_types", down), ("up_block_types", up)):
        cross = [b for b in types if b.startswith("CrossAttn")]
        if cross:  # get_*_block raises: UNet2DModel passes no cross_attention_dim
            known = UP_BLOCK_TYPES if key == "up_block_types" else DOWN_BLOCK_TYPES
            raise UnetvizError(f"{key}: {cross[0]!r} needs cross_attention_dim, which UNet2DModel does not have;"
                               f" allowed: {', '.join(b for b in known if not b.startswith('CrossAttn'))}")
    t.declare(("conv_in", "time_proj", "time_embedding", "class_embedding", "down_blocks", "up_blocks",
               "mid_block", "conv_norm_out", "conv_act", "conv_out"))
    sample = _sample(t, a, size)
    c0, n = boc[0], len(boc)
    time_embed_dim = a.opt_int("time_embedding_dim", 1) or c0 * 4
    kind = a.choice("time_embedding_type", ("positional", "fourier", "learned"))
    timestep = Act(0, None, "timestep")  # shape (B,): no channel axis, as hooks see it
    if kind == "fourier":
        t_emb = t.owner("time_proj", "GaussianFourierProjection", timestep, Act(2 * c0, None, ""),
                        [("weight", (c0,))], "sin/cos of random frequencies")
    elif kind == "learned":
        t_emb = t.embedding("time_proj", a.int("num_train_timesteps", 1), c0)
    else:
        t_emb = Act(c0, None, "time_proj")  # Timesteps: sinusoidal, no parameters
    emb = timestep_embedding(t, "time_embedding", t_emb, t_emb.channels, time_embed_dim)
    cls = a.choice("class_embed_type", (None, "timestep", "identity"))
    if cls is None and a.opt_int("num_class_embeds", 1) is not None:
        t.embedding("class_embedding", a.int("num_class_embeds", 1), time_embed_dim)
    elif cls == "timestep":
        if kind == "fourier":
            raise UnetvizError("class_embed_type: 'timestep' with time_embedding_type 'fourier' runs time_proj"
                               " twice; unetviz does not trace that combination")
        timestep_embedding(t, "class_embedding", Act(c0, None, "time_proj"), c0, time_embed_dim)
    ctx = Ctx(Act(time_embed_dim, None, emb.source), a.int("norm_num_groups", 1),
              time_embedding_norm=a.raw("resnet_time_scale_shift"))
    with t.unit("conv_in", "conv", "Conv2d", sample) as u:
        x = u.done(t.conv("", sample, a.int("in_channels", 1), c0, 3, 1, 1), new=False)
    t.push(x)
    lpb = a.int("layers_per_block", 1)
    ahd = a.opt_int("attention_head_dim", 1)
    a.choice("downsample_type", ("conv", "resnet"))
    a.choice("upsample_type", ("conv", "resnet"))
    output_channel = c0
    for i, kind_ in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        final = i == n - 1
        spec = BlockSpec(kind_, lpb, input_channel, output_channel, not final, attention_head_dim=ahd or output_channel,
                         downsample_padding=a.int("downsample_padding"),
                         sampler_type=None if final else a.raw("downsample_type"))
        x = down_block(t, i, spec, x, ctx)
    if a.raw("mid_block_type") is not None:
        groups = a.int("norm_num_groups", 1)
        attn_groups = a.opt_int("attn_norm_num_groups", 1)
        if attn_groups is None:
            attn_groups = groups if a.raw("resnet_time_scale_shift") == "default" else None
        x = mid_block(t, "UNetMidBlock2D", x, ctx, boc[-1], 1, attn_head_dim=ahd or boc[-1],
                      attn_groups=attn_groups, add_attention=a.bool("add_attention"))
    rev = list(reversed(boc))
    output_channel = rev[0]
    for i, kind_ in enumerate(up):
        prev_output_channel, output_channel = output_channel, rev[i]
        input_channel = rev[min(i + 1, n - 1)]
        final = i == n - 1
        spec = BlockSpec(kind_, lpb + 1, input_channel, output_channel, not final, prev_output_channel,
                         attention_head_dim=ahd or output_channel,
                         sampler_type=None if final else a.raw("upsample_type"))
        x = up_block(t, i, spec, x, ctx, forward_upsample_size=False)  # UNet2DModel never passes it
    return _finish(t, a, x, c0)


def unet2d_condition(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet2DConditionModel``: the Stable Diffusion U-Net (SD 1.x, 2.x, SDXL)."""
    if a.raw("num_attention_heads") is not None:
        raise UnetvizError("num_attention_heads: must be null; diffusers 0.42 raises ValueError for it (set"
                           " attention_head_dim, which UNet2DConditionModel uses as the number of heads)")
    down, up, boc = _common(a)
    n = len(down)
    for key, allowed in (("dual_cross_attention", (False,)), ("attention_type", ("default",)),
                         ("addition_embed_type", (None, "text_time")), ("encoder_hid_dim_type", (None, "text_proj")),
                         ("time_embedding_type", ("positional", "fourier")), ("cross_attention_norm", (None,)),
                         ("mid_block_type", ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D", None)),
                         ("class_embed_type", (None, "timestep", "identity", "projection", "simple_projection"))):
        a.choice(key, allowed)
    t.declare(("conv_in", "time_proj", "time_embedding", "encoder_hid_proj", "class_embedding", "add_time_proj",
               "add_embedding", "time_embed_act", "down_blocks", "up_blocks", "mid_block", "conv_norm_out",
               "conv_act", "conv_out"))
    sample = _sample(t, a, size)
    c0 = boc[0]
    heads = a.per_block("attention_head_dim", n)
    cross = a.per_block("cross_attention_dim", n)
    lpb = a.per_block("layers_per_block", n)
    tlpb = _transformer_layers(a, n, lpb)
    oca = a.raw("only_cross_attention")
    if isinstance(oca, bool):
        only_cross = [oca] * n
    elif isinstance(oca, (list, tuple)) and len(oca) == n and all(isinstance(v, bool) for v in oca):
        only_cross = list(oca)
    else:
        raise bad_value("only_cross_attention", oca, f"true/false or a list of {n} booleans")
    # 1. time
    if a.raw("time_embedding_type") == "fourier":
        time_embed_dim = a.opt_int("time_embedding_dim", 2) or c0 * 2
        if time_embed_dim % 2:
            raise bad_value("time_embedding_dim", time_embed_dim, "an even number with fourier embeddings")
        t_emb = t.owner("time_proj", "GaussianFourierProjection", Act(0, None, "timestep"),
                        Act(time_embed_dim, None, ""), [("weight", (time_embed_dim // 2,))])
    else:
        time_embed_dim = a.opt_int("time_embedding_dim", 1) or c0 * 4
        t_emb = Act(c0, None, "time_proj")
    emb = timestep_embedding(t, "time_embedding", t_emb, t_emb.channels, time_embed_dim,
                             a.opt_int("time_cond_proj_dim", 1))
    cls = a.raw("class_embed_type")
    proj_dim = a.opt_int("projection_class_embeddings_input_dim", 1)
    if cls is None and a.opt_int("num_class_embeds", 1) is not None:
        t.embedding("class_embedding", a.int("num_class_embeds", 1), time_embed_dim)
    elif cls == "timestep":
        if a.raw("time_embedding_type") == "fourier":
            raise UnetvizError("class_embed_type: 'timestep' with time_embedding_type 'fourier' runs time_proj"
                               " twice; unetviz does not trace that combination")
        timestep_embedding(t, "class_embedding", Act(c0, None, "time_proj"), c0, time_embed_dim)
    elif cls in ("projection", "simple_projection"):
        if proj_dim is None:
            raise UnetvizError(f"projection_class_embeddings_input_dim: required by class_embed_type {cls!r}")
        if cls == "projection":
            timestep_embedding(t, "class_embedding", Act(proj_dim, None, "class_labels"), proj_dim, time_embed_dim)
        else:
            t.linear("class_embedding", Act(proj_dim, None, "class_labels"), proj_dim, time_embed_dim)
    blocks_time_embed_dim = time_embed_dim * (2 if a.bool("class_embeddings_concat") else 1)
    if a.raw("addition_embed_type") == "text_time":
        if proj_dim is None or a.opt_int("addition_time_embed_dim", 1) is None:
            raise UnetvizError("addition_embed_type: 'text_time' needs projection_class_embeddings_input_dim and"
                               " addition_time_embed_dim")
        timestep_embedding(t, "add_embedding", Act(proj_dim, None, "text_embeds+time_ids"), proj_dim, time_embed_dim)
    context = Act(cross[0], None, "encoder_hidden_states", TEXT_TOKENS)
    hid = a.opt_int("encoder_hid_dim", 1)
    if hid is not None:
        if a.raw("encoder_hid_dim_type") not in (None, "text_proj"):
            raise bad_value("encoder_hid_dim_type", a.raw("encoder_hid_dim_type"), (None, "text_proj"))
        context = t.linear("encoder_hid_proj", Act(hid, None, "encoder_hidden_states", TEXT_TOKENS), hid, cross[0])
    elif a.raw("encoder_hid_dim_type") is not None:
        raise UnetvizError(f"encoder_hid_dim: required when encoder_hid_dim_type is {a.raw('encoder_hid_dim_type')!r}")
    temb = Act(blocks_time_embed_dim, None, emb.source)
    groups = a.int("norm_num_groups", 1)
    k_in = a.int("conv_in_kernel", 1)
    with t.unit("conv_in", "conv", "Conv2d", sample) as u:
        x = u.done(t.conv("", sample, a.int("in_channels", 1), c0, k_in, 1, (k_in - 1) // 2), new=False)
    t.push(x)
    num_upsamplers = n - 1
    forward_upsample_size = any(d % (2 ** num_upsamplers) for d in sample.size or ())
    ulp = a.bool("use_linear_projection")
    output_channel = c0
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        ctx = Ctx(temb, groups, time_embedding_norm=a.raw("resnet_time_scale_shift"),
                  context=Act(cross[i], None, context.source, TEXT_TOKENS))
        spec = BlockSpec(kind, lpb[i], input_channel, output_channel, i != n - 1,
                         attention_head_dim=heads[i] or output_channel, num_attention_heads=heads[i],
                         transformer_layers=tlpb[0][i], use_linear_projection=ulp, only_cross_attention=only_cross[i],
                         downsample_padding=a.int("downsample_padding"), sampler_type="conv")
        x = down_block(t, i, spec, x, ctx)
    mid = a.raw("mid_block_type")
    if mid is not None:
        ctx = Ctx(temb, groups, time_embedding_norm=a.raw("resnet_time_scale_shift"),
                  context=Act(cross[-1], None, context.source, TEXT_TOKENS))
        cross_mid = mid == "UNetMidBlock2DCrossAttn"
        x = mid_block(t, mid, x, ctx, boc[-1], 1 if cross_mid else 0, attn_heads=heads[-1],
                      transformer_layers=tlpb[0][-1][0] if tlpb[0][-1] else 1, use_linear_projection=ulp,
                      add_attention=False)
    rev = list(reversed(boc))
    rheads, rcross, rlpb = list(reversed(heads)), list(reversed(cross)), list(reversed(lpb))
    output_channel = rev[0]
    for i, kind in enumerate(up):
        prev_output_channel, output_channel = output_channel, rev[i]
        input_channel = rev[min(i + 1, n - 1)]
        ctx = Ctx(temb, groups, time_embedding_norm=a.raw("resnet_time_scale_shift"),
                  context=Act(rcross[i], None, context.source, TEXT_TOKENS))
        spec = BlockSpec(kind, rlpb[i] + 1, input_channel, output_channel, i != n - 1, prev_output_channel,
                         attention_head_dim=heads[i] or output_channel, num_attention_heads=rheads[i],
                         transformer_layers=tlpb[1][i], use_linear_projection=ulp,
                         only_cross_attention=list(reversed(only_cross))[i], sampler_type="conv")
        x = up_block(t, i, spec, x, ctx, forward_upsample_size and i != n - 1)
    return _finish(t, a, x, c0)


def _transformer_layers(a: Args, n: int, lpb: list[int]) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Per-block, per-layer transformer depths for the down and the up path."""
    raw = a.raw("transformer_layers_per_block")
    if isinstance(raw, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in raw):
        if a.raw("reverse_transformer_layers_per_block") is None:
            raise UnetvizError("reverse_transformer_layers_per_block: required when transformer_layers_per_block"
                               " holds lists (an asymmetrical UNet)")
    down: list[tuple[int, ...]] = []
    per = raw if isinstance(raw, (list, tuple)) else [raw] * n
    if len(per) != n:
        raise UnetvizError(f"transformer_layers_per_block has {len(per)} entries but down_block_types has {n}")
    for i, v in enumerate(per):
        down.append(_depths(a, "transformer_layers_per_block", v, lpb[i]))
    rev_raw = a.raw("reverse_transformer_layers_per_block")
    if rev_raw is None:
        up = [_depths(a, "transformer_layers_per_block", per[n - 1 - i], lpb[n - 1 - i] + 1) for i in range(n)]
    else:
        if not isinstance(rev_raw, (list, tuple)) or len(rev_raw) != n:
            raise UnetvizError(f"reverse_transformer_layers_per_block: needs {n} entries, got {rev_raw!r}")
        up = [_depths(a, "reverse_transformer_layers_per_block", rev_raw[i], lpb[n - 1 - i] + 1) for i in range(n)]
    return down, up


def _depths(a: Args, key: str, v: Any, layers: int) -> tuple[int, ...]:
    if isinstance(v, (list, tuple)):
        if len(v) < layers:
            raise UnetvizError(f"{key}: entry {v!r} has {len(v)} depths but its block has {layers} layers")
        return tuple(a.int(key, 1, d) for d in v[:layers])
    return (a.int(key, 1, v),) * layers
