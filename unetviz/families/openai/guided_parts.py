"""guided-diffusion's building blocks (guided_diffusion/unet.py), one function per class.

``UNetModel.__init__`` is mirrored by plain records (``Res``, ``Attn``, ``Sample``, ``Conv``): the
constructor's decisions, checked before any size is known. The functions below run one record
the way its ``forward`` does, so layers land in execution order with their real paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...core.kinds import Kind
from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer

GROUPS = 32
"""``nn.normalization`` is always ``GroupNorm32(32, channels)``."""


@dataclass(frozen=True)
class Res:
    """``ResBlock(channels, emb, dropout, out_channels, up=..., down=...)``."""

    channels: int
    out_channels: int
    up: bool = False
    down: bool = False


@dataclass(frozen=True)
class Attn:
    """``AttentionBlock(channels, num_heads)`` (num_head_channels already turned into heads)."""

    channels: int
    num_heads: int


@dataclass(frozen=True)
class Sample:
    """``Downsample`` / ``Upsample`` (``use_conv`` is the model's ``conv_resample``)."""

    channels: int
    use_conv: bool
    up: bool


@dataclass(frozen=True)
class Conv:
    """The lone 3x3 ``conv_nd`` of ``input_blocks.0``."""

    in_channels: int
    out_channels: int


Module = Res | Attn | Sample | Conv


@dataclass(frozen=True)
class Block:
    """One ``TimestepEmbedSequential``: its children and the U-Net level it sits on."""

    layers: tuple[Module, ...]
    level: int


@dataclass(frozen=True)
class Emb:
    """What every ResBlock / AttentionBlock reads besides its input."""

    emb: Act
    use_scale_shift_norm: bool
    use_new_attention_order: bool


def norm(t: Tracer, name: str, x: Act, channels: int) -> Act:
    """``normalization(channels)``: guided's own ``GroupNorm32`` (it normalises in float32), named as
    the real module's class so the trace reads like the model's ``print``."""
    tensors = [("weight", (channels,)), ("bias", (channels,))]
    return t.owner(name, "GroupNorm32", x, replace(x, source=""), tensors, f"{GROUPS} groups")


def describe(block: Block) -> str:
    names = []
    for m in block.layers:
        if isinstance(m, Res):
            extra = " (up)" if m.up else " (down)" if m.down else ""
            names.append(f"ResBlock {m.channels}->{m.out_channels}{extra}")
        elif isinstance(m, Attn):
            names.append("AttentionBlock")
        elif isinstance(m, Sample):
            names.append("Upsample" if m.up else "Downsample")
        else:
            names.append(f"Conv2d {m.in_channels}->{m.out_channels}")
    return " + ".join(names)


def run_block(t: Tracer, block: Block, h: Act, e: Emb) -> Act:
    """``TimestepEmbedSequential.forward``: each child in turn, named by its index."""
    for j, m in enumerate(block.layers):
        if isinstance(m, Res):
            h = res_block(t, str(j), h, m, e)
        elif isinstance(m, Attn):
            h = attention_block(t, str(j), h, m, e.use_new_attention_order)
        elif isinstance(m, Sample):
            h = upsample(t, str(j), h, m) if m.up else downsample(t, str(j), h, m)
        else:
            with t.unit(str(j), "conv", "Conv2d", h) as u:
                h = u.done(t.conv("", h, m.in_channels, m.out_channels, 3, 1, 1), new=False)
    return h


def _pool(t: Tracer, where: str, x: Act) -> Act:
    """``avg_pool_nd(2, kernel_size=2, stride=2)``: floors, and PyTorch refuses an empty output."""
    size = tuple(d // 2 for d in x.size or ())
    if min(size, default=0) < 1:
        t.fail(where, f"{where} (AvgPool2d 2x2) gets a {fmt_size(x.size)} input: the output would be"
                                  f" {fmt_size(size)}")
    return Act(x.channels, size, where)


def _twice(x: Act) -> Act:
    return Act(x.channels, tuple(d * 2 for d in x.size or ()), x.source)


def res_block(t: Tracer, name: str, x: Act, m: Res, e: Emb) -> Act:
    """``ResBlock._forward``: in_layers (norm, SiLU, [resample,] conv), emb_layers, out_layers, skip.

    The up/down variant resamples between in_layers' SiLU and conv, and resamples the skip path the
    same way (``h_upd`` / ``x_upd``, parameter-free ``Upsample``/``Downsample``).
    """
    shift = e.use_scale_shift_norm
    emb_out = 2 * m.out_channels if shift else m.out_channels
    note = f"{m.channels}->{m.out_channels}" + (" +1x1 skip" if m.channels != m.out_channels else "")
    note += ", scale-shift norm" if shift else ""
    note += ", nearest x2 inside" if m.up else ", avg-pool /2 inside" if m.down else ""
    kind: Kind = "upsample" if m.up else "downsample" if m.down else "resnet"
    with t.unit(name, kind, "ResBlock", x, note) as u:
        t.declare(("in_layers", "h_upd", "x_upd", "emb_layers", "out_layers", "skip_connection"))
        h = norm(t, "in_layers.0", x, m.channels)
        if m.up:
            h, x = _twice(h), _twice(x)
        elif m.down:
            h = _pool(t, f"{u.path}.h_upd.op", h)
            x = _pool(t, f"{u.path}.x_upd.op", x)
        h = t.conv("in_layers.2", h, m.channels, m.out_channels, 3, 1, 1)
        t.linear("emb_layers.1", e.emb, e.emb.channels, emb_out, note="scale+shift" if shift else "")
        h = norm(t, "out_layers.0", h, m.out_channels)
        h = t.conv("out_layers.3", h, m.out_channels, m.out_channels, 3, 1, 1)
        if m.channels != m.out_channels:
            t.conv("skip_connection", x, m.channels, m.out_channels, 1, 1, 0)
        return u.done(h)  # skip_connection(x) + h: a fresh tensor the ResBlock returns


def attention_block(t: Tracer, name: str, x: Act, m: Attn, new_order: bool) -> Act:
    """``AttentionBlock._forward``: flattened to (B, C, H*W), so norm and the 1x1 Conv1d see ``(H*W,)``."""
    tokens = 1
    for d in x.size or ():
        tokens *= d
    head_dim = m.channels // m.num_heads
    kind = "QKVAttention" if new_order else "QKVAttentionLegacy"
    note = f"{m.num_heads} heads x {head_dim}, {kind}, {tokens} tokens"
    with t.unit(name, "attention", "AttentionBlock", x, note) as u:
        flat = Act(x.channels, (tokens,), x.source)
        h = norm(t, "norm", flat, m.channels)
        qkv = t.conv("qkv", h, m.channels, 3 * m.channels, 1, dims=1)
        if m.channels % m.num_heads:
            # the constructor accepts it; QKVAttention's forward asserts width % (3 * heads) == 0
            where = f"{u.path}.attention"
            t.fail(where, f"{where} ({kind}): {m.channels} channels do not split into"
                                      f" {m.num_heads} heads (num_heads / num_heads_upsample)")
        t.attention_matmuls("attention", qkv, m.num_heads, head_dim, head_dim, tokens, tokens, "einsum_attention")
        h = t.conv("proj_out", Act(m.channels, qkv.size, f"{u.path}.attention"), m.channels, m.channels, 1, dims=1)
        return u.done(Act(m.channels, x.size, h.source))  # (x + h).reshape(...): the block's own tensor


def downsample(t: Tracer, name: str, x: Act, m: Sample) -> Act:
    """``Downsample``: a 3x3 stride-2 conv (pad 1, so odd sizes round up) or a 2x2 average pool."""
    note = "3x3 stride 2" if m.use_conv else "avg-pool 2x2"
    with t.unit(name, "downsample", "Downsample", x, note) as u:
        if m.use_conv:
            return u.done(t.conv("op", x, m.channels, m.channels, 3, 2, 1), new=False)
        return u.done(_pool(t, f"{u.path}.op", x), new=False)  # the AvgPool2d returned it


def upsample(t: Tracer, name: str, x: Act, m: Sample) -> Act:
    """``Upsample``: nearest x2 (``F.interpolate``, no size hint), then an optional 3x3 conv."""
    note = "nearest x2" + (" + 3x3 conv" if m.use_conv else "")
    with t.unit(name, "upsample", "Upsample", x, note) as u:
        y = _twice(x)
        if m.use_conv:
            return u.done(t.conv("conv", y, m.channels, m.channels, 3, 1, 1), new=False)
        return u.done(y)  # F.interpolate's tensor, returned by the Upsample itself
