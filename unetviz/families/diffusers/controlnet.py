"""diffusers 0.42 ``ControlNetModel`` (models/controlnets/controlnet.py): a trainable copy of the U-Net's
encoder and mid block, fed the latent plus an image hint, that hands one residual per skip to the U-Net.

Read beside the upstream ``__init__``/``forward``. The hint goes through ``controlnet_cond_embedding``
(3x3 convs, each stride-2 one halving it) and is added to ``conv_in``'s output; every tensor the encoder
would push onto a U-Net's skip stack then goes through its own zero-initialised 1x1 conv
(``controlnet_down_blocks.N``), and the mid block's output through ``controlnet_mid_block``. The forward
returns ``(down residuals, mid residual)``; the trace's output is the first down residual (the first
tensor of that tuple, as hooks see it). The residuals are pushed onto the tracer's skip stack but never
popped: no ControlNet module consumes them; ``unetviz.analysis.controlnet_pair`` shows where a U-Net adds them.
"""

from __future__ import annotations

from typing import Any

from ...core.config import MAX_INT, Args
from ...core.errors import NotTraced, UnetvizError, bad_value
from ...core.inputs import TEXT_TOKENS
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from .blocks import DOWN_BLOCK_TYPES, BlockSpec, down_block, mid_block
from .embed import UNSUPPORTED, Embeds, activation, aug_embed, class_embed, time_embed
from .parts import Ctx

__all__ = ["CONTROLNET_DEFAULTS", "HINT_SCALE", "controlnet"]

CONTROLNET_DEFAULTS: dict[str, Any] = {
    "in_channels": 4, "conditioning_channels": 3, "flip_sin_to_cos": True, "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn", "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "downsample_padding": 1,
    "mid_block_scale_factor": 1, "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5,
    "cross_attention_dim": 1280, "transformer_layers_per_block": 1, "encoder_hid_dim": None,
    "encoder_hid_dim_type": None, "attention_head_dim": 8, "num_attention_heads": None,
    "use_linear_projection": False, "class_embed_type": None, "addition_embed_type": None,
    "addition_time_embed_dim": None, "num_class_embeds": None, "upcast_attention": False,
    "resnet_time_scale_shift": "default", "projection_class_embeddings_input_dim": None,
    "controlnet_conditioning_channel_order": "rgb", "conditioning_embedding_out_channels": [16, 32, 96, 256],
    "global_pool_conditions": False, "addition_embed_type_num_heads": 64,
}

HINT_SCALE = 8
"""The hint image is this many times the latent (the pipelines' ``vae_scale_factor``: SD's VAE downsamples 8x)."""
DEFAULT_SIZE = 64
"""ControlNetModel has no ``sample_size``: SD 1.5's 64x64 latent (a 512x512 image) unless ``--size`` says."""
MID_TYPES = ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D")


def _per_block(a: Args, key: str, value: Any, n: int) -> list[Any]:
    """An int (or anything) for every block, or a list that must have one entry per block."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise UnetvizError(f"{key} has {len(value)} entries but down_block_types has {n}")
        return list(value)
    return [value] * n


def _types(a: Args) -> list[str]:
    raw = a.raw("down_block_types")
    # get_down_block strips a "UNetRes" prefix before dispatching
    value = [s[7:] if isinstance(s, str) and s.startswith("UNetRes") else s for s in raw] \
        if isinstance(raw, (list, tuple)) else raw
    if isinstance(value, list):
        other = next((b for b in value if isinstance(b, str) and b not in DOWN_BLOCK_TYPES
                      and b.endswith("Block2D")), None)
        if other is not None:
            raise NotTraced(f"down_block_types: {other!r}: {UNSUPPORTED} this block type in a ControlNet;"
                               f" allowed: {', '.join(DOWN_BLOCK_TYPES)}")
    return a.str_list("down_block_types", DOWN_BLOCK_TYPES, value=value)


def _heads(a: Args, v: Any, channels: int, where: str, depths: tuple[int, ...]) -> int:
    heads = a.int("num_attention_heads" if a.raw("num_attention_heads") is not None else "attention_head_dim", 1, v)
    if channels // heads < 1 and any(depths):  # without transformer blocks no Attention divides by it
        # Transformer2DModel(heads, channels // heads): a head size of 0, and 0 ** -0.5 raises in Attention
        raise UnetvizError(f"attention_head_dim: {heads} heads on the {channels} channels of {where} give a head"
                           f" size of 0; allowed: 1 to {channels} (ControlNetModel reads it as the head count)")
    return heads


def _depths(a: Args, v: Any, layers: int) -> tuple[int, ...]:
    """A transformer block's per-layer depths: an int for every layer, or a list indexed per layer."""
    key = "transformer_layers_per_block"
    if isinstance(v, (list, tuple)):
        if len(v) < layers:
            raise UnetvizError(f"{key}: entry {v!r} has {len(v)} depths but its block has {layers} layers")
        return tuple(max(0, a.int(key, -MAX_INT, d)) for d in v[:layers])
    return (max(0, a.int(key, -MAX_INT, v)),) * layers


