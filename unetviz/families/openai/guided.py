"""guided-diffusion's ``UNetModel`` (guided_diffusion/unet.py); improved-diffusion's is the same model.

Read beside the upstream code: ``init`` is ``UNetModel.__init__`` (same names: ch, ds, level, mult,
input_block_chans) and decides every module before any size is known, so a config the constructor
rejects is rejected whatever the input size; ``build`` is ``UNetModel.forward``.

Choices where the upstream signature leaves one open:

- ``image_size``, ``in_channels``, ``model_channels``, ``out_channels``, ``num_res_blocks`` and
  ``attention_resolutions`` are required positional arguments upstream: they must be given.
  ``image_size`` only sets the traced size (``--size`` overrides it) and may be null with ``--size``.
- ``channel_mult`` ``""`` or ``[]`` means what ``script_util.create_model`` makes of ``""``: the
  default for ``image_size`` 64/128/256/512; a string ``"1,2,2,2"`` is split as create_model does.
- ``attention_resolutions`` is a list of downsample rates (UNetModel's meaning); a string
  ``"16,8"`` is read as create_model reads it: resolutions, turned into ``image_size // res``.
- ``use_fp16`` models are traced as guided-diffusion's scripts run them, after
  ``convert_to_fp16()`` (the bare constructor's forward would fail on half input vs float weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import MAX_INT, Args
from ...core.errors import UnetvizError, bad_value
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from .guided_parts import GROUPS, Attn, Block, Conv, Emb, Res, Sample, describe, norm, run_block

DEFAULTS: dict[str, Any] = {
    # required upstream (no default); None here means "missing" unless the key was given
    "image_size": None, "in_channels": None, "model_channels": None, "out_channels": None,
    "num_res_blocks": None, "attention_resolutions": None,
    # the constructor's keyword defaults, exactly
    "dropout": 0, "channel_mult": [1, 2, 4, 8], "conv_resample": True, "dims": 2, "num_classes": None,
    "use_checkpoint": False, "use_fp16": False, "num_heads": 1, "num_head_channels": -1,
    "num_heads_upsample": -1, "use_scale_shift_norm": False, "resblock_updown": False,
    "use_new_attention_order": False,
}
REQUIRED = ("image_size", "in_channels", "model_channels", "out_channels", "num_res_blocks", "attention_resolutions")

CREATE_MODEL_MULT: dict[int, list[float]] = {
    512: [0.5, 1, 1, 2, 2, 4, 4], 256: [1, 1, 2, 2, 4, 4], 128: [1, 1, 2, 3, 4], 64: [1, 2, 3, 4],
}
"""``script_util.create_model``'s channel_mult for ``channel_mult=""``, by image_size."""


@dataclass(frozen=True)
class Net:
    """The modules ``UNetModel.__init__`` creates, as records."""

    model_channels: int
    time_embed_dim: int
    num_classes: int | None
    input_blocks: tuple[Block, ...]
    middle_block: Block
    output_blocks: tuple[Block, ...]
    ch: int
    input_ch: int
    out_channels: int
    levels: int


def _number(key: str, v: Any) -> float:
    # bounded: int(mult * model_channels) must stay a channel count, never inf or a 300-digit number
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_INT:
        raise bad_value(key, v, f"a list of numbers from 0 (exclusive) to {MAX_INT:,}")
    return v


def channel_mult(raw: Any, image_size: Any) -> list[float]:
    """The per-level multipliers, with create_model's meaning of ``""`` and of ``"1,2,2,2"``."""
    if raw in ("", [], ()):
        if image_size not in CREATE_MODEL_MULT or isinstance(image_size, bool):
            raise UnetvizError(f"channel_mult: empty means create_model's default for image_size, which exists"
                               f" only for image_size {', '.join(map(str, CREATE_MODEL_MULT))}; got image_size"
                               f" {image_size!r}")
        return list(CREATE_MODEL_MULT[image_size])
    if isinstance(raw, str):
        try:
            return [int(p) for p in raw.split(",")]
        except ValueError:
            raise bad_value("channel_mult", raw, "a list of numbers, or create_model's \"1,2,2,2\"") from None
    if not isinstance(raw, (list, tuple)):
        raise bad_value("channel_mult", raw, "a list of numbers, e.g. [1, 2, 4, 8]")
    return [_number("channel_mult", v) for v in raw]


