"""MONAI's building blocks: ``Convolution`` (conv, then ``ADN``: norm, dropout, activation in the order
``adn_ordering`` gives), ``ResidualUnit`` (``blocks/convolutions.py``), the norms and activations the
factories make (``layers/utils.py``), and the elementwise steps whose broadcasting decides where a forward fails.

Rows: convs, affine norms and PReLU own parameters (layers); a norm without affine parameters is no row, but
InstanceNorm and BatchNorm still check their input (one value per channel fails); dropout owns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from math import prod

from ...core.errors import UnetvizError
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from . import ops


@dataclass(frozen=True, kw_only=True)
class Adn:
    """What every ``Convolution`` of a network shares: rank, activation, norm, dropout, bias, ordering."""

    dims: int
    act: ops.Act | None
    norm: ops.Norm | None
    dropout: bool
    bias: bool = True
    ordering: str = "NDA"
    norm_key: str = "norm"
    """The config key the norm came from (``norm``, ``norm_name``), for errors."""


def convolution(t: Tracer, name: str, x: Act, in_c: int, out_c: int, kernel: Size, stride: Size, o: Adn, *,
                conv_only: bool = False, transposed: bool = False, padding: Size | None = None,
                output_padding: Size | None = None) -> Act:
    """``Convolution``: same padding by default (``(k - 1) // 2``); a transposed one adds ``stride - 1`` output
    padding so it multiplies the size by the stride. ``adn`` holds the norm (N), dropout (D) and act (A)."""
    pad = padding if padding is not None else tuple((k - 1) // 2 for k in kernel)
    with t.unit(name, "conv", "Convolution", x) as u:
        if transposed:
            extra = output_padding if output_padding is not None else tuple(s - 1 for s in stride)
            y = transposed_conv(t, "conv", x, in_c, out_c, kernel, stride, pad, extra, o.bias, o.dims)
        else:
            y = t.conv("conv", x, in_c, out_c, kernel, stride, pad, bias=o.bias, dims=o.dims)
        if not conv_only and (o.act or o.norm or o.dropout):
            with t.scope("adn"):
                y = adn(t, y, out_c, o)
        return u.done(y, new=False)


def adn(t: Tracer, x: Act, channels: int, o: Adn) -> Act:
    """``ADN``: its modules in ``ordering`` (a letter named twice is one module, registered once)."""
    n = o.norm
    if n is not None and n.kind == "GROUP" and channels % n.groups:  # made (and checked) even when not ordered
        raise UnetvizError(f"{o.norm_key}: num_groups {n.groups} does not divide the {channels} channels of"
                           f" {t.path()} (nn.GroupNorm)")
    for letter in dict.fromkeys(o.ordering.upper()):
        if letter not in "NDA":
            raise UnetvizError(f"adn_ordering: got {o.ordering!r}; allowed: letters N, D and A (norm, dropout, act)")
        if letter == "N" and o.norm is not None:
            x = norm(t, "N", x, o.norm, channels, o.dims, o.norm_key)
        elif letter == "A" and o.act is not None:
            x = act(t, "A", x, o.act)
        elif letter == "D" and o.dropout:  # no row, but the last module to return the map
            x = Act(x.channels, x.size, t.path("D"), x.tokens)
    return x


def norm(t: Tracer, name: str, x: Act, n: ops.Norm, channels: int, dims: int, key: str) -> Act:
    """``get_norm_layer(norm, dims, channels)`` as the eval-mode forward runs it: InstanceNorm (and BatchNorm
    without running stats) normalise by the input's own statistics, which one value per channel cannot give."""
    full, type_ = t.path(name), n.type(dims)
    if n.kind == "GROUP" and channels % n.groups:
        raise UnetvizError(f"{key}: num_groups {n.groups} does not divide the {channels} channels of {full}"
                           " (nn.GroupNorm)")
    y = Act(x.channels, x.size, full, x.tokens)  # the map's producer, a row or not
    if n.affine:
        y = t.owner(name, type_, x, Act(channels, x.size, ""), [("weight", (channels,)), ("bias", (channels,))],
                    f"{n.groups} groups" if n.groups else "")
    if n.track:
        for buf, dims_ in (("running_mean", (channels,)), ("running_var", (channels,)), ("num_batches_tracked", ())):
            t.buffer(f"{name}.{buf}", dims_)
    size = x.size or ()
    shape = f"[1, {channels}, {', '.join(map(str, size))}]"
    if n.kind == "INSTANCE" and not n.track and prod(size) == 1:
        t.fail(full, f"{full} ({type_}) gets a {fmt_size(size)} map: Expected more than 1 spatial element when"
                     f" training, got input size {shape}")
    elif (n.kind == "BATCH" and not n.track and prod(size) == 1) or (
            n.kind == "GROUP" and channels // n.groups * prod(size) == 1):
        t.fail(full, f"{full} ({type_}) gets a {fmt_size(size)} map: Expected more than 1 value per channel when"
                     f" training, got input size {shape}")
    return y


def act(t: Tracer, name: str, x: Act, a: ops.Act) -> Act:
    """An activation: a row only for PReLU, whose ``num_parameters`` must be 1 or the channels."""
    full = t.path(name)
    if not a.prelu:  # no row, but the module that returns the map
        return Act(x.channels, x.size, full, x.tokens)
    y = t.owner(name, "PReLU", x, Act(x.channels, x.size, ""), [("weight", (a.prelu,))])
    if a.prelu not in (1, x.channels):
        t.fail(full, f"{full} (PReLU) has {a.prelu} parameters for {x.channels} channels: Mismatch of parameter"
                     " numbers and input channel size")
    return y


def transposed_conv(t: Tracer, name: str, x: Act, in_c: int, out_c: int, kernel: Size, stride: Size, pad: Size,
                    output_padding: Size, bias: bool, dims: int) -> Act:
    """``ConvTranspose{n}d`` with ``output_padding``: the tracer's transposed conv, then the extra rows and
    columns that padding adds on one side ((n - 1) * s - 2p + k + output_padding)."""
    y = t.conv(name, x, in_c, out_c, kernel, stride, pad, bias=bias, dims=dims, transpose=True)
    if y.size is None or not any(output_padding):
        return y
    size = tuple(n + p for n, p in zip(y.size, output_padding, strict=True))
    t.layers[-1] = replace(t.layers[-1], out_size=size, note=f"output padding {fmt_size(output_padding)}")
    return Act(y.channels, size, y.source)


def residual_unit(t: Tracer, name: str, x: Act, in_c: int, out_c: int, kernel: Size, stride: Size, o: Adn,
                  subunits: int, last_conv_only: bool = False) -> Act:
    """``ResidualUnit``: ``residual(x)`` first (a conv where the stride or width changes: the kernel and same
    padding when strided, else 1x1), then ``conv`` (``unit0`` takes the stride), ``cx + res``."""
    # a strided unit shrinks the map: a sampler whatever its class (the shared kind rule)
    with t.unit(name, "downsample" if prod(stride) != 1 else "resnet", "ResidualUnit", x) as u:
        t.declare(("conv", "residual"))
        res = x
        if prod(stride) != 1 or in_c != out_c:
            one = (1,) * o.dims
            k, p = (kernel, tuple((n - 1) // 2 for n in kernel)) if prod(stride) != 1 else (one, (0,) * o.dims)
            res = t.conv("residual", x, in_c, out_c, k, stride, p, bias=o.bias, dims=o.dims)
        y, c, s = x, in_c, stride
        n = max(1, subunits)
        with t.scope("conv"):
            for i in range(n):
                y = convolution(t, f"unit{i}", y, c, out_c, kernel, s, o, conv_only=last_conv_only and i == n - 1)
                c, s = out_c, (1,) * o.dims
        broadcast(t, u.path, "cx + res", y, res)
        return u.done(y)


def broadcast(t: Tracer, at: str, what: str, a: Act, b: Act) -> Size:
    """The size of an elementwise ``a (op) b``: equal axes, or an axis of 1 that stretches; else the forward
    fails in the module at ``at``."""
    sa, sb = a.size or (), b.size or ()
    out = []
    for m, n in zip(sa, sb, strict=True):
        if m != n and 1 not in (m, n):
            t.fail(at, f"{at}: {what}: {fmt_size(sa)} (from {a.source}) and {fmt_size(sb)} (from {b.source}) do"
                       " not broadcast")
        out.append(max(m, n) if 1 in (m, n) else m)
    return tuple(out)


def max_pool(t: Tracer, name: str, x: Act, k: int) -> Act:
    """``MaxPool{n}d(kernel_size=k)``: stride k, floor division; an axis under k leaves nothing."""
    full, size = t.path(name), x.size or ()
    out = tuple((n - k) // k + 1 for n in size)
    if min(out) < 1:
        t.fail(full, f"{full} (MaxPool{len(size)}d {k}) gets a {fmt_size(size)} input, too small: the output would"
                     f" be {fmt_size(out)}")
        out = tuple(max(1, n) for n in out)
    return Act(x.channels, out, full)
