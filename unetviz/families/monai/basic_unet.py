"""``monai.networks.nets.BasicUNet``: five encoder levels (``conv_0``, ``down_1`` .. ``down_4``: a 2x max pool
and a ``TwoConv``), four ``UpCat`` decoder levels and a 1x1 ``final_conv``.

``UpCat`` upsamples (``upsample.deconv``: a 2x2 transposed conv, halving the channels except in ``upcat_1``),
pads the result by one (replicate) on every axis where it is smaller than the encoder's map (an odd size halved
by the pool), then runs ``convs`` on ``cat([x_e, x_0])``: the encoder's map first.
"""

from __future__ import annotations

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer
from . import ops
from .blocks import Adn, convolution, max_pool, transposed_conv
from .config import dims, int_seq

UPSAMPLE_MODES = ("deconv", "deconvgroup", "nontrainable", "pixelshuffle")


def basic_unet(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``BasicUNet.forward``."""
    d = dims(k)
    fea = int_seq(k, "features")
    if len(fea) != 6:
        raise UnetvizError(f"features: got {fea}; allowed: six integers (five encoder levels and the last decoder's)")
    mode = k.raw("upsample")
    if mode not in UPSAMPLE_MODES:
        raise UnetvizError(f"upsample: got {mode!r}; allowed: {', '.join(map(repr, UPSAMPLE_MODES))}")
    if mode != "deconv":
        raise NotTraced(f"upsample: got {mode!r}; {NOT_TRACED} BasicUNet's {mode} upsampling yet (deconv only)")
    o = Adn(dims=d, act=ops.act("act", k.raw("act")), norm=ops.norm("norm", k.raw("norm")),
            dropout=ops.dropout("dropout", k.raw("dropout")), bias=k.flag("bias"))
    one, pad = (1,) * d, (1,) * d

    def two_conv(name: str, x: Act, in_c: int, c: int) -> Act:
        """``TwoConv``: two 3x3 ``Convolution``s with padding 1."""
        with t.unit(name, "conv", "TwoConv", x) as u:
            x = convolution(t, "conv_0", x, in_c, c, (3,) * d, one, o, padding=pad)
            return u.done(convolution(t, "conv_1", x, c, c, (3,) * d, one, o, padding=pad), new=False)

    def down(name: str, x: Act, in_c: int, c: int) -> Act:
        """``Down``: ``max_pooling`` (2), then ``convs``."""
        with t.unit(name, "downsample", "Down", x) as u:
            x = max_pool(t, "max_pooling", x, 2)
            return u.done(two_conv("convs", x, in_c, c), new=False)

    def upcat(name: str, x: Act, in_c: int, cat_c: int, c: int, halves: bool = True) -> Act:
        up_c = in_c // 2 if halves else in_c
        with t.unit(name, "upsample", "UpCat", x) as u:
            # UpSample(out_channels=up_c or in_c): no halving when in_c // 2 is 0
            x0 = transposed_conv(t, "upsample.deconv", x, in_c, up_c or in_c, (2,) * d, (2,) * d, (0,) * d,
                                 (0,) * d, True, d)
            skip = t.pop()
            size = tuple(n + (e != n) for n, e in zip(x0.size or (), skip.size or (), strict=True))
            x0 = Act(x0.channels, size, t.path("upsample"))  # F.pad's new map: upsample finished last
            if skip.size != size:
                t.fail(u.path, f"{u.path} (UpCat): torch.cat: the encoder's {fmt_size(skip.size)} and the padded"
                               f" upsampled {fmt_size(size)} differ")
            return u.done(two_conv("convs", t.cat([skip, x0], into="convs"), cat_c + up_c, c), new=False)

    x0 = two_conv("conv_0", x, x.channels, fea[0])
    t.push(x0)
    x = x0
    for i in range(1, 5):
        x = down(f"down_{i}", x, fea[i - 1], fea[i])
        if i < 4:
            t.push(x)
    for i in range(4, 0, -1):
        x = upcat(f"upcat_{i}", x, fea[i], fea[i - 1], fea[i - 1] if i > 1 else fea[5], halves=i > 1)
    return t.conv("final_conv", x, fea[5], out_c, 1, 1, 0, bias=True, dims=d)