def _block_specs(a: Args, down: list[str], boc: list[int]) -> tuple[list[BlockSpec], BlockSpec]:
    """What ``__init__`` hands get_down_block and the mid block, checked in its order."""
    n = len(down)
    heads_raw = a.raw("num_attention_heads") or a.raw("attention_head_dim")  # upstream's `or`: the naming quirk
    if not isinstance(heads_raw, (int, list, tuple)) or isinstance(heads_raw, bool):
        raise bad_value("attention_head_dim", heads_raw, f"an integer or a list of {n}")
    oca = a.raw("only_cross_attention")
    if not isinstance(oca, (bool, list, tuple)):
        raise bad_value("only_cross_attention", oca, f"true/false or a list of {n} booleans")
    only = [bool(v) for v in _per_block(a, "only_cross_attention", oca, n)]
    heads_key = "num_attention_heads" if a.raw("num_attention_heads") is not None else "attention_head_dim"
    heads = _per_block(a, heads_key, heads_raw, n)
    head_dims = _per_block(a, "attention_head_dim", a.raw("attention_head_dim"), n)
    depths_raw = a.raw("transformer_layers_per_block")
    depths = list(depths_raw) if isinstance(depths_raw, (list, tuple)) else [depths_raw] * n
    if len(depths) < n:  # transformer_layers_per_block[i] for every block
        raise UnetvizError(f"transformer_layers_per_block has {len(depths)} entries but down_block_types has {n}")
    layers = max(0, a.int("layers_per_block", -MAX_INT))  # range(layers_per_block): negative builds none
    cross = a.int("cross_attention_dim", 1)
    linear, padding = a.bool("use_linear_projection"), a.int("downsample_padding")
    specs = []
    output_channel = boc[0]
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        where = f"down_blocks.{i}"
        if kind == "CrossAttnDownBlock2D":
            block_depths = _depths(a, depths[i], layers)
            specs.append(BlockSpec(kind, layers, input_channel, output_channel, i != n - 1,
                                   num_attention_heads=_heads(a, heads[i], output_channel, where, block_depths)
                                   if layers else 1, transformer_layers=block_depths, cross_attention_dim=cross,
                                   use_linear_projection=linear, only_cross_attention=only[i],
                                   downsample_padding=padding))
            continue
        dim = None
        if kind == "AttnDownBlock2D" and layers:
            dim = output_channel if head_dims[i] is None else a.int("attention_head_dim", 1, head_dims[i])
        specs.append(BlockSpec(kind, layers, input_channel, output_channel, i != n - 1, attention_head_dim=dim,
                               downsample_padding=padding, sampler_type="conv"))
    mid_kind = a.raw("mid_block_type")
    if mid_kind not in MID_TYPES:  # no None here: upstream raises "unknown mid_block_type"
        raise bad_value("mid_block_type", mid_kind, MID_TYPES)
    mid = BlockSpec(str(mid_kind), 1, boc[-1], boc[-1], False, cross_attention_dim=cross, use_linear_projection=linear)
    if mid_kind == "UNetMidBlock2DCrossAttn":
        mid_depths = _depths(a, depths[-1], 1)
        mid = BlockSpec(str(mid_kind), 1, boc[-1], boc[-1], False, cross_attention_dim=cross,
                        use_linear_projection=linear,
                        num_attention_heads=_heads(a, heads[-1], boc[-1], "mid_block", mid_depths),
                        transformer_layers=mid_depths)
    return specs, mid


