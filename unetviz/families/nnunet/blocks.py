"""dynamic_network_architectures' building blocks: ``ConvDropoutNormReLU`` and its stacks
(``simple_conv_blocks.py``), the ResNet-D blocks ``BasicBlockD`` / ``BottleneckD`` (``residual.py``).

``ConvDropoutNormReLU`` registers each op twice, as an attribute (``conv``, ``norm``) and inside
``all_modules`` (the Sequential its forward runs): the tracer records the layers under the attribute names
(``named_modules()`` gives a module its first name) and ``all_modules.i`` as aliases of them.
"""

from __future__ import annotations

from math import prod

from ...core.kinds import Kind, resampling
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from . import ops
from .config import Arch


def cdnr(t: Tracer, name: str, x: Act, in_c: int, out_c: int, kernel: Size, stride: Size, a: Arch, *,
         dropout: bool, nonlin: bool, bias: bool | None = None, nonlin_first: bool = False) -> Act:
    """``ConvDropoutNormReLU``: conv (same padding), dropout, norm, nonlin (nonlin before norm if ``nonlin_first``)."""
    with t.unit(name, "conv", "ConvDropoutNormReLU", x) as u:
        y = t.conv("conv", x, in_c, out_c, kernel, stride, tuple((k - 1) // 2 for k in kernel),
                   bias=a.bias if bias is None else bias, dims=a.dims)
        if a.norm is not None:
            y = norm(t, y, a.norm, out_c, a.dims)
        # registered after conv and norm: all_modules = [conv, dropout?, norm, nonlin?], the last two swapped
        # when nonlin_first
        t.alias("all_modules.0", t.path("conv"))
        if a.norm is not None:
            t.alias(f"all_modules.{1 + dropout + (nonlin and nonlin_first)}", t.path("norm"))
        return u.done(Act(y.channels, y.size, t.path(_last_op(a, nonlin, nonlin_first))), new=False)


def _last_op(a: Arch, nonlin: bool, nonlin_first: bool) -> str:
    """The module that returns the block's output, its producer by the rule the observer reads
    (``docs/design.md``): the last op of ``all_modules`` (an in-place LeakyReLU still returns its result; an
    eval-mode dropout hands its input on, so never it). A norm without affine parameters owns no row but
    still returns a new tensor."""
    ops = ["conv", *(["norm"] if a.norm is not None else []), *(["nonlin"] if nonlin else [])]
    if nonlin_first and len(ops) == 3:
        ops[1:] = ["nonlin", "norm"]
    return ops[-1]


def norm(t: Tracer, x: Act, n: ops.Norm, channels: int, dims: int) -> Act:
    """``norm_op(channels, **norm_op_kwargs)`` as the eval-mode forward runs it (no input statistics are
    kept when ``track_running_stats`` is off, so a map of one value per channel fails there)."""
    full = t.path("norm")
    tensors = [("weight", (channels,)), ("bias", (channels,))] if n.affine else []
    y = t.owner("norm", n.type, x, Act(channels, x.size, ""), tensors) if tensors else x
    if n.track:
        for buf, dims_ in (("running_mean", (channels,)), ("running_var", (channels,)), ("num_batches_tracked", ())):
            t.buffer(f"norm.{buf}", dims_)
    size = x.size or ()
    shape = f"torch.Size([1, {channels}, {', '.join(map(str, size))}])"
    if n.dims != dims:  # torch checks the input's rank first
        wants = f"{n.dims + 2}D" if n.batch else f"{n.dims + 1}D or {n.dims + 2}D"
        t.fail(full, f"{full} ({n.type}) gets a {dims + 2}-d map: expected {wants} input (got {dims + 2}D input)")
    elif not n.track and prod(size) == 1:
        what = "value per channel" if n.batch else "spatial element"
        t.fail(full, f"{full} ({n.type}) gets a {fmt_size(size)} map: Expected more than 1 {what} when training,"
                     f" got input size {shape}")
    return y


def stacked_convs(t: Tracer, name: str, x: Act, n: int, in_c: int, out_c: int, kernel: Size, stride: Size,
                  a: Arch, nonlin_first: bool = False) -> Act:
    """``StackedConvBlocks``: ``convs.0`` takes the stride, the rest keep the size."""
    with t.scope(name):
        for i in range(n):
            x = cdnr(t, f"convs.{i}", x, in_c if i == 0 else out_c, out_c, kernel, stride if i == 0 else _ones(a),
                     a, dropout=a.dropout, nonlin=a.nonlin, nonlin_first=nonlin_first)
    return x


def residual_blocks(t: Tracer, x: Act, n: int, in_c: int, out_c: int, kernel: Size, stride: Size, a: Arch,
                    bottleneck: int | None) -> Act:
    """``StackedResidualBlocks``: ``blocks.0`` takes the stride and the projection."""
    for i in range(n):
        c, s = (in_c, stride) if i == 0 else (out_c, _ones(a))
        if a.block == "BottleneckD":
            x = bottleneck_block(t, f"blocks.{i}", x, c, bottleneck or 1, out_c, kernel, s, a)
        else:
            x = basic_block(t, f"blocks.{i}", x, c, out_c, kernel, s, a)
    return x


def basic_block(t: Tracer, name: str, x: Act, in_c: int, out_c: int, kernel: Size, stride: Size, a: Arch) -> Act:
    """``BasicBlockD``: the skip first (its forward computes ``residual`` before the convs), then conv1 (stride,
    dropout, nonlin), conv2 (no nonlin), ``out += residual`` and nonlin2."""
    with t.unit(name, _kind(x, kernel, stride), "BasicBlockD", x) as u:
        t.declare(("conv1", "conv2", "nonlin2", "skip"))
        residual = _skip(t, x, in_c, out_c, stride, a)
        y = cdnr(t, "conv1", x, in_c, out_c, kernel, stride, a, dropout=a.dropout, nonlin=a.nonlin)
        y = cdnr(t, "conv2", y, out_c, out_c, kernel, _ones(a), a, dropout=False, nonlin=False)
        _add(t, u.path, y, residual)
        return u.done(_nonlin_out(t, a, y, "nonlin2"), new=False)


def bottleneck_block(t: Tracer, name: str, x: Act, in_c: int, mid: int, out_c: int, kernel: Size, stride: Size,
                     a: Arch) -> Act:
    """``BottleneckD``: 1x1 down to ``mid``, the kernel conv with the stride and dropout, 1x1 up, the residual."""
    with t.unit(name, _kind(x, kernel, stride), "BottleneckD", x) as u:
        t.declare(("conv1", "conv2", "conv3", "nonlin3", "skip"))
        residual = _skip(t, x, in_c, out_c, stride, a)
        one = _ones(a)
        y = cdnr(t, "conv1", x, in_c, mid, one, one, a, dropout=False, nonlin=a.nonlin)
        y = cdnr(t, "conv2", y, mid, mid, kernel, stride, a, dropout=a.dropout, nonlin=a.nonlin)
        y = cdnr(t, "conv3", y, mid, out_c, one, one, a, dropout=False, nonlin=False)
        _add(t, u.path, y, residual)
        return u.done(_nonlin_out(t, a, y, "nonlin3"), new=False)


def _kind(x: Act, kernel: Size, stride: Size) -> Kind:
    """A block whose strided conv shrinks the map is a sampler, whatever its class (``docs/design.md``, kinds);
    the size its same-padded conv makes: ``(n + 2 * ((k - 1) // 2) - k) // s + 1``."""
    size = x.size or ()
    out = tuple((n + 2 * ((k - 1) // 2) - k) // s + 1 for n, k, s in zip(size, kernel, stride, strict=True))
    return resampling(size, out) or "resnet"


def _nonlin_out(t: Tracer, a: Arch, y: Act, name: str) -> Act:
    """``return self.nonlin2(out)`` after ``out += residual``: the nonlin returns the block's output, so it is
    the producer; without one (``lambda x: x``) the sum is made in place in the last conv's tensor, whose
    producer stays."""
    return Act(y.channels, y.size, t.path(name)) if a.nonlin else y


def _skip(t: Tracer, x: Act, in_c: int, out_c: int, stride: Size, a: Arch) -> Act:
    """ResNet-D's skip: ``AvgPool(stride, stride)`` where the block strides, a 1x1 projection (no bias, normed,
    no nonlin) where the width changes; the identity otherwise."""
    strided, project = any(s != 1 for s in stride), in_c != out_c
    if not (strided or project):
        return x
    with t.scope("skip"):
        if strided:
            x = _avg_pool(t, "0", x, stride)
        if project:
            one = _ones(a)
            x = cdnr(t, str(int(strided)), x, in_c, out_c, one, one, a, dropout=False, nonlin=False, bias=False)
    return x


def _avg_pool(t: Tracer, name: str, x: Act, stride: Size) -> Act:
    """``AvgPool{n}d(kernel=stride, stride=stride)``: floor division, where the strided conv rounds up."""
    full, size = t.path(name), x.size or ()
    out = tuple((n - s) // s + 1 for n, s in zip(size, stride, strict=True))
    if min(out) < 1:
        t.fail(full, f"{full} (AvgPool{len(size)}d {fmt_size(stride)}) gets a {fmt_size(size)} input, too small:"
                     f" the output would be {fmt_size(out)}")
        out = tuple(max(1, n) for n in out)
    return Act(x.channels, out, full)


def _add(t: Tracer, at: str, y: Act, residual: Act) -> None:
    """``out += residual``: in place, so the residual must broadcast to the output (an axis of 1 does)."""
    out, res = y.size or (), residual.size or ()
    if any(r not in (o, 1) for o, r in zip(out, res, strict=True)):
        t.fail(at, f"{at}: out += residual: the residual's {fmt_size(res)} (from {residual.source}) does not"
                   f" broadcast to the convs' {fmt_size(out)}")


def _ones(a: Arch) -> Size:
    return (1,) * a.dims
