"""diffusers 0.42 Dance Diffusion blocks (unets/unet_1d_blocks.py): ``ResConvBlock``, ``SelfAttention1d``, the
cubic ``Downsample1d`` / ``Upsample1d`` and the down, mid and up blocks built of them.

Sizes are 1-tuples: the length of a ``(B, C, L)`` signal. The resamplers own no parameters, only a
persistent ``kernel`` buffer (8 cubic taps), which is in the ``state_dict``.
"""

from __future__ import annotations

from ...core.records import Shape, fmt_size
from ...engine.tracer import Act, Tracer

DOWN_TYPES = ("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D")
UP_TYPES = ("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip")
MID_TYPES = ("UNetMidBlock1D",)
RL_TYPES = ("DownResnetBlock1D", "UpResnetBlock1D", "MidResTemporalBlock1D", "ValueFunctionMidBlock1D")
"""The reinforcement-learning (Diffuser planning) blocks get_*_block also builds; unetviz does not trace them yet."""
CUBIC = (8,)
"""Shape of the cubic kernel buffer of Downsample1d / Upsample1d."""


def buffer(t: Tracer, name: str, shape: Shape) -> None:
    """A persistent buffer (a resampling kernel): a ``state_dict`` entry that is neither a parameter nor a layer.

    ``Tracer.buffer`` is the tracer's API for it; a tracer without it leaves the buffer out of the manifest."""
    record = getattr(t, "buffer", None)
    if record is not None:
        record(name, shape)


def res_conv_block(t: Tracer, name: str, x: Act, c_in: int, c_mid: int, c_out: int, is_last: bool = False) -> Act:
    """``ResConvBlock``: (1x1 conv_skip) then conv_1 (k5) -> GroupNorm(1) -> GELU -> conv_2 (k5) (-> GroupNorm(1))."""
    note = f"{c_in}->{c_mid}->{c_out}" + (" +1x1 skip" if c_in != c_out else "")
    note += ", last: no norm" if is_last else ""
    with t.unit(name, "resnet", "ResConvBlock", x, note) as u:
        if c_in != c_out:  # the residual is computed first, so conv_skip runs first
            t.conv("conv_skip", x, c_in, c_out, 1, bias=False, dims=1)
        h = t.conv("conv_1", x, c_in, c_mid, 5, 1, 2, dims=1)
        h = t.group_norm("group_norm_1", h, 1, c_mid)
        h = t.conv("conv_2", h, c_mid, c_out, 5, 1, 2, dims=1)
        if not is_last:
            h = t.group_norm("group_norm_2", h, 1, c_out)
        return u.done(h)


def self_attention_1d(t: Tracer, name: str, x: Act, channels: int) -> Act:
    """``SelfAttention1d(channels, channels // 32)``: GroupNorm(1), q/k/v on the L tokens, proj_attn, + residual."""
    heads = channels // 32
    note = f"{heads} heads x {channels // heads if heads else 0} on {fmt_size(x.size)} tokens"
    with t.unit(name, "attention", "SelfAttention1d", x, note) as u:
        h = t.group_norm("group_norm", x, 1, channels)
        length = (x.size or (1,))[0]
        seq = Act(channels, None, h.source, length)
        for proj in ("query", "key", "value"):
            t.linear(proj, seq, channels, channels)
        if heads < 1 or channels % heads:
            # transpose_for_scores: view(B, L, heads, -1) of the channels
            t.fail(u.path, f"{u.path}: {channels} channels in {heads} heads (channels // 32): view(B, L, {heads}, -1)"
                           " cannot split them; SelfAttention1d needs at least 32 channels, a multiple of the heads")
        d = channels // max(1, heads)
        t.attention_matmuls("", seq, max(1, heads), d, d, length, length)
        t.linear("proj_attn", seq, channels, channels)
        return u.done(Act(channels, x.size, u.path))