def _embeds(a: Args, c0: int) -> Embeds:
    """The constructor's time / encoder_hid / class / add embeddings (ControlNetModel's own subset)."""
    activation(a, "act_fn")
    if a.raw("encoder_hid_dim") is not None or a.raw("encoder_hid_dim_type") is not None:
        # built, but ControlNetModel.forward never runs encoder_hid_proj: weights no forward pass reaches
        raise NotTraced(f"encoder_hid_dim: {UNSUPPORTED} ControlNetModel's encoder_hid_proj (its forward never"
                           " runs it); allowed: None")
    kind, num = a.raw("class_embed_type"), a.opt_int("num_class_embeds", 1)
    proj = a.opt_int("projection_class_embeddings_input_dim", 1)
    if kind == "projection" and proj is None:
        raise UnetvizError("projection_class_embeddings_input_dim: required by class_embed_type 'projection'")
    # upstream's final else: any other class_embed_type (even 'simple_projection') builds no class_embedding
    cls = "embedding" if kind is None and num is not None else kind if kind in (
        "timestep", "identity", "projection") else None
    add = a.raw("addition_embed_type")
    if add in ("text", "text_image"):
        raise NotTraced(f"addition_embed_type: {add!r}: {UNSUPPORTED} it; allowed: None, 'text_time'")
    if add not in (None, "text_time"):
        raise bad_value("addition_embed_type", add, (None, "text", "text_image", "text_time"))
    add_dim = a.opt_int("addition_time_embed_dim", 1)
    if add == "text_time" and proj is None:
        raise bad_value("projection_class_embeddings_input_dim", None, "an integer with addition_embed_type"
                        " 'text_time' (add_embedding is TimestepEmbedding(projection_class_embeddings_input_dim, ...))")
    return Embeds(fourier=False, time_embed_dim=4 * c0, timestep_input_dim=c0, cond_proj_dim=None, class_type=cls,
                  num_class_embeds=num, proj_dim=proj, concat=False, hid_dim=None, text_time=add == "text_time",
                  add_time_dim=add_dim)


def _sample(t: Tracer, a: Args, size: Size | None) -> Act:
    in_channels = a.int("in_channels", 1)
    if size is None:
        return t.start(in_channels, (DEFAULT_SIZE, DEFAULT_SIZE), "family default (ControlNetModel has no"
                                                                 " sample_size: SD 1.5's latent)")
    return t.start(in_channels, tuple(size), "--size")


def cond_embedding(t: Tracer, hint: Act, channels: list[int], out_channels: int) -> Act:
    """``ControlNetConditioningEmbedding``: conv_in, (3x3 conv, 3x3 stride-2 conv) per step, conv_out."""
    title = f"ControlNetConditioningEmbedding {hint.channels}->{out_channels}, /{2 ** (len(channels) - 1)}"
    with t.block("controlnet_cond_embedding", title, order=("conv_in", "blocks", "conv_out")):
        with t.unit("conv_in", "conv", "Conv2d", hint) as u:
            h = u.done(t.conv("", hint, hint.channels, channels[0], 3, 1, 1), new=False)
        for i in range(len(channels) - 1):
            c_in, c_out = channels[i], channels[i + 1]
            with t.unit(f"blocks.{2 * i}", "conv", "Conv2d", h) as u:
                h = u.done(t.conv("", h, c_in, c_in, 3, 1, 1), new=False)
            with t.unit(f"blocks.{2 * i + 1}", "downsample", "Conv2d", h, "3x3 stride 2") as u:
                h = u.done(t.conv("", h, c_in, c_out, 3, 2, 1), new=False)
        with t.unit("conv_out", "conv", "Conv2d", h, "zero-initialised") as u:
            return u.done(t.conv("", h, channels[-1], out_channels, 3, 1, 1), new=False)


def _check(a: Args) -> tuple[list[str], list[int], list[int]]:
    """(down block types, block_out_channels, conditioning_embedding_out_channels), checked as upstream does."""
    down = _types(a)
    boc = a.int_list("block_out_channels", 1)
    if len(boc) != len(down):
        raise UnetvizError(f"block_out_channels has {len(boc)} entries but down_block_types has {len(down)}")
    if a.raw("norm_num_groups") is None:
        raise bad_value("norm_num_groups", None, "an integer (its blocks need GroupNorm groups)")
    a.int("norm_num_groups", 1)
    a.choice("resnet_time_scale_shift", ("default", "scale_shift"))
    a.float("mid_block_scale_factor")
    a.int("conditioning_channels", 1)
    a.bool("global_pool_conditions")
    if a.raw("conditioning_embedding_out_channels") is None:
        raise bad_value("conditioning_embedding_out_channels", None, "a non-empty list of integers")
    return down, boc, a.int_list("conditioning_embedding_out_channels", 1)


