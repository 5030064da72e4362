"""diffusers 0.42 ``UNetSpatioTemporalConditionModel`` (models/unets/unet_spatio_temporal_condition.py): Stable
Video Diffusion (SVD, SVD-XT).

Read beside the upstream ``__init__``/``forward``. The sample is ``(B, F, C, H, W)`` (frames before channels);
the forward flattens it to ``(B*F, C, H, W)``, so every 2-D layer, skip and concat has the per-frame size HxW
and the trace's ``in_size`` / ``out_size`` are ``FxHxW``. ``size`` is ``(F, H, W)``, or ``(H, W)`` with the
frames from unetviz's ``frames`` key, else the config's ``num_frames`` (which the forward itself never reads).

The conditioning: the time embedding plus ``add_embedding`` of the three added time ids (fps, motion bucket,
noise augmentation) each embedded in ``addition_time_embed_dim`` sinusoids, and a one-token CLIP image embedding
as the cross-attention context. Registration order is conv_in, time_proj, time_embedding, add_time_proj,
add_embedding, down_blocks, up_blocks, mid_block, conv_norm_out, conv_act, conv_out.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError, bad_value
from ...core.records import Size
from ...engine.tracer import Act, Tracer
from .parts import Ctx, timestep_embedding
from .svd_blocks import DOWN_TYPES, GROUPS, UP_TYPES, Frames, SVDBlock, down_block, mid_block, up_block
from .unet3d import video_sample

__all__ = ["IMAGE_TOKENS", "SVD_DEFAULTS", "TIME_IDS", "svd"]

TIME_IDS = 3
"""Added time ids an SVD pipeline passes: fps, motion_bucket_id, noise_aug_strength."""
IMAGE_TOKENS = 1
"""Tokens of the context an SVD pipeline passes: one CLIP image embedding per video."""
SVD_DEFAULTS: dict[str, Any] = {
    "sample_size": None, "in_channels": 8, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "CrossAttnDownBlockSpatioTemporal",
                         "CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal",
                       "CrossAttnUpBlockSpatioTemporal"],
    "block_out_channels": [320, 640, 1280, 1280], "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768, "layers_per_block": 2, "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1, "num_attention_heads": [5, 10, 20, 20], "num_frames": 25, "frames": None,
}
"""The constructor's keyword defaults, plus unetviz's ``frames`` (see the module docstring)."""


def _depths(a: Args, v: Any, layers: int, where: str) -> tuple[int, ...]:
    """A block's transformer depth per layer: an int for all, or a list indexed per layer."""
    key = "transformer_layers_per_block"
    if isinstance(v, (list, tuple)):
        if len(v) < layers:
            raise UnetvizError(f"{key}: {where} has {layers} layers but its entry {v!r} has {len(v)} depths")
        return tuple(a.int(key, 0, d) for d in v[:layers])
    return (a.int(key, 0, v),) * layers


def _check(a: Args) -> tuple[list[str], list[str], list[int], list[int], list[int], list[int], list[Any]]:
    """The constructor's checks, in its order: (down, up, channels, heads, cross dims, layers, depths)."""
    down = a.str_list("down_block_types", DOWN_TYPES)
    up = a.str_list("up_block_types", UP_TYPES)
    n = len(down)
    if len(up) != n:
        raise UnetvizError(f"up_block_types has {len(up)} entries but down_block_types has {n}")
    boc = a.int_list("block_out_channels", 1, n)
    if any(c % GROUPS for c in boc):  # GroupNorm(32, c) raises in the constructor
        raise bad_value("block_out_channels", boc, f"multiples of {GROUPS} (every GroupNorm of SVD has {GROUPS}"
                        " groups)")
    heads = a.per_block("num_attention_heads", n)
    cross = a.per_block("cross_attention_dim", n)
    layers = a.per_block("layers_per_block", n, minimum=0)
    raw = a.raw("transformer_layers_per_block")
    depths = list(raw) if isinstance(raw, (list, tuple)) else [raw] * n
    if len(depths) < n:
        raise UnetvizError(f"transformer_layers_per_block has {len(depths)} entries but down_block_types has {n}")
    a.int("addition_time_embed_dim", 1)
    a.int("projection_class_embeddings_input_dim", 1)
    a.int("num_frames", 1)
    return down, up, boc, heads, cross, layers, depths


