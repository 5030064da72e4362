"""diffusers 0.42 ``UNetMotionModel`` (models/unets/unet_motion_model.py): AnimateDiff, a Stable Diffusion 2-D
U-Net with a motion module (a temporal transformer, ``AnimateDiffTransformer3D``) after every resnet/attention
pair; ``AnimateDiffPipeline`` builds it with ``UNetMotionModel.from_unet2d(unet, motion_adapter)``.

Read beside the upstream ``__init__``/``forward``. The sample is ``(B, C, F, H, W)``; the forward folds the
frames into the batch, ``(B*F, C, H, W)``, so every 2-D layer, skip and concat has the per-frame size HxW,
while the motion modules attend over the frames: a trace's ``in_size`` / ``out_size`` are ``FxHxW``. ``size``
is ``(F, H, W)``, or ``(H, W)`` with the frames from unetviz's ``frames`` key (no constructor argument; ``None``:
the pipeline's default, 16). Without a size, HxW is ``sample_size``.

Registration order is conv_in, time_proj, time_embedding, add_time_proj, add_embedding, down_blocks, up_blocks,
mid_block, conv_norm_out, conv_act, conv_out.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError, bad_value
from ...core.inputs import TEXT_TOKENS
from ...core.records import Size
from ...engine.tracer import Act, Tracer
from .blocks import mid_block as mid_block_2d
from .embed import activation, text_time_embedding
from .motion_blocks import DOWN_TYPES, UP_TYPES, Motion, MotionBlock, down_block, mid_block, up_block
from .parts import Ctx, timestep_embedding
from .unet3d import video_sample

__all__ = ["ANIMATEDIFF_FRAMES", "MOTION_DEFAULTS", "unet_motion"]

ANIMATEDIFF_FRAMES = 16
"""AnimateDiffPipeline's default ``num_frames``: the frame count traced when the config gives none."""
MOTION_DEFAULTS: dict[str, Any] = {
    "sample_size": None, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion", "CrossAttnDownBlockMotion",
                         "DownBlockMotion"],
    "up_block_types": ["UpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion", "CrossAttnUpBlockMotion"],
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "downsample_padding": 1,
    "mid_block_scale_factor": 1, "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5,
    "cross_attention_dim": 1280, "transformer_layers_per_block": 1, "reverse_transformer_layers_per_block": None,
    "temporal_transformer_layers_per_block": 1, "reverse_temporal_transformer_layers_per_block": None,
    "transformer_layers_per_mid_block": None, "temporal_transformer_layers_per_mid_block": 1,
    "use_linear_projection": False, "num_attention_heads": 8, "motion_max_seq_length": 32,
    "motion_num_attention_heads": 8, "reverse_motion_num_attention_heads": None, "use_motion_mid_block": True,
    "mid_block_layers": 1, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "addition_embed_type": None,
    "addition_time_embed_dim": None, "projection_class_embeddings_input_dim": None, "time_cond_proj_dim": None,
    "frames": None,
}
"""The constructor's keyword defaults, plus unetviz's ``frames`` (see the module docstring)."""


def _per_layer(a: Args, key: str, v: Any, layers: int, where: str) -> tuple[int, ...]:
    """A block's depth per layer: an int for all, or a list with one per layer (the blocks' ValueError)."""
    if isinstance(v, (list, tuple)):
        if len(v) != layers:
            raise UnetvizError(f"{key}: {where} has {layers} layers but its entry {v!r} has {len(v)} depths")
        return tuple(a.int(key, 0, d) for d in v)
    return (a.int(key, 0, v),) * layers


def _depth_lists(a: Args, key: str, n: int) -> tuple[list[Any], list[Any]]:
    """(down entries, up entries) of ``key`` and ``reverse_key``, as the constructor expands them."""
    v, rev = a.raw(key), a.raw(f"reverse_{key}")
    if isinstance(v, list) and rev is None and any(isinstance(d, list) for d in v):
        raise UnetvizError(f"{key}: nested lists need reverse_{key} (diffusers: an asymmetrical UNet)")
    down = list(v) if isinstance(v, (list, tuple)) else [v] * n
    up = list(reversed(down)) if rev is None else (list(rev) if isinstance(rev, (list, tuple)) else [rev] * n)
    for k, entries in ((key, down), (f"reverse_{key}", up)):
        if len(entries) < n:
            raise UnetvizError(f"{k} has {len(entries)} entries but down_block_types has {n}")
    return down, up


