"""``monai.networks.nets.SegResNet``: ``convInit``, ``down_layers`` (a strided 3x3 conv from the second level on,
then ``ResBlock``s), and per decoder level ``up_samples.i`` (a 1x1 conv halving the channels, a 2x ``UpSample``)
whose output is *added* to the encoder's map of that level (``up(x) + down_x[i + 1]``) before ``up_layers.i``.

The addition runs in ``SegResNet.decode``, so a size whose halvings do not come back (an odd side: the strided
conv rounds up, the upsampler doubles) fails in the model's own forward, not in a module. The encoder's last map
is the decoder's running state, never merged: it is no skip.
"""

from __future__ import annotations

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...engine.tracer import Act, Tracer
from . import ops
from .blocks import Adn, act, convolution, norm
from .config import dims, int_seq

UPSAMPLE_MODES = ("deconv", "deconvgroup", "nontrainable", "pixelshuffle")


def _norm_value(k: Args) -> tuple[str, object]:
    """(the key, the norm) as the constructor resolves them: the deprecated ``norm_name`` ("group" only) wins."""
    name = k.raw("norm_name")
    if name:
        if not isinstance(name, str) or name.lower() != "group":
            raise UnetvizError(f"norm_name: got {name!r}; allowed: '' or 'group' (deprecated; MONAI refuses"
                               " anything else)")
        return "num_groups", ["group", {"num_groups": k.raw("num_groups")}]
    return "norm", k.raw("norm")


def _options(k: Args) -> tuple[str, ops.Act | None, str, ops.Norm | None]:
    """(upsample_mode, act, the norm's key, norm), checked as the constructor and its factories check them."""
    mode = k.raw("upsample_mode")
    if mode not in UPSAMPLE_MODES:
        raise UnetvizError(f"upsample_mode: got {mode!r}; allowed: {', '.join(map(repr, UPSAMPLE_MODES))}")
    if mode == "pixelshuffle":
        raise NotTraced(f"upsample_mode: got 'pixelshuffle'; {NOT_TRACED} SegResNet's subpixel upsampling yet")
    p = k.raw("dropout_prob")
    if p is not None:  # nn.Dropout{n}d checks the probability; in eval it changes nothing
        ops.dropout("dropout_prob", p)
    a = ops.act("act", k.raw("act"))
    if a is not None and a.prelu:
        # SegResNet keeps its final activation as ``act_mod`` and in ``conv_final``: one PReLU under two names
        raise NotTraced(f"act: got PReLU; {NOT_TRACED} SegResNet with a PReLU yet (its act_mod is shared)")
    key, value = _norm_value(k)
    return mode, a, key, ops.norm(key, value)


