"""``monai.networks.nets.UNet`` and ``AttentionUnet``: U-Nets built by recursion, one level inside the other.

UNet: ``model = Sequential(down, SkipConnection(subblock), up)``, the subblock again such a Sequential (paths
``model.1.submodule.1.submodule...``) down to the bottom layer. ``SkipConnection`` returns
``torch.cat([x, submodule(x)])``: the skip first. A down layer is a strided ``Convolution`` (or a
``ResidualUnit`` with ``num_res_units``), an up layer a transposed one (followed by a one-subunit
``ResidualUnit``); the top up layer is a bare conv without residual units.

AttentionUnet: ``model = Sequential(ConvBlock, AttentionLayer, 1x1 conv)``; each ``AttentionLayer`` runs its
``submodule`` (a strided ConvBlock and the next layer), ``upconv``, the ``attention`` gate of the skip by the
upsampled map, and ``merge`` of ``cat(gated skip, upsampled)``. Its modules are registered attention, upconv,
merge, submodule: not the forward's order.
"""

from __future__ import annotations

from ...core.config import Args
from ...core.errors import UnetvizError
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from . import ops
from .blocks import Adn, broadcast, convolution, norm, residual_unit
from .config import dims, int_seq, odd, size_of


def _levels(k: Args, d: int) -> tuple[list[int], list[Size]]:
    """``channels`` (at least 2) and a stride per level below (extra strides are unused, as MONAI warns)."""
    channels = int_seq(k, "channels")
    if len(channels) < 2:
        raise UnetvizError(f"channels: got {channels}; allowed: at least 2 levels")
    raw = k.raw("strides")
    if not isinstance(raw, (list, tuple)) or len(raw) < len(channels) - 1:
        raise UnetvizError(f"strides: got {raw!r}; allowed: a list of at least {len(channels) - 1}"
                           " (len(channels) - 1) strides")
    return channels, [size_of(f"strides.{i}", s, d) for i, s in enumerate(raw[:len(channels) - 1])]


def _kernels(k: Args, d: int) -> tuple[Size, Size]:
    return (odd("kernel_size", size_of("kernel_size", k.raw("kernel_size"), d)),
            odd("up_kernel_size", size_of("up_kernel_size", k.raw("up_kernel_size"), d)))


def _cat_skip(t: Tracer, y: Act) -> Act:
    """``torch.cat([x, y], dim=1)`` in the SkipConnection being walked: the skip and the submodule's output."""
    skip = t.pop()
    if skip.size != y.size:
        t.fail(t.path(), f"{t.path()} (SkipConnection): torch.cat: the skip's {fmt_size(skip.size)} (from"
                         f" {skip.source}) and the submodule's {fmt_size(y.size)} (from {y.source}) differ")
    return t.cat([skip, y], into=None)