def _add_hint(t: Tracer, x: Act, hint: Act, hint_size: Size, n: int) -> Act:
    """``sample = sample + controlnet_cond``: torch broadcasting, so a size-1 side stretches to the other."""
    a, b = x.size or (), hint.size or ()
    if all(p == q or 1 in (p, q) for p, q in zip(a, b, strict=True)):
        return Act(x.channels, tuple(max(p, q) for p, q in zip(a, b, strict=True)), x.source)
    t.fail("", f"sample + controlnet_cond: conv_in gives {fmt_size(x.size)} but the {fmt_size(hint_size)} hint"
               f" embeds to {fmt_size(hint.size)} (conditioning_embedding_out_channels has {n} entries: {n - 1}"
               " halvings; the VAE's 8x needs 3)")
    return x


def controlnet(t: Tracer, a: Args, size: Size | None) -> Act:
    """``ControlNetModel``: the hint embedding, the encoder and mid block, one zero conv per residual."""
    down, boc, cond_channels = _check(a)
    c0, groups = boc[0], a.int("norm_num_groups", 1)
    e = _embeds(a, c0)
    specs, mid = _block_specs(a, down, boc)
    t.declare(("conv_in", "time_proj", "time_embedding", "encoder_hid_proj", "class_embedding", "add_time_proj",
               "add_embedding", "controlnet_cond_embedding", "down_blocks", "controlnet_down_blocks",
               "controlnet_mid_block", "mid_block"))
    sample = _sample(t, a, size)
    if a.raw("controlnet_conditioning_channel_order") not in ("rgb", "bgr"):  # checked first thing in forward
        t.fail("", f"controlnet_conditioning_channel_order: got {a.raw('controlnet_conditioning_channel_order')!r};"
                   " ControlNetModel.forward allows 'rgb', 'bgr'")
    # 1. time
    emb = time_embed(t, e, c0)
    class_embed(t, e, c0)
    aug_embed(t, e, e.time_embed_dim)
    context = Act(mid.cross_attention_dim or 0, None, "encoder_hidden_states", TEXT_TOKENS)
    ctx = Ctx(Act(e.time_embed_dim, None, emb.source), groups, time_embedding_norm=a.raw("resnet_time_scale_shift"),
              context=context, temb_channels=e.time_embed_dim)
    # 2. pre-process: conv_in, then the hint's embedding added to it
    with t.unit("conv_in", "conv", "Conv2d", sample) as u:
        x = u.done(t.conv("", sample, sample.channels, c0, 3, 1, 1), new=False)
    hint_size = tuple(HINT_SCALE * d for d in sample.size or ())
    hint = cond_embedding(t, Act(a.int("conditioning_channels", 1), hint_size, "controlnet_cond"), cond_channels, c0)
    x = _add_hint(t, x, hint, hint_size, len(cond_channels))
    t.push(x, unit="conv_in")  # down_block_res_samples = (sample,): conv_in's output plus the hint
    # 3. down
    for i, spec in enumerate(specs):
        x = down_block(t, i, spec, x, ctx)
    # 4. mid
    x = mid_block(t, mid.type, x, ctx, boc[-1], 1 if mid.type == "UNetMidBlock2DCrossAttn" else 0,
                  attn_heads=mid.num_attention_heads, transformer_layers=(*mid.transformer_layers, 1)[0],
                  use_linear_projection=mid.use_linear_projection, add_attention=False,
                  cross_dim=mid.cross_attention_dim)
    # 5. the zero convs: zip(down_block_res_samples, controlnet_down_blocks), in push order
    res: list[Act] = []
    while t.depth():
        res.append(t.pop())
    outs = [t.conv(f"controlnet_down_blocks.{i}", r, r.channels, r.channels, 1, note="zero conv")
            for i, r in enumerate(reversed(res))]
    t.conv("controlnet_mid_block", x, boc[-1], boc[-1], 1, note="zero conv")
    first = outs[0]
    # global_pool_conditions: torch.mean over (H, W), keepdim: every residual becomes 1x1
    return Act(first.channels, (1, 1), first.source) if a.bool("global_pool_conditions") else first
