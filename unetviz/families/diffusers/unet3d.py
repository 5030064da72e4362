"""diffusers 0.42 ``UNet3DConditionModel`` (models/unets/unet_3d_condition.py): ModelScope text-to-video, Zeroscope.

Read beside the upstream ``__init__``/``forward``. The sample is ``(B, C, F, H, W)``; the forward folds the
frames into the batch, ``(B*F, C, H, W)``, so every 2-D layer, skip and concat has the per-frame size HxW,
while the temporal layers see the frames: a trace's ``in_size`` / ``out_size`` are ``FxHxW``.

The size: ``size`` is ``(F, H, W)``, or ``(H, W)`` with the frames from the config's ``frames`` key (a
unetviz key, not a constructor argument: the frame count to trace at; ``None`` means the pipeline's
default, 16). Without a size, HxW is ``sample_size``.

Registration order is conv_in, time_proj, time_embedding, transformer_in, down_blocks, up_blocks, mid_block,
conv_norm_out, conv_act, conv_out.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError, bad_value
from ...core.inputs import TEXT_TOKENS
from ...core.records import Size
from ...engine.tracer import Act, Tracer
from .embed import activation
from .parts import Ctx, timestep_embedding
from .unet3d_blocks import DOWN_TYPES, UP_TYPES, Block3D, Video, down_block, mid_block, transformer_in, up_block

__all__ = ["MODELSCOPE_FRAMES", "UNET3D_DEFAULTS", "unet3d_condition", "video_sample"]

MODELSCOPE_FRAMES = 16
"""TextToVideoSDPipeline's default ``num_frames``: the frame count traced when the config gives none."""
UNET3D_DEFAULTS: dict[str, Any] = {
    "sample_size": None, "in_channels": 4, "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "CrossAttnDownBlock3D", "DownBlock3D"],
    "up_block_types": ["UpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D", "CrossAttnUpBlock3D"],
    "block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "downsample_padding": 1,
    "mid_block_scale_factor": 1, "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-5,
    "cross_attention_dim": 1024, "attention_head_dim": 64, "num_attention_heads": None, "time_cond_proj_dim": None,
    "frames": None,
}
"""The constructor's keyword defaults, plus unetviz's ``frames`` (see the module docstring)."""


def video_sample(t: Tracer, a: Args, size: Size | None, default_frames: int) -> tuple[int, Act]:
    """(F, the per-frame sample ``(C, HxW)``); the trace's input size is ``FxHxW``.

    ``size``: (F, H, W), or (H, W) with F from ``frames`` (else ``default_frames``); none: ``sample_size``."""
    in_channels = a.int("in_channels", 1)
    frames = a.opt_int("frames", 1) or default_frames
    f_source = "frames" if a.raw("frames") is not None else "the default frame count"
    if size is not None and len(size) == 3:
        frames, h, w = size
        t.start(in_channels, (frames, h, w), "--size (FxHxW)")
    elif size is not None:
        h, w = size[-2], size[-1]
        t.start(in_channels, (frames, h, w), f"--size (HxW), {f_source}")
    else:
        s = a.raw("sample_size")
        if s is None:
            h = w = 64
            source = "family default 64x64 (sample_size is null)"
        elif isinstance(s, (list, tuple)) and len(s) == 2:
            h, w = a.int("sample_size", 1, s[0]), a.int("sample_size", 1, s[1])
            source = "sample_size"
        else:
            h = w = a.int("sample_size", 1)
            source = "sample_size"
        t.start(in_channels, (frames, h, w), f"{source}, {f_source}")
    if frames < 1 or h < 1 or w < 1:
        raise bad_value("--size", size, "positive frames, height and width")
    return frames, Act(in_channels, (h, w), "input")