def segresnet(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``SegResNet.forward``: ``encode``, then ``decode`` on the reversed list of level outputs."""
    d = dims(k)
    f = k.int("init_filters", 1)
    down, up = int_seq(k, "blocks_down", 0), int_seq(k, "blocks_up", 0)
    mode, a, key, n = _options(k)
    o = Adn(dims=d, act=a, norm=n, dropout=False, bias=False, norm_key=key)
    k3, one = (3,) * d, (1,) * d
    # registration order: act_mod first (made before convInit), the decoder's up_layers before its up_samples
    t.declare(("act_mod", "convInit", "down_layers", "up_layers", "up_samples", "conv_final", "dropout"))

    def res_block(name: str, x: Act, c: int) -> Act:
        """``ResBlock``: norm1, act, conv1, norm2, act, conv2 (3x3, no bias), ``x += identity``."""
        with t.unit(name, "resnet", "ResBlock", x) as u:
            t.declare(("norm1", "norm2", "act", "conv1", "conv2"))
            y = x
            for i in (1, 2):
                y = norm(t, f"norm{i}", y, n, c, d, key) if n is not None else y
                y = act(t, "act", y, a) if a is not None else y
                y = convolution(t, f"conv{i}", y, c, c, k3, one, o, conv_only=True)
            # ``x += identity`` adds in place: the block returns the very tensor conv2's conv made
            return u.done(y, new=False)

    x = convolution(t, "convInit", x, x.channels, f, k3, one, o, conv_only=True)
    with t.scope("down_layers"):
        for i, blocks in enumerate(down):
            c = f * 2 ** i
            with t.block(str(i), f"encoder level {i}: {blocks} ResBlock{'s' * (blocks != 1)} at {c} channels"):
                if i > 0:
                    x = convolution(t, "0", x, c // 2, c, k3, (2,) * d, o, conv_only=True)
                for j in range(blocks):
                    x = res_block(str(j + 1), x, c)
            if i < len(down) - 1:
                t.push(x)
    for i, blocks in enumerate(up):
        c = f * 2 ** (len(up) - i)
        with t.block(f"up_samples.{i}", f"decoder level {i}: 1x1 conv to {c // 2} channels, {mode} 2x up"):
            x = convolution(t, "0", x, c, c // 2, one, one, o, conv_only=True)
            x = _upsample(t, "1", x, c // 2, d, mode)
        x = t.add([x, t.pop(f"up_layers.{i}")], into=f"up_layers.{i}")
        with t.block(f"up_layers.{i}", f"decoder level {i}: {blocks} ResBlock{'s' * (blocks != 1)}"):
            for j in range(blocks):
                x = res_block(str(j), x, c // 2)
    return _conv_final(t, x, f, out_c, o, k.flag("use_conv_final"))


def _conv_final(t: Tracer, x: Act, f: int, out_c: int, o: Adn, run: bool) -> Act:
    """``conv_final``: norm, act and a 1x1 conv with bias, made always and run when ``use_conv_final``."""
    n, a, one = o.norm, o.act, (1,) * o.dims
    if not run:  # made all the same: its tensors are in the state_dict, the forward skips them
        with t.scope("conv_final"):
            if n is not None and n.kind == "GROUP" and f % n.groups:
                raise UnetvizError(f"{o.norm_key}: num_groups {n.groups} does not divide the {f} channels of"
                                   " conv_final.0 (nn.GroupNorm)")
            if n is not None and n.affine:
                t.unrun("0", [("weight", (f,)), ("bias", (f,))])
            if n is not None and n.track:
                for buf, shape in (("running_mean", (f,)), ("running_var", (f,)), ("num_batches_tracked", ())):
                    t.buffer(f"0.{buf}", shape)
            t.unrun("2", [("conv.weight", (out_c, f, *one)), ("conv.bias", (out_c,))])
        return x
    # one step (norm, act, 1x1 conv in a Sequential), as the head of the network reads
    with t.unit("conv_final", "conv", "Sequential", x) as u:
        # made for init_filters channels: a decoder that does not climb back to them (fewer blocks_up than
        # levels below the top) hands the norm another width, which its weight or running stats refuse
        if n is not None and x.channels != f and (n.affine or n.track or x.channels % max(1, n.groups)):
            t.fail(f"{u.path}.0", f"{u.path}.0 ({n.type(o.dims)}) is made for {f} channels (init_filters) but gets"
                                  f" {x.channels}: Expected weight to be a vector of size equal to the number of"
                                  " channels in input")
        if n is not None:
            x = norm(t, "0", x, n, f, o.dims, o.norm_key)
        if a is not None:
            x = act(t, "1", x, a)
        return u.done(convolution(t, "2", x, f, out_c, one, one, Adn(dims=o.dims, act=None, norm=None,
                                                                       dropout=False), conv_only=True), new=False)


def _upsample(t: Tracer, name: str, x: Act, c: int, d: int, mode: str) -> Act:
    """``UpSample(scale_factor=2)`` keeping the channels: a 2x2 transposed conv (``deconv``; ``deconvgroup``
    one per channel, named so) or linear interpolation (``nontrainable``, no module that owns anything)."""
    two = (2,) * d
    if mode == "nontrainable":
        with t.scope(name) as full:
            return Act(x.channels, tuple(2 * s for s in x.size or ()), f"{full}.upsample_non_trainable")
    with t.unit(name, "upsample", "UpSample", x) as u:
        y = t.conv(mode, x, c, c, two, two, 0, bias=True, dims=d, transpose=True,
                   groups=c if mode == "deconvgroup" else 1)
        return u.done(y, new=False)