def _heads(key: str, heads: int, channels: int, where: str, depths: tuple[int, ...]) -> None:
    """``channels // heads`` is the head size: 0 heads, or a head size of 0 in a built attention, raise."""
    if heads < 1:
        raise bad_value(key, heads, f"at least 1 head ({where}: {channels} // 0 divides by zero)")
    if any(depths) and channels // heads < 1:
        raise UnetvizError(f"{key}: {heads} heads on the {channels} channels of {where} give a head size of 0;"
                           f" allowed: 1 to {channels}")
    inner = heads * (channels // heads)
    if key.startswith("motion") and any(depths) and inner % 2:
        # each motion transformer block builds SinusoidalPositionalEmbedding(inner), whose cos half of an odd
        # width is one column short: the real constructor raises RuntimeError
        even = [str(h) for h in range(1, channels + 1) if h * (channels // h) % 2 == 0][:4]
        raise UnetvizError(f"{key}: got {heads}; {heads} heads x {channels // heads} on the {channels} channels of"
                           f" {where} leave an odd width, {inner}, for the motion modules' sinusoidal positional"
                           f" embedding; allowed: heads whose heads x ({channels} // heads) is even"
                           f" ({', '.join(even) or 'none'}, ...)")


def _spec(a: Args, kind: str, where: str, layers: int, chans: tuple[int, int, int], last: bool,
          per: tuple[int, int, int, Any, Any]) -> MotionBlock:
    """One block's record; ``per``: (spatial heads, cross dim, motion heads, depths entry, motion depths entry)."""
    in_c, out_c, prev = chans
    heads, cross, motion_heads, depth, motion_depth = per
    depths = _per_layer(a, "transformer_layers_per_block", depth, layers, where) if "CrossAttn" in kind else ()
    motion_depths = _per_layer(a, "temporal_transformer_layers_per_block", motion_depth, layers, where)
    if "CrossAttn" in kind:
        _heads("num_attention_heads", heads, out_c, where, depths)
    _heads("motion_num_attention_heads", motion_heads, out_c, where, motion_depths)
    return MotionBlock(type=kind, num_layers=layers, in_channels=in_c, out_channels=out_c, add_sampler=not last,
                       prev_output_channel=prev, heads=heads, depths=depths, cross_dim=cross,
                       motion_heads=motion_heads, motion_depths=motion_depths,
                       downsample_padding=a.int("downsample_padding"))


def _check(a: Args) -> tuple[list[str], list[str], list[int]]:
    down = a.str_list("down_block_types", DOWN_TYPES)
    up = a.str_list("up_block_types", UP_TYPES)
    if len(up) != len(down):
        raise UnetvizError(f"up_block_types has {len(up)} entries but down_block_types has {len(down)}")
    boc = a.int_list("block_out_channels", 1, len(down))
    if a.raw("norm_num_groups") is None:
        raise bad_value("norm_num_groups", None, "an integer (the blocks' GroupNorms need it)")
    a.int("norm_num_groups", 1)
    a.int("downsample_padding")
    a.float("mid_block_scale_factor")
    activation(a, "act_fn")
    a.opt_int("time_cond_proj_dim", 1)
    a.int("motion_max_seq_length", 0)
    a.int("mid_block_layers", 0)
    if a.raw("addition_embed_type") == "text_time":
        a.int("addition_time_embed_dim", 1)
        a.int("projection_class_embeddings_input_dim", 1)
    return down, up, boc


def _specs(a: Args) -> tuple[list[MotionBlock], MotionBlock, list[MotionBlock]]:
    down, up, boc = _check(a)
    n = len(down)
    heads = a.per_block("num_attention_heads", n, minimum=0)
    cross = a.per_block("cross_attention_dim", n)
    layers = a.per_block("layers_per_block", n, minimum=0)
    motion_heads = a.per_block("motion_num_attention_heads", n, minimum=0)
    depths, rev_depths = _depth_lists(a, "transformer_layers_per_block", n)
    motion, rev_motion = _depth_lists(a, "temporal_transformer_layers_per_block", n)
    downs, out_c = [], boc[0]
    for i, kind in enumerate(down):
        in_c, out_c = out_c, boc[i]
        downs.append(_spec(a, kind, f"down_blocks.{i}", layers[i], (in_c, out_c, 0), i == n - 1,
                           (heads[i], cross[i], motion_heads[i], depths[i], motion[i])))
    mid = _mid_spec(a, boc[-1], (heads[-1], cross[-1], motion_heads[-1], depths[-1]))
    rev = list(reversed(boc))
    ups, out_c = [], rev[0]
    for i, kind in enumerate(up):
        prev, out_c = out_c, rev[i]
        r = n - 1 - i
        ups.append(_spec(a, kind, f"up_blocks.{i}", layers[r] + 1, (rev[min(i + 1, n - 1)], out_c, prev),
                         i == n - 1, (heads[r], cross[r], motion_heads[r], rev_depths[i], rev_motion[i])))
    return downs, mid, ups


def _mid_spec(a: Args, c: int, last: tuple[int, int, int, Any]) -> MotionBlock:
    heads, cross, motion_heads, last_depth = last
    layers = a.int("mid_block_layers", 0)
    depth = a.raw("transformer_layers_per_mid_block")
    if depth is None:
        depth = last_depth if isinstance(last_depth, int) else 1
    depths = _per_layer(a, "transformer_layers_per_mid_block", depth, layers, "mid_block")
    motion_depths: tuple[int, ...] = ()
    if a.bool("use_motion_mid_block"):
        key = "temporal_transformer_layers_per_mid_block"
        if a.raw(key) is None:
            raise bad_value(key, None, "an integer or a list with one per mid_block_layers")
        motion_depths = _per_layer(a, key, a.raw(key), layers, "mid_block")
        _heads("motion_num_attention_heads", motion_heads, c, "mid_block", motion_depths)
    elif len(set(depths)) > 1:
        raise UnetvizError("transformer_layers_per_mid_block: unetviz traces UNetMidBlock2DCrossAttn with one depth"
                           " for every layer")
    _heads("num_attention_heads", heads, c, "mid_block", depths)
    return MotionBlock(type="UNetMidBlockCrossAttnMotion", num_layers=layers, in_channels=c, out_channels=c,
                       add_sampler=False, heads=heads, depths=depths, cross_dim=cross, motion_heads=motion_heads,
                       motion_depths=motion_depths)


def _embedding(t: Tracer, a: Args, c0: int) -> Act:
    """time_embedding (+ add_embedding of SDXL's text and time ids when ``addition_embed_type`` is text_time)."""
    ted = 4 * c0
    emb = timestep_embedding(t, "time_embedding", Act(c0, None, "time_proj"), c0, ted,
                             a.opt_int("time_cond_proj_dim", 1))
    if a.raw("addition_embed_type") == "text_time":
        text_time_embedding(t, a.int("projection_class_embeddings_input_dim", 1),
                            a.int("addition_time_embed_dim", 1), ted)
    if a.raw("encoder_hid_dim_type") is not None:
        t.fail("encoder_hid_proj", "encoder_hid_dim_type: UNetMotionModel's constructor never sets"
               " encoder_hid_proj unless it is null, so the forward's self.encoder_hid_proj raises AttributeError")
    return Act(ted, None, emb.source)


def unet_motion(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNetMotionModel``: SD's 2-D blocks with a motion module after every resnet/attention pair."""
    downs, mid, ups = _specs(a)
    boc = a.int_list("block_out_channels", 1)
    c0, groups = boc[0], a.int("norm_num_groups", 1)
    t.declare(("conv_in", "time_proj", "time_embedding", "add_time_proj", "add_embedding", "down_blocks",
               "up_blocks", "mid_block", "conv_norm_out", "conv_act", "conv_out"))
    frames, x = video_sample(t, a, size, ANIMATEDIFF_FRAMES)
    emb = _embedding(t, a, c0)  # repeated per frame: (B*F, 4 c0)
    context = Act(downs[0].cross_dim, None, "encoder_hidden_states", TEXT_TOKENS)
    m = Motion(ctx=Ctx(emb, groups, context=context), frames=frames, max_seq=a.int("motion_max_seq_length", 0),
               use_linear_projection=a.bool("use_linear_projection"))
    with t.batched(frames):  # after sample.permute(0, 2, 1, 3, 4).reshape(B*F, ...): layers run per frame
        return _forward(t, a, x, m, downs, mid, ups, frames)


def _forward(t: Tracer, a: Args, x: Act, m: Motion, downs: list[MotionBlock], mid: MotionBlock,
             ups: list[MotionBlock], frames: int) -> Act:
    """Steps 2 to 6 of the forward, on the frames folded into the batch."""
    boc = a.int_list("block_out_channels", 1)
    c0, groups, n = boc[0], a.int("norm_num_groups", 1), len(boc)
    with t.unit("conv_in", "conv", "Conv2d", x) as u:
        x = u.done(t.conv("", x, x.channels, c0, 3, 1, 1), new=False)
    t.push(x)  # down_block_res_samples = (sample,)
    forward_upsample_size = any(d % (2 ** (n - 1)) for d in x.size or ())
    for i, spec in enumerate(downs):
        x = down_block(t, i, spec, x, m)
    if a.bool("use_motion_mid_block"):
        x = mid_block(t, x, m, mid)
    else:
        x = mid_block_2d(t, "UNetMidBlock2DCrossAttn", x, m.ctx, mid.out_channels, mid.num_layers,
                         attn_heads=mid.heads, transformer_layers=mid.depths[0] if mid.depths else 1,
                         use_linear_projection=m.use_linear_projection, cross_dim=mid.cross_dim)
    for i, spec in enumerate(ups):
        x = up_block(t, i, spec, x, m, forward_upsample_size)
    x = t.group_norm("conv_norm_out", x, groups, c0)
    with t.unit("conv_out", "conv", "Conv2d", x) as u:
        y = u.done(t.conv("", x, c0, a.int("out_channels", 1), 3, 1, 1), new=False)
    return Act(y.channels, (frames, *(y.size or ())), y.source)  # back to (B, C, F, H, W)
