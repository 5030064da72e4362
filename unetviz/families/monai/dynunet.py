"""``monai.networks.nets.DynUNet`` (nnU-Net's dynamic U-Net in MONAI): per stage its own kernel and (anisotropic)
stride, ``UnetBasicBlock`` or ``UnetResBlock`` stages, ``UnetUpBlock`` decoder levels, deep supervision heads.

The modules are registered as lists (``input_block``, ``downsamples``, ``bottleneck``, ``upsamples``,
``output_block``, ``deep_supervision_heads``) and registered again inside ``skip_layers``, the recursive
``DynUNetSkipLayer`` chain the forward runs (``downsample``, ``next_layer``, ``upsample``, ``super_head``):
the layers take their first names, the ``skip_layers`` paths are aliases. Skip layer ``i`` runs
``downs[i]``, the next layer, ``upsamples[n - 2 - i]`` on ``cat(upsampled, downs[i]'s output)`` and, for
``1 <= i <= deep_supr_num`` with deep supervision, head ``i - 1``, in eval mode as in training (the eval forward
returns the final map only). Convs pad ``(k - s + 1) // 2``; a transposed conv's stride is its kernel.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError
from ...core.kinds import Kind
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from . import ops
from .blocks import Adn, act, norm
from .config import dims, int_seq, size_of


def _sizes(k: Args, key: str, d: int) -> list[Size]:
    raw = k.raw(key)
    if not isinstance(raw, (list, tuple)):
        raise UnetvizError(f"{key}: got {raw!r}; allowed: a list, one entry per stage")
    return [size_of(f"{key}.{i}", v, d) for i, v in enumerate(raw)]


def _padding(key: str, kernel: Size, stride: Size) -> Size:
    """``get_padding``: (k - s + 1) / 2 per axis, truncated; a negative value is MONAI's AssertionError."""
    if any(k - s + 1 < 0 for k, s in zip(kernel, stride, strict=True)):
        raise UnetvizError(f"{key}: kernel {fmt_size(kernel)} with stride {fmt_size(stride)} needs a negative"
                           " padding; allowed: strides up to kernel + 1")
    return tuple((k - s + 1) // 2 for k, s in zip(kernel, stride, strict=True))


def _named(key: str, value: Any) -> Any:
    if value is None:  # get_norm_layer(None) / get_act_layer(None): split_args' TypeError
        raise UnetvizError(f"{key}: got None; allowed: a name or a [name, {{keyword arguments}}] pair")
    return value


def dynunet(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``DynUNet.forward``: ``skip_layers(x)``, then ``output_block``."""
    d = dims(k)
    kernels, strides, ups = _sizes(k, "kernel_size", d), _sizes(k, "strides", d), _sizes(k, "upsample_kernel_size", d)
    n = len(strides)
    f = ([min(2 ** (5 + i), 320 if d == 3 else 512) for i in range(n)] if k.raw("filters") is None
         else int_seq(k, "filters"))
    if len(f) < n:
        raise UnetvizError(f"filters: got {f}; allowed: at least {n} (one per stride)")
    if len(kernels) != n or n < 3:
        raise UnetvizError(f"kernel_size: {len(kernels)} kernels for {n} strides; allowed: as many, at least 3")
    if len(ups) < n - 1:
        raise UnetvizError(f"upsample_kernel_size: got {len(ups)}; allowed: at least {n - 1} (one per upsampling)")
    ups = ups[len(ups) - (n - 1):]  # the constructor zips the reversed list: the last n - 1 are used
    drop = ops.dropout("dropout", k.raw("dropout"))
    o = Adn(dims=d, act=ops.act("act_name", _named("act_name", k.raw("act_name"))),
            norm=ops.norm("norm_name", _named("norm_name", k.raw("norm_name"))), dropout=drop, bias=False,
            norm_key="norm_name")
    res, trans_bias, ds = k.flag("res_block"), k.flag("trans_bias"), k.flag("deep_supervision")
    heads = k.int("deep_supr_num", 0)
    if ds and not 1 <= heads < n - 1:
        raise UnetvizError(f"deep_supr_num: got {heads}; allowed: 1 to {n - 2} (fewer than the {n - 1} upsamplings)")
    if res and any(s > 2 for st in strides for s in st):  # conv3 (1x1) pads (1 - s + 1) / 2
        raise UnetvizError(f"strides: got {[list(s) for s in strides]}; with res_block each stride must be 1 or 2"
                           " (the 1x1 residual conv would need a negative padding)")
    for i in range(n):
        _padding(f"kernel_size.{i}", kernels[i], strides[i])
    w = _Walk(t, d, o, kernels, strides, ups, f[:n], res, trans_bias, heads if ds else 0, out_c)
    t.declare(("input_block", "downsamples", "bottleneck", "upsamples", "output_block", "deep_supervision_heads",
               "skip_layers"))
    y = w.level(0, x)
    y = w.out_block("output_block", y, f[0], out_c)
    w.aliases(0, "skip_layers")
    return y


def unet_blocks(t: Tracer, d: int, o: Adn, out_c: int = 0) -> _Walk:
    """The stage builders (``UnetBasicBlock``, ``UnetResBlock``, ``UnetOutBlock``) for networks built of them
    (UNETR, SwinUNETR) without a DynUNet's stage lists."""
    return _Walk(t, d, o, [], [], [], [], False, False, 0, out_c)


class _Walk:
    """The forward of one DynUNet: its stages and settings, walked down the ``skip_layers`` recursion."""

    def __init__(self, t: Tracer, d: int, o: Adn, kernels: list[Size], strides: list[Size], ups: list[Size],
                 f: list[int], res: bool, trans_bias: bool, heads: int, out_c: int) -> None:
        self.t, self.d, self.o, self.kernels, self.strides, self.ups, self.f = t, d, o, kernels, strides, ups, f
        self.res, self.trans_bias, self.heads, self.out_c, self.n = res, trans_bias, heads, out_c, len(strides)

    def down_name(self, i: int) -> str:
        return "input_block" if i == 0 else "bottleneck" if i == self.n - 1 else f"downsamples.{i - 1}"

    def level(self, i: int, x: Act) -> Act:
        """``DynUNetSkipLayer`` ``i`` (the bottleneck at the bottom)."""
        in_c = x.channels if i == 0 else self.f[i - 1]
        down = self.block(self.down_name(i), x, in_c, self.f[i], self.kernels[i], self.strides[i], self.res)
        if i == self.n - 1:
            return down
        self.t.push(down)
        up = self.up_block(f"upsamples.{self.n - 2 - i}", self.level(i + 1, down), i)
        if 1 <= i <= self.heads:
            self.out_block(f"deep_supervision_heads.{i - 1}", up, self.f[i], self.out_c)
        return up

    def conv(self, name: str, x: Act, in_c: int, c: int, kernel: Size, stride: Size, bias: bool = False) -> Act:
        """``get_conv_layer`` (no act, no norm): a ``Convolution`` whose ``conv`` pads (k - s + 1) // 2."""
        with self.t.scope(name):
            return self.t.conv("conv", x, in_c, c, kernel, stride, _padding(name, kernel, stride), bias=bias,
                               dims=self.d)

    def block(self, name: str, x: Act, in_c: int, c: int, kernel: Size, stride: Size, res_block: bool) -> Act:
        """``UnetBasicBlock`` / ``UnetResBlock``: conv1 (stride), norm1, act, conv2, norm2, (conv3, norm3 on the
        input where the width or size changes, ``out += residual``), act."""
        t, one = self.t, (1,) * self.d
        res = res_block and (in_c != c or any(s != 1 for s in stride))
        kind: Kind = "conv" if not res_block else "downsample" if any(s != 1 for s in stride) else "resnet"
        with t.unit(name, kind, "UnetResBlock" if res_block else "UnetBasicBlock", x) as u:
            t.declare(("conv1", "conv2", "lrelu", "norm1", "norm2", "conv3", "norm3"))
            y = self.conv("conv1", x, in_c, c, kernel, stride)
            y = self.act(self.norm("norm1", y, c))
            y = self.norm("norm2", self.conv("conv2", y, c, c, kernel, one), c)
            if res_block:  # out += residual: the input itself where no conv3 is made
                r = self.norm("norm3", self.conv("conv3", x, in_c, c, one, stride), c) if res else x
                if any(b not in (a, 1) for a, b in zip(y.size or (), r.size or (), strict=True)):
                    t.fail(u.path, f"{u.path} (UnetResBlock): out += residual: the residual's {fmt_size(r.size)}"
                                   f" does not broadcast to the convs' {fmt_size(y.size)}")
            return u.done(self.act(y), new=False)  # lrelu returns the sum: the map's producer

    def norm(self, name: str, x: Act, c: int) -> Act:
        return x if self.o.norm is None else norm(self.t, name, x, self.o.norm, c, self.d, "norm_name")

    def act(self, x: Act) -> Act:
        return x if self.o.act is None else act(self.t, "lrelu", x, self.o.act)

    def up_block(self, name: str, x: Act, i: int) -> Act:
        """``UnetUpBlock``: ``transp_conv`` (kernel = stride = the upsample kernel), ``cat(up, skip)``, a basic
        block at the skip's width."""
        t, c, k = self.t, self.f[i], self.ups[i]
        with t.unit(name, "upsample", "UnetUpBlock", x) as u:
            with t.scope("transp_conv"):
                y = t.conv("conv", x, self.f[i + 1], c, k, k, 0, bias=self.trans_bias, dims=self.d, transpose=True)
            skip = t.pop()
            if y.size != skip.size:
                t.fail(u.path, f"{u.path} (UnetUpBlock): torch.cat: the upsampled {fmt_size(y.size)} and the skip's"
                               f" {fmt_size(skip.size)} (from {skip.source}) differ")
            # the decoder's conv_block is a UnetBasicBlock with res_block too
            y = self.block("conv_block", t.cat([y, skip], into="conv_block"), 2 * c, c, self.kernels[i + 1],
                           (1,) * self.d, False)
            return u.done(y, new=False)

    def out_block(self, name: str, x: Act, in_c: int, c: int) -> Act:
        """``UnetOutBlock``: a 1x1 conv with a bias."""
        with self.t.unit(name, "conv", "UnetOutBlock", x) as u:
            return u.done(self.conv("conv", x, in_c, c, (1,) * self.d, (1,) * self.d, bias=True), new=False)

    def aliases(self, i: int, base: str) -> None:
        """``skip_layers``: every module again, in the order ``DynUNetSkipLayer`` registers them."""
        if i == self.n - 1:
            self.t.alias(base, "bottleneck")
            return
        self.t.alias(f"{base}.downsample", self.down_name(i))
        self.aliases(i + 1, f"{base}.next_layer")
        self.t.alias(f"{base}.upsample", f"upsamples.{self.n - 2 - i}")
        if 1 <= i <= self.heads:
            self.t.alias(f"{base}.super_head", f"deep_supervision_heads.{i - 1}")