def _check(a: Args) -> tuple[list[str], list[str], list[int], int]:
    """What the constructor checks or would trip over, in its order: (down, up, channels, head size)."""
    if a.raw("num_attention_heads") is not None:
        raise UnetvizError("num_attention_heads: must be null; diffusers 0.42 raises NotImplementedError for it (set"
                           " attention_head_dim, which UNet3DConditionModel reads as the head size)")
    down = a.str_list("down_block_types", DOWN_TYPES)
    up = a.str_list("up_block_types", UP_TYPES)
    if len(up) != len(down):
        raise UnetvizError(f"up_block_types has {len(up)} entries but down_block_types has {len(down)}")
    boc = a.int_list("block_out_channels", 1, len(down))
    ahd = a.raw("attention_head_dim")
    if not isinstance(ahd, int) or isinstance(ahd, bool):
        # transformer_in is TransformerTemporalModel(8, attention_head_dim): 8 * a list is no layer width
        raise bad_value("attention_head_dim", ahd, "an integer (transformer_in's head size; a list fails there)")
    head = a.int("attention_head_dim", 1)
    if a.raw("norm_num_groups") is None:
        raise bad_value("norm_num_groups", None, "an integer (the blocks' GroupNorms need it)")
    a.int("norm_num_groups", 1)
    a.int("layers_per_block", 0)
    a.int("downsample_padding")
    a.float("mid_block_scale_factor")
    activation(a, "act_fn")
    a.opt_int("time_cond_proj_dim", 1)
    a.int("cross_attention_dim", 1)
    for i, (kind, c) in enumerate(zip(down, boc, strict=True)):
        if kind.startswith("CrossAttn") and c // head < 1:
            raise UnetvizError(f"attention_head_dim: {head} is larger than the {c} channels of down_blocks.{i}: its"
                               f" transformers get {c} // {head} = 0 heads")
    if boc[-1] // head < 1:
        raise UnetvizError(f"attention_head_dim: {head} is larger than the {boc[-1]} channels of mid_block")
    return down, up, boc, head


def _specs(a: Args, down: list[str], up: list[str], boc: list[int], head: int) -> tuple[list[Block3D], list[Block3D]]:
    lpb, n = a.int("layers_per_block", 0), len(down)
    downs, output_channel = [], boc[0]
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        downs.append(Block3D(type=kind, num_layers=lpb, in_channels=input_channel, out_channels=output_channel,
                             add_sampler=i != n - 1, heads=head, downsample_padding=a.int("downsample_padding")))
    rev = list(reversed(boc))
    ups, output_channel = [], rev[0]
    for i, kind in enumerate(up):
        prev, output_channel = output_channel, rev[i]
        ups.append(Block3D(type=kind, num_layers=lpb + 1, in_channels=rev[min(i + 1, n - 1)],
                           out_channels=output_channel, add_sampler=i != n - 1, prev_output_channel=prev, heads=head))
    return downs, ups


def unet3d_condition(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet3DConditionModel``: SD-style 2-D blocks with a temporal conv after every resnet and a temporal
    transformer after every spatial one."""
    down, up, boc, head = _check(a)
    downs, ups = _specs(a, down, up, boc, head)
    c0, groups, n = boc[0], a.int("norm_num_groups", 1), len(down)
    t.declare(("conv_in", "time_proj", "time_embedding", "transformer_in", "down_blocks", "up_blocks", "mid_block",
               "conv_norm_out", "conv_act", "conv_out"))
    frames, x = video_sample(t, a, size, MODELSCOPE_FRAMES)
    # 1. time: Timesteps(c0) has no parameters; emb is repeated per frame, (B*F, 4 c0)
    emb = timestep_embedding(t, "time_embedding", Act(c0, None, "time_proj"), c0, 4 * c0,
                             a.opt_int("time_cond_proj_dim", 1))
    context = Act(a.int("cross_attention_dim", 1), None, "encoder_hidden_states", TEXT_TOKENS)
    v = Video(ctx=Ctx(Act(4 * c0, None, emb.source), groups, context=context), frames=frames,
              cross_dim=a.int("cross_attention_dim", 1))
    with t.batched(frames):  # 2. pre-process: frames into the batch, so each 2-D layer runs once per frame
        with t.unit("conv_in", "conv", "Conv2d", x) as u:
            x = u.done(t.conv("", x, x.channels, c0, 3, 1, 1), new=False)
        x = transformer_in(t, x, head, c0, groups, frames)
        t.push(x)  # down_block_res_samples = (sample,)
        forward_upsample_size = any(d % (2 ** (n - 1)) for d in x.size or ())
        # 3. down, 4. mid, 5. up
        for i, spec in enumerate(downs):
            x = down_block(t, i, spec, x, v)
        x = mid_block(t, x, v, boc[-1], head)
        for i, spec in enumerate(ups):
            x = up_block(t, i, spec, x, v, forward_upsample_size)
        # 6. post-process, then the frames back out of the batch: (B, C, F, H, W)
        x = t.group_norm("conv_norm_out", x, groups, c0)
        with t.unit("conv_out", "conv", "Conv2d", x) as u:
            y = u.done(t.conv("", x, c0, a.int("out_channels", 1), 3, 1, 1), new=False)
    return Act(y.channels, (frames, *(y.size or ())), y.source)