def _spec(a: Args, kind: str, where: str, layers: int, chans: tuple[int, int, int], last: bool, heads: int,
          cross: int, depth: Any) -> SVDBlock:
    in_c, out_c, prev = chans
    depths = _depths(a, depth, layers, where) if kind.startswith("CrossAttn") else ()
    if any(depths) and out_c // heads < 1:  # Attention(dim_head=0): 0 ** -0.5 raises in the constructor
        raise UnetvizError(f"num_attention_heads: {heads} heads on the {out_c} channels of {where} give a head size"
                           f" of 0; allowed: 1 to {out_c}")
    return SVDBlock(type=kind, num_layers=layers, in_channels=in_c, out_channels=out_c, add_sampler=not last,
                    prev_output_channel=prev, heads=heads, depths=depths, cross_dim=cross)


def _specs(a: Args) -> tuple[list[SVDBlock], SVDBlock, list[SVDBlock]]:
    down, up, boc, heads, cross, layers, depths = _check(a)
    n = len(down)
    downs, out_c = [], boc[0]
    for i, kind in enumerate(down):
        in_c, out_c = out_c, boc[i]
        downs.append(_spec(a, kind, f"down_blocks.{i}", layers[i], (in_c, out_c, 0), i == n - 1, heads[i], cross[i],
                           depths[i]))
    mid = _spec(a, "CrossAttnMid", "mid_block", 1, (boc[-1], boc[-1], 0), True, heads[-1], cross[-1], depths[-1])
    rev = list(reversed(boc))
    ups, out_c = [], rev[0]
    for i, kind in enumerate(up):
        prev, out_c = out_c, rev[i]
        r = n - 1 - i
        ups.append(_spec(a, kind, f"up_blocks.{i}", layers[r] + 1, (rev[min(i + 1, n - 1)], out_c, prev),
                         i == n - 1, heads[r], cross[r], depths[r]))
    return downs, mid, ups


def svd(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNetSpatioTemporalConditionModel``: SVD's U-Net."""
    downs, mid, ups = _specs(a)
    boc = a.int_list("block_out_channels", 1)
    c0, n, ted = boc[0], len(boc), 4 * boc[0]
    t.declare(("conv_in", "time_proj", "time_embedding", "add_time_proj", "add_embedding", "down_blocks",
               "up_blocks", "mid_block", "conv_norm_out", "conv_act", "conv_out"))
    frames, x = video_sample(t, a, size, a.int("num_frames", 1))
    # 1. time: Timesteps(c0) -> time_embedding; the 3 time ids' sinusoids -> add_embedding; emb + aug_emb
    emb = timestep_embedding(t, "time_embedding", Act(c0, None, "time_proj"), c0, ted)
    ids = Act(TIME_IDS * a.int("addition_time_embed_dim", 1), None, "add_time_proj")
    timestep_embedding(t, "add_embedding", ids, a.int("projection_class_embeddings_input_dim", 1), ted)
    cross = a.raw("cross_attention_dim")
    width = cross[0] if isinstance(cross, (list, tuple)) else cross
    f = Frames(ctx=Ctx(Act(ted, None, emb.source), GROUPS), frames=frames,
               context=Act(a.int("cross_attention_dim", 1, width), None, "encoder_hidden_states", IMAGE_TOKENS))
    with t.batched(frames):  # 2. pre-process: sample.flatten(0, 1): each 2-D layer runs once per frame
        with t.unit("conv_in", "conv", "Conv2d", x) as u:
            x = u.done(t.conv("", x, x.channels, c0, 3, 1, 1), new=False)
        t.push(x)
        forward_upsample_size = any(d % (2 ** (n - 1)) for d in x.size or ())
        for i, spec in enumerate(downs):
            x = down_block(t, i, spec, x, f)
        x = mid_block(t, x, f, mid)
        for i, spec in enumerate(ups):
            x = up_block(t, i, spec, x, f, forward_upsample_size)
        x = t.group_norm("conv_norm_out", x, GROUPS, c0, key="block_out_channels")
        with t.unit("conv_out", "conv", "Conv2d", x) as u:
            y = u.done(t.conv("", x, c0, a.int("out_channels", 1), 3, 1, 1), new=False)
    return Act(y.channels, (frames, *(y.size or ())), y.source)  # (B, F, C, H, W)