def downsample_1d(t: Tracer, name: str, x: Act) -> Act:
    """``Downsample1d("cubic")``: reflect-pad 3, a fixed depthwise stride-2 conv with the 8-tap kernel: L -> L // 2."""
    buffer(t, f"{name}.kernel", CUBIC)
    n = (x.size or (1,))[0]
    if n <= 3:  # F.pad(mode="reflect") needs the padding (3) to be smaller than the length
        t.fail(t.path(name), f"{t.path(name)} (Downsample1d): reflect padding 3 needs a length above 3, gets {n}")
    out = (max(1, (n + 6 - 8) // 2 + 1),)
    with t.unit(name, "downsample", "Downsample1d", x, "cubic, reflect pad 3, stride 2") as u:
        # F.conv1d with a C x C x 8 weight it builds (the kernel on the diagonal): a row for its MACs
        t.fixed_conv("", Act(x.channels, (n + 6,), x.source), out, 8, 2)
        return u.done(Act(x.channels, out, u.path), new=False)  # the module returns it: its `from`


def upsample_1d(t: Tracer, name: str, x: Act) -> Act:
    """``Upsample1d("cubic")``: reflect-pad 2, then a fixed stride-2 transposed conv: L -> 2 L."""
    buffer(t, f"{name}.kernel", CUBIC)
    n = (x.size or (1,))[0]
    if n <= 2:
        t.fail(t.path(name), f"{t.path(name)} (Upsample1d): reflect padding 2 needs a length above 2, gets {n}")
    out = ((n + 4 - 1) * 2 - 2 * 7 + 8,)
    with t.unit(name, "upsample", "Upsample1d", x, "cubic, reflect pad 2, transposed stride 2") as u:
        t.fixed_conv("", Act(x.channels, (n + 4,), x.source), out, 8, 2, 7, transpose=True)
        return u.done(Act(x.channels, out, u.path), new=False)


def _resnets(t: Tracer, x: Act, chans: list[tuple[int, int, int]], attend: bool, last_is_last: bool = False) -> Act:
    """The three (or six) ResConvBlocks of a block, each followed by its attention when ``attend``."""
    for j, (c_in, c_mid, c_out) in enumerate(chans):
        x = res_conv_block(t, f"resnets.{j}", x, c_in, c_mid, c_out, is_last=last_is_last and j == len(chans) - 1)
        if attend:
            x = self_attention_1d(t, f"attentions.{j}", x, c_out)
    return x


def down_block(t: Tracer, i: int, kind: str, x: Act, c_in: int, c_out: int, temb: Act) -> Act:
    """DownBlock1DNoSkip (concats the time features first) / DownBlock1D / AttnDownBlock1D; pushes its output."""
    attend = kind == "AttnDownBlock1D"
    order = ("down", "attentions", "resnets")
    with t.block(f"down_blocks.{i}", f"{kind} {c_in}->{c_out}", order=order):
        if kind == "DownBlock1DNoSkip":
            if temb.size is None:  # time_mlp's (B, C) embedding cannot join a (B, C, L) signal
                t.fail("down_blocks.0", "torch.cat([sample, timestep_embed]) in DownBlock1DNoSkip: with"
                                        " use_timestep_embedding the embedding is (B, C), not (B, C, L)")
                temb = Act(temb.channels, x.size, temb.source)
            x = t.cat([x, temb], into="resnets.0")
        else:
            x = downsample_1d(t, "down", x)
        x = _resnets(t, x, [(c_in, c_out, c_out), (c_out, c_out, c_out), (c_out, c_out, c_out)], attend)
    t.push(x)  # return hidden_states, (hidden_states,)
    return x


def mid_block(t: Tracer, x: Act, c_in: int, c_mid: int, c_out: int) -> Act:
    """``UNetMidBlock1D``: down, six (ResConvBlock, SelfAttention1d) pairs, up: it halves and restores the length."""
    with t.block("mid_block", f"UNetMidBlock1D {c_in}->{c_out}", order=("down", "up", "attentions", "resnets")):
        x = downsample_1d(t, "down", x)
        chans = [(c_in, c_mid, c_mid), *[(c_mid, c_mid, c_mid)] * 4, (c_mid, c_mid, c_out)]
        x = _resnets(t, x, chans, attend=True)
        return upsample_1d(t, "up", x)


def up_block(t: Tracer, i: int, kind: str, x: Act, c_in: int, c_out: int) -> Act:
    """AttnUpBlock1D / UpBlock1D / UpBlock1DNoSkip: concat one skip, three ResConvBlocks (+ attention), upsample."""
    attend = kind == "AttnUpBlock1D"
    mid = c_out if attend else c_in  # mid_channels defaults to out_channels only in AttnUpBlock1D
    order = ("attentions", "resnets", "up")
    with t.block(f"up_blocks.{i}", f"{kind} {c_in}->{c_out}", order=order):
        skip = t.pop("resnets.0")  # res_samples = down_block_res_samples[-1:]
        x = t.cat([x, skip], into="resnets.0")
        x = _resnets(t, x, [(2 * c_in, mid, mid), (mid, mid, mid), (mid, mid, c_out)], attend,
                     last_is_last=kind == "UpBlock1DNoSkip")
        if kind != "UpBlock1DNoSkip":
            x = upsample_1d(t, "up", x)
    return x
