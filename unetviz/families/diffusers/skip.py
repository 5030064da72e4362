"""Score-SDE (NCSN++) blocks of ``UNet2DModel``: ``SkipDownBlock2D``, ``AttnSkipDownBlock2D``,
``SkipUpBlock2D`` and ``AttnSkipUpBlock2D`` (unets/unet_2d_blocks.py).

Beside the feature skips these blocks carry an image-channel path: going down, the input image is
FIR-downsampled with the features and added to them through a 1x1 ``skip_conv`` (3 -> C); going up,
each block FIR-upsamples the running 3-channel ``skip_sample`` and adds ``skip_conv(act(skip_norm(h)))``
(C -> 3) to it; the model adds the last one to its output. Every resnet uses ``min(C // 4, 32)``
groups (``AttnSkipUpBlock2D`` computes ``min(in + skip // 4, 32)``, precedence and all), and the
samplers are resnets with FIR resampling and a 1x1 shortcut (``use_in_shortcut=True``).
"""

from __future__ import annotations

from ...core.kinds import kind_of
from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer
from .blocks import BlockSpec
from .fir import fir_filter
from .parts import Ctx, attention, resnet_block_2d

SKIP_DOWN = ("SkipDownBlock2D", "AttnSkipDownBlock2D")
SKIP_UP = ("SkipUpBlock2D", "AttnSkipUpBlock2D")
IMAGE_CHANNELS = 3
"""``skip_conv`` maps the 3-channel image path (``Conv2d(3, C)`` down, ``Conv2d(C, 3)`` up)."""
ATTN_GROUPS = 32
"""The skip blocks' ``Attention(norm_num_groups=32)``."""


def _groups(c: int) -> int:
    return min(c // 4, 32)


def _attend(t: Tracer, name: str, x: Act, b: BlockSpec) -> Act:
    head_dim = b.attention_head_dim or b.out_channels
    return attention(t, name, x, b.out_channels, b.out_channels // head_dim, head_dim, ATTN_GROUPS)


def skip_down_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx, skip: Act) -> tuple[Act, Act]:
    """(hidden states, skip_sample) after the block; pushes its resnets' (and sampler's) outputs."""
    attn = b.type == "AttnSkipDownBlock2D"
    order = (*(("attentions",) if attn else ()), "resnets", "resnet_down", "downsamplers", "skip_conv")
    with t.block(f"down_blocks.{i}", f"{b.type} {b.in_channels}->{b.out_channels}", order=order) as path:
        c = b.out_channels
        for j in range(b.num_layers):
            in_c = b.in_channels if j == 0 else c
            x = resnet_block_2d(t, f"resnets.{j}", x, ctx, in_c, c, groups=_groups(in_c), groups_out=_groups(c))
            if attn:
                x = _attend(t, f"attentions.{j}", x, b)
            t.push(x)
        if b.add_sampler:
            image = skip

            def downsample_image() -> None:  # downsamplers.0 (FirDownsample2D) runs right after resnet_down
                nonlocal image
                image = fir_filter(t, "", image, up=False, at=f"{path}.downsamplers.0")

            x = resnet_block_2d(t, "resnet_down", x, ctx, c, c, groups=_groups(c), down=True, kind="downsample",
                                shortcut=True, fir=True, after=downsample_image)
            skip = image
            s = t.conv("skip_conv", skip, IMAGE_CHANNELS, c, 1)
            if s.size != x.size:
                t.fail(path, f"{path}: skip_conv(skip_sample) is {fmt_size(s.size)} but the features are"
                             f" {fmt_size(x.size)}")
            x = Act(c, x.size, path)  # skip_conv(skip_sample) + hidden_states: the block returns it
            t.push(x)
    return x, skip




class _Image:
    """The running ``skip_sample`` of the up path (None while it is still the integer 0)."""

    def __init__(self, t: Tracer, block: str, skip: Act | None) -> None:
        self.t, self.block, self.act = t, block, skip

    def upsample(self) -> None:
        """``self.upsampler(skip_sample)``: FirUpsample2D, run right after the block's last resnet or attention
        (its row is the block's ``upsampler``, counted in the span of the unit that ran last)."""
        if self.act is not None:
            self.act = fir_filter(self.t, "", self.act, up=True, at=f"{self.block}.upsampler")


def skip_up_block(t: Tracer, i: int, b: BlockSpec, x: Act, ctx: Ctx, skip: Act | None) -> tuple[Act, Act | None]:
    """(hidden states, skip_sample or None while it is still the integer 0) after the block."""
    attn = b.type == "AttnSkipUpBlock2D"
    order = (*(("attentions",) if attn else ()), "resnets", "upsampler", "resnet_up", "skip_conv", "skip_norm")
    c = b.out_channels
    with t.block(f"up_blocks.{i}", f"{b.type} {b.prev_output_channel}->{c}", order=order) as path:
        image = _Image(t, path, skip)
        if b.num_layers == 0:
            while t.depth():  # res_samples = down_block_res_samples[-0:]: every skip left
                t.pop_entry(t.path())
        # the FIR row is counted inside the unit that ran last: the attention, the last resnet, or skip_norm
        late = not b.add_sampler and not attn
        for j in range(b.num_layers):
            res_c = b.in_channels if j == b.num_layers - 1 else c
            in_c = b.prev_output_channel if j == 0 else c
            name = f"resnets.{j}"
            x = t.cat([x, t.pop(name)], into=name)
            groups = min(in_c + res_c // 4, 32) if attn else _groups(in_c + res_c)
            x = resnet_block_2d(t, name, x, ctx, in_c + res_c, c, groups=groups, groups_out=_groups(c),
                                after=image.upsample if late and j == b.num_layers - 1 else None)
        if attn:
            with t.unit("attentions.0", "attention", "Attention", x) as u:
                x = u.done(_attend(t, "", x, b), new=False)
                image.upsample()
        if not b.add_sampler:
            if not attn and b.num_layers == 0:  # no unit ran: outside any span
                image.upsample()
            return x, image.act
        return _skip_out(t, path, x, ctx, c, image, attn)


def _skip_out(t: Tracer, path: str, x: Act, ctx: Ctx, c: int, image: _Image, attn: bool) -> tuple[Act, Act]:
    """skip_sample += skip_conv(act(skip_norm(h))), then hidden_states = resnet_up(h)."""
    with t.unit("skip_norm", kind_of(f"{path}.skip_norm", "GroupNorm", x.size, x.size), "GroupNorm", x) as u:
        if not attn:  # AttnSkipUpBlock2D counted it inside its attention
            image.upsample()
        h = u.done(t.group_norm("", x, _groups(c), c), new=False)
    s = t.conv("skip_conv", h, c, IMAGE_CHANNELS, 3, 1, 1)
    if image.act is not None and image.act.size != s.size:
        t.fail(path, f"{path}: skip_sample + skip_conv(...): {fmt_size(image.act.size)} vs {fmt_size(s.size)}")
    x = resnet_block_2d(t, "resnet_up", x, ctx, c, c, groups=_groups(c), up=True, kind="upsample", shortcut=True,
                        fir=True)
    return x, Act(IMAGE_CHANNELS, s.size, s.source)