def attention_rates(raw: Any, image_size: Any) -> list[float]:
    """Downsample rates; create_model's string of resolutions becomes ``image_size // res``."""
    if isinstance(raw, str):
        if isinstance(image_size, bool) or not isinstance(image_size, int):
            raise UnetvizError(f"attention_resolutions: the string {raw!r} holds resolutions, which need an integer"
                               " image_size; or give downsample rates as a list, e.g. [2, 4]")
        try:
            return [image_size // int(p) for p in raw.split(",") if p.strip()]
        except (ValueError, ZeroDivisionError):
            raise bad_value("attention_resolutions", raw, "resolutions like \"16,8\" or a list of rates") from None
    if not isinstance(raw, (list, tuple)):
        raise bad_value("attention_resolutions", raw, "a list of downsample rates, e.g. [2, 4] (16x16 and 8x8"
                                                      " attention in a 32x32 model)")
    return [_number("attention_resolutions", v) for v in raw]


def _heads(a: Args, key: str) -> int:
    # any integer is accepted here: a head count is only checked where an AttentionBlock uses it
    v = a.int(key, -(2**31))
    if key == "num_head_channels" and v != -1 and v < 1:
        raise bad_value(key, v, "-1 (use num_heads) or an integer >= 1")
    return v


def _check_args(a: Args) -> tuple[int, int, int, int, list[float]]:
    """The arguments checked before any module is made: (in, model, out channels, num_res_blocks, mults)."""
    missing = [k for k in REQUIRED if k not in a.given]
    if missing:
        raise UnetvizError(f"{missing[0]}: required (UNetModel has no default for it); required: {', '.join(REQUIRED)}")
    if a.raw("dims") != 2:
        raise bad_value("dims", a.raw("dims"), "2 (unetviz traces 2-d guided models only)")
    in_channels, model_channels = a.int("in_channels", 1), a.int("model_channels", 1)
    out_channels, num_res_blocks = a.int("out_channels", 1), a.int("num_res_blocks", 0)
    dropout = a.float("dropout")
    if not 0 <= dropout <= 1:
        raise bad_value("dropout", dropout, "a probability from 0 to 1 (nn.Dropout)")
    for key in ("conv_resample", "use_checkpoint", "use_fp16", "use_scale_shift_norm", "resblock_updown",
                "use_new_attention_order"):
        a.flag(key)
    mults = channel_mult(a.raw("channel_mult"), a.raw("image_size"))
    if not mults:
        raise bad_value("channel_mult", a.raw("channel_mult"), "a non-empty list of numbers")
    for level, mult in enumerate(mults):
        width = int(mult * model_channels)
        if width < GROUPS or width % GROUPS:
            raise UnetvizError(f"channel_mult: level {level} has int({mult} x model_channels {model_channels})"
                               f" = {width} channels; allowed: a positive multiple of {GROUPS} (GroupNorm32's groups)")
    return in_channels, model_channels, out_channels, num_res_blocks, mults


def init(a: Args) -> Net:
    """``UNetModel.__init__``: every module, with the checks the constructor (or nn) makes."""
    in_channels, model_channels, out_channels, num_res_blocks, mults = _check_args(a)
    num_classes = a.opt_int("num_classes", 1)
    attention_resolutions = attention_rates(a.raw("attention_resolutions"), a.raw("image_size"))
    num_heads, num_head_channels = _heads(a, "num_heads"), _heads(a, "num_head_channels")
    num_heads_upsample = _heads(a, "num_heads_upsample")
    if num_heads_upsample == -1:
        num_heads_upsample = num_heads
    conv_resample, resblock_updown = a.flag("conv_resample"), a.flag("resblock_updown")

    def attention(ch: int, heads: int, key: str) -> Attn:
        if num_head_channels == -1:
            if heads < 1:
                raise bad_value(key, heads, "an integer >= 1 (the number of attention heads)")
            return Attn(ch, heads)
        if ch % num_head_channels:  # AttentionBlock asserts it
            raise UnetvizError(f"num_head_channels: got {num_head_channels}; it must divide the {ch} channels of"
                               " every AttentionBlock")
        return Attn(ch, ch // num_head_channels)

    time_embed_dim = model_channels * 4
    ch = input_ch = int(mults[0] * model_channels)
    input_blocks = [Block((Conv(in_channels, ch),), 0)]
    input_block_chans = [ch]
    ds = 1
    for level, mult in enumerate(mults):
        for _ in range(num_res_blocks):
            layers: list[Any] = [Res(ch, int(mult * model_channels))]
            ch = int(mult * model_channels)
            if ds in attention_resolutions:
                layers.append(attention(ch, num_heads, "num_heads"))
            input_blocks.append(Block(tuple(layers), level))
            input_block_chans.append(ch)
        if level != len(mults) - 1:
            out_ch = ch
            sampler = Res(ch, out_ch, down=True) if resblock_updown else Sample(ch, conv_resample, up=False)
            input_blocks.append(Block((sampler,), level))
            ch = out_ch
            input_block_chans.append(ch)
            ds *= 2
    middle_block = Block((Res(ch, ch), attention(ch, num_heads, "num_heads"), Res(ch, ch)), len(mults) - 1)
    output_blocks = []
    for level, mult in list(enumerate(mults))[::-1]:
        for i in range(num_res_blocks + 1):
            ich = input_block_chans.pop()
            layers = [Res(ch + ich, int(model_channels * mult))]
            ch = int(model_channels * mult)
            if ds in attention_resolutions:
                layers.append(attention(ch, num_heads_upsample, "num_heads_upsample"))
            if level and i == num_res_blocks:
                out_ch = ch
                layers.append(Res(ch, out_ch, up=True) if resblock_updown else Sample(ch, conv_resample, up=True))
                ds //= 2
            output_blocks.append(Block(tuple(layers), level))
    return Net(model_channels, time_embed_dim, num_classes, tuple(input_blocks), middle_block, tuple(output_blocks),
               ch, input_ch, out_channels, len(mults))


def _start(t: Tracer, a: Args, in_channels: int, size: Size | None) -> Act:
    if size is not None:
        return t.start(in_channels, size, "--size")
    n = a.raw("image_size")
    if n is None:
        raise UnetvizError("image_size: null; give an integer image_size or a --size")
    n = a.int("image_size", 1)
    return t.start(in_channels, (n, n), "image_size")


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNetModel.forward(x, timesteps, y)``."""
    net = init(a)
    t.declare(("time_embed", "label_emb", "input_blocks", "middle_block", "output_blocks", "out"))
    x = _start(t, a, a.int("in_channels", 1), size)
    mc, ted = net.model_channels, net.time_embed_dim
    sinusoid = Act(mc, None, "timestep_embedding")
    with t.unit("time_embed", "mlp", "Sequential", sinusoid, f"sinusoidal {mc} -> {ted} -> {ted}") as u:
        emb = t.linear("0", sinusoid, mc, ted)
        emb = u.done(t.linear("2", emb, ted, ted), new=False)
    if net.num_classes is not None:
        t.embedding("label_emb", net.num_classes, ted)
        emb = Act(ted, None, "")  # emb + label_emb(y): made by no module
    e = Emb(emb, a.flag("use_scale_shift_norm"), a.flag("use_new_attention_order"))
    h = x  # x.type(self.dtype)
    for n, block in enumerate(net.input_blocks):
        title = f"encoder level {block.level}, {fmt_size(h.size)}: {describe(block)}"
        with t.block(f"input_blocks.{n}", title):
            h = run_block(t, block, h, e)
        t.push(h)  # hs.append(h)
    with t.block("middle_block", f"middle, {fmt_size(h.size)}: {describe(net.middle_block)}"):
        h = run_block(t, net.middle_block, h, e)
    for n, block in enumerate(net.output_blocks):
        path = f"output_blocks.{n}"
        title = f"decoder level {block.level}, {fmt_size(h.size)}: {describe(block)}"
        skip = t.pop(path)
        if skip.size != h.size:
            # Upsample always doubles (no output size, unlike diffusers), so a size the encoder halved
            # with rounding comes back one off
            t.fail(path, f"torch.cat of h and hs.pop() before {path} (decoder level {block.level}): h is"
                                     f" {h.channels}ch {fmt_size(h.size)} from {h.source}, skip #{skip.skip} is"
                                     f" {skip.channels}ch {fmt_size(skip.size)} from {skip.source}; the input size"
                                     f" must be divisible by {2 ** (net.levels - 1)}")
        h = t.cat([h, skip], into=path)  # th.cat([h, hs.pop()], dim=1)
        with t.block(path, title):
            h = run_block(t, block, h, e)
    # h.type(x.dtype), then out = GroupNorm32, SiLU, conv_nd(input_ch -> out_channels)
    with t.unit("out", "conv", "Sequential", h, f"GroupNorm, SiLU, 3x3 conv -> {net.out_channels}") as u:
        y = norm(t, "0", h, net.ch)
        # upstream sizes this conv by input_ch, not ch: the decoder ends on level 0, so they agree
        return u.done(t.conv("2", y, net.input_ch, net.out_channels, 3, 1, 1), new=False)
