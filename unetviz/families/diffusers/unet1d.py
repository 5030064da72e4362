"""diffusers 0.42 ``UNet1DModel`` (models/unets/unet_1d.py): Dance Diffusion's audio U-Net.

Read beside the upstream ``__init__``/``forward``. The input is a ``(B, C, L)`` signal: every size is a
1-tuple, the length. A ``--size`` of ``N`` (which the CLI reads as NxN) or ``HxN`` means length N: the
builder takes the last entry. The time features (Fourier by default) are repeated along the length and
concatenated to the sample by the first block (``DownBlock1DNoSkip``), which is why it expects
``in_channels + extra_in_channels`` channels. Each down block pushes one skip, each up block pops one.
Registration order is time_proj, time_mlp, down_blocks, up_blocks, mid_block, out_block: ``mid_block``
starts as None and is assigned a module after ``up_blocks`` exists.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import NotTraced, UnetvizError, bad_value
from ...core.records import Size
from ...engine.tracer import Act, Tracer
from .embed import UNSUPPORTED, activation
from .parts import timestep_embedding
from .unet1d_blocks import DOWN_TYPES, MID_TYPES, RL_TYPES, UP_TYPES, down_block, mid_block, up_block

__all__ = ["UNET1D_DEFAULTS", "unet1d"]

UNET1D_DEFAULTS: dict[str, Any] = {
    "sample_size": 65536, "sample_rate": None, "in_channels": 2, "out_channels": 2, "extra_in_channels": 0,
    "time_embedding_type": "fourier", "time_embedding_dim": None, "flip_sin_to_cos": True,
    "use_timestep_embedding": False, "freq_shift": 0.0,
    "down_block_types": ["DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"],
    "up_block_types": ["AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"], "mid_block_type": "UNetMidBlock1D",
    "out_block_type": None, "block_out_channels": [32, 32, 64], "act_fn": None, "norm_num_groups": 8,
    "layers_per_block": 1, "downsample_each_block": False,
}


def _types(a: Args, key: str, allowed: tuple[str, ...]) -> list[str]:
    raw = a.raw(key)
    if isinstance(raw, (list, tuple)):
        other = next((b for b in raw if b in RL_TYPES), None)
        if other is not None:
            raise NotTraced(f"{key}: {other!r} (a reinforcement-learning block): {UNSUPPORTED} it yet; allowed:"
                               f" {', '.join(allowed)}")
        if not raw:  # the constructor's loop builds no block: no up blocks leave the mid block's output as the result
            return []
    return a.str_list(key, allowed, value=raw)


def _check(a: Args) -> tuple[list[str], list[str], list[int]]:
    """What the constructor checks or would trip over, in its order."""
    kind = a.raw("time_embedding_type")
    if kind not in ("fourier", "positional"):
        raise bad_value("time_embedding_type", kind, ("fourier", "positional"))
    a.opt_int("time_embedding_dim", 1)
    a.float("freq_shift")
    a.bool("flip_sin_to_cos")
    if a.bool("use_timestep_embedding"):
        activation(a, "act_fn")  # TimestepEmbedding(act_fn=...): get_activation(None) raises
    down = _types(a, "down_block_types", DOWN_TYPES)
    up = _types(a, "up_block_types", UP_TYPES)
    boc = a.int_list("block_out_channels", 1)
    if len(boc) < len(down):  # block_out_channels[i] for every down block
        raise UnetvizError(f"block_out_channels has {len(boc)} entries but down_block_types has {len(down)}")
    if len(up) > len(boc):  # reversed_block_out_channels[i + 1] for every up block but the last
        raise UnetvizError(f"up_block_types has {len(up)} entries but block_out_channels has {len(boc)}")
    mid = a.raw("mid_block_type")
    if mid in RL_TYPES:
        raise NotTraced(f"mid_block_type: {mid!r} (a reinforcement-learning block): {UNSUPPORTED} it yet;"
                           " allowed: 'UNetMidBlock1D'")
    a.choice("mid_block_type", MID_TYPES)
    out = a.raw("out_block_type")
    if out in ("OutConv1DBlock", "ValueFunction"):
        raise NotTraced(f"out_block_type: {out!r} (a reinforcement-learning head): {UNSUPPORTED} it yet;"
                           " allowed: None")
    return down, up, boc


def _length(t: Tracer, a: Args, size: Size | None) -> Act:
    in_channels = a.int("in_channels", 1)
    if size is not None:
        return t.start(in_channels, (size[-1],), "--size (the length)")
    return t.start(in_channels, (a.int("sample_size", 1),), "sample_size")


def _time(t: Tracer, a: Args, c0: int, length: Size | None) -> Act:
    """``time_proj`` (and ``time_mlp``), then the repeat along the length the forward does without time_mlp."""
    timestep = Act(0, None, "timestep")  # shape (B,): no channel axis, as hooks see it
    if a.raw("time_embedding_type") == "fourier":
        ted = a.opt_int("time_embedding_dim", 1) or 2 * c0
        if ted % 2:
            raise bad_value("time_embedding_dim", ted, "an even number with fourier embeddings (time_embed_dim)")
        emb = t.owner("time_proj", "GaussianFourierProjection", timestep, Act(ted, None, ""),
                      [("weight", (ted // 2,))], f"sin/cos of {ted // 2} random frequencies")
    else:
        emb = Act(c0, None, "time_proj")  # Timesteps(block_out_channels[0]): no parameters
    if a.bool("use_timestep_embedding"):
        return timestep_embedding(t, "time_mlp", emb, emb.channels, 4 * c0, out_dim=c0)
    return Act(emb.channels, length, emb.source)  # timestep_embed[..., None].repeat([1, 1, L])


def unet1d(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNet1DModel`` with the Dance Diffusion blocks: down blocks, UNetMidBlock1D, up blocks."""
    down, up, boc = _check(a)
    c0 = boc[0]
    t.declare(("time_proj", "time_mlp", "down_blocks", "up_blocks", "mid_block", "out_block"))
    x = _length(t, a, size)
    temb = _time(t, a, c0, x.size)
    output_channel = a.int("in_channels", 1)
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        if i == 0:
            input_channel += a.int("extra_in_channels")
        x = down_block(t, i, kind, x, input_channel, output_channel, temb)
    x = mid_block(t, x, boc[-1], boc[-1], boc[-1])
    rev = list(reversed(boc))
    output_channel = rev[0]
    # an out_block_type that get_out_block does not know builds no out block, but still narrows the last up block
    final = a.int("out_channels", 1) if a.raw("out_block_type") is None else c0
    for i, kind in enumerate(up):
        prev_output_channel = output_channel
        output_channel = rev[i + 1] if i < len(up) - 1 else final
        x = up_block(t, i, kind, x, prev_output_channel, output_channel)
    return x