def unet(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``UNet.forward``: ``self.model(x)``."""
    d = dims(k)
    channels, strides = _levels(k, d)
    kernel, up_kernel = _kernels(k, d)
    res = k.int("num_res_units", 0)
    ordering = k.raw("adn_ordering")
    if not isinstance(ordering, str):
        raise UnetvizError(f"adn_ordering: got {ordering!r}; allowed: a string of N, D and A")
    o = Adn(dims=d, act=ops.act("act", k.raw("act")), norm=ops.norm("norm", k.raw("norm")),
            dropout=ops.dropout("dropout", k.raw("dropout")), bias=k.flag("bias"), ordering=ordering)

    def down(name: str, x: Act, in_c: int, c: int, s: Size) -> Act:
        if res > 0:
            return residual_unit(t, name, x, in_c, c, kernel, s, o, res)
        return convolution(t, name, x, in_c, c, kernel, s, o)

    def up(name: str, x: Act, in_c: int, c: int, s: Size, top: bool) -> Act:
        if res == 0:
            return convolution(t, name, x, in_c, c, up_kernel, s, o, conv_only=top, transposed=True)
        with t.unit(name, "upsample", "Sequential", x) as u:  # one decoder step: the concat's consumer
            x = convolution(t, "0", x, in_c, c, up_kernel, s, o, transposed=True)
            return u.done(residual_unit(t, "1", x, c, c, kernel, (1,) * d, o, 1, last_conv_only=top), new=False)

    def level(x: Act, in_c: int, c_out: int, chans: list[int], strides: list[Size], top: bool) -> Act:
        c, s = chans[0], strides[0]
        x = down("0", x, in_c, c, s)
        t.push(x)
        with t.scope("1"):
            with t.scope("submodule"):
                if len(chans) > 2:
                    y = level(x, c, c, chans[1:], strides[1:], False)
                    up_c = 2 * c
                else:
                    y = down("", x, c, chans[1], (1,) * d)
                    up_c = c + chans[1]
            y = _cat_skip(t, y)
        return up("2", y, up_c, c_out, s, top)

    with t.scope("model"):
        return level(x, x.channels, out_c, channels, strides, True)


def attention_unet(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``AttentionUnet.forward``: ``self.model(x)``, the head ConvBlock, the nested AttentionLayers, the 1x1."""
    d = dims(k)
    channels, strides = _levels(k, d)
    kernel, up_kernel = _kernels(k, d)
    drop = ops.dropout("dropout", k.raw("dropout"))
    one = (1,) * d
    batch = ops.Norm(kind="BATCH", affine=True, track=True)
    block = Adn(dims=d, act=ops.Act(type="ReLU"), norm=batch, dropout=drop)
    merge = Adn(dims=d, act=ops.Act(type="PReLU", prelu=1), norm=ops.Norm(kind="INSTANCE", affine=False,
                                                                           track=False), dropout=drop)
    bare = Adn(dims=d, act=None, norm=None, dropout=False)

    def conv_block(name: str, x: Act, in_c: int, c: int, s: Size) -> Act:
        with t.unit(name, "conv", "ConvBlock", x) as u, t.scope("conv"):
            x = convolution(t, "0", x, in_c, c, kernel, s, block)
            return u.done(convolution(t, "1", x, c, c, kernel, one, block), new=False)

    def gate(g: Act, skip: Act, f: int) -> Act:
        """``AttentionBlock``: ``x * sigmoid(bn(psi(relu(W_g(g) + W_x(x)))))``."""
        with t.unit("attention", "attention", "AttentionBlock", skip) as u:
            g1 = norm(t, "W_g.1", convolution(t, "W_g.0", g, f, f // 2, one, one, bare, padding=(0,) * d),
                      batch, f // 2, d, "")
            x1 = norm(t, "W_x.1", convolution(t, "W_x.0", skip, f, f // 2, one, one, bare, padding=(0,) * d),
                      batch, f // 2, d, "")
            s = Act(f // 2, broadcast(t, u.path, "g1 + x1", g1, x1), "")
            psi = norm(t, "psi.1", convolution(t, "psi.0", s, f // 2, 1, one, one, bare, padding=(0,) * d),
                       batch, 1, d, "")
            # the gated skip: still the skip for the concat that merges it
            return u.done(Act(f, broadcast(t, u.path, "x * psi", skip, psi), u.path, skip=skip.skip), new=False)

    def layer(name: str, x: Act, chans: list[int], strides: list[Size]) -> Act:
        c, below, s = chans[0], chans[1], strides[0]
        with t.scope(name, order=("attention", "upconv", "merge", "submodule")):
            t.push(x)
            with t.scope("submodule"):
                if len(chans) > 2:
                    y = layer("1", conv_block("0", x, c, below, s), chans[1:], strides[1:])
                else:
                    y = conv_block("", x, c, below, s)
            with t.unit("upconv", "upsample", "UpConv", y) as u:
                up = u.done(convolution(t, "up", y, below, c, up_kernel, s, block, transposed=True), new=False)
            att = gate(up, t.pop(), c)
            if att.size != up.size:
                t.fail(t.path(), f"{t.path()} (AttentionLayer): torch.cat: the gated skip's {fmt_size(att.size)}"
                                 f" and the upsampled {fmt_size(up.size)} differ")
            return convolution(t, "merge", t.cat([att, up], into="merge"), 2 * c, c, (3,) * d, one, merge)

    with t.scope("model"):
        x = conv_block("0", x, x.channels, channels[0], one)
        x = layer("1", x, channels, strides)
        return convolution(t, "2", x, channels[0], out_c, one, one, bare, padding=(0,) * d)
