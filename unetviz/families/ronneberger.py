"""The 2015 U-Net (Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation"), traced against the reference model in ``unetviz/upstream/ronneberger.py``.

There is no upstream package for this model, so the reference module is the ground truth and its
attribute names are the paths here. Config keys (the reference constructor's arguments):

- ``in_channels`` (1): image channels (the paper's grey-level cell images).
- ``num_classes`` (2): channels of the final 1x1 conv (foreground / background).
- ``base_channels`` (64): width of level 0; level ``i`` has ``base_channels * 2**i`` (64..1024).
- ``depth`` (5): number of levels including the bottleneck, so ``depth - 1`` max-pools.
- ``padding`` (0): 0 = unpadded 3x3 convs as in the paper (each loses 2 pixels, so the skip is
  centre-cropped before the concat); 1 = same-padded convs (sizes kept, no crop).
- ``bias`` (true): convolutions with biases (the paper's 31,030,658 parameters include them).
- ``input_size`` (572): the input tile, an int or [height, width]; ``--size`` overrides it.

Layout of the reference model: ``down.i`` = (2x2 max-pool for i > 0) + ``conv1`` + ``conv2``;
``down.{depth-1}`` is the bottleneck; ``up.j`` = ``upconv`` (2x2 ConvTranspose2d, halves the
channels) + ``crop`` (CenterCrop, unpadded only) + concat [cropped skip, upsampled] + ``conv1`` +
``conv2``; then ``final`` (1x1 conv). Each conv is followed by a ReLU (a function, no module).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core.config import Args
from ..core.errors import ModelFailure, UnetvizError
from ..core.records import Size, fmt_size
from ..engine.tracer import Act, Tracer

DEFAULTS: dict[str, Any] = {
    "in_channels": 1, "num_classes": 2, "base_channels": 64, "depth": 5, "padding": 0, "bias": True,
    "input_size": 572,
}

_MAX_DEPTH = 16  # 2**15 times the base width: beyond any real model, and keeps numbers printable


def _input_size(t: Tracer, a: Args, channels: int, size: Size | None) -> Act:
    if size is not None:
        return t.start(channels, size, "--size")
    raw = a.raw("input_size")
    if isinstance(raw, (list, tuple)):
        if len(raw) != 2:
            raise UnetvizError(f"input_size: got {raw!r}; allowed: an integer or [height, width]")
        hw = (a.int("input_size", 1, raw[0]), a.int("input_size", 1, raw[1]))
    else:
        n = a.int("input_size", 1)
        hw = (n, n)
    given = "input_size" in a.given
    return t.start(channels, hw, "input_size" if given else "family default (paper)")


def output_side(n: int, depth: int, padding: int) -> int | None:
    """Output size along one axis for input ``n``, or ``None`` where the model fails.

    The two axes are independent, so this is all the size arithmetic of the model: used for the
    "sizes that work" hint of a failure (the trace itself walks the model layer by layer).
    """
    loss = 0 if padding else 4  # two 3x3 convs, 2 pixels each when unpadded
    for i in range(depth):
        if i:
            if n % 2:
                return None
            n //= 2
        if n - loss < 1:
            return None
        n -= loss
    for _ in range(depth - 1):
        n = 2 * n - loss
        if n < 1:
            return None
    return n


def _hint(size: Size, depth: int, padding: int) -> str:
    """Nearest input sizes that work, for every axis that fails."""
    loss = 0 if padding else 4

    def input_for(bottom: int) -> int:  # the input whose bottleneck output is ``bottom`` pixels
        n = bottom + loss
        for _ in range(depth - 1):
            n = 2 * n + loss
        return n

    parts = []
    for n in sorted({d for d in size if output_side(d, depth, padding) is None}):
        # every size that works is input_for(b) for some b, so a short scan over b finds the neighbours
        ok = [m for b in range(1, n // 2 ** (depth - 1) + 6)
              if output_side(m := input_for(b), depth, padding) is not None]
        below, above = [m for m in ok if m < n][-1:], [m for m in ok if m > n][:1]
        parts.append(f"{n}: try {' or '.join(str(m) for m in below + above)}")
    return f" (input {'; '.join(parts)})" if parts else ""


def _pool(t: Tracer, x: Act) -> Act:
    """``nn.MaxPool2d(2)``: the paper picks tile sizes so every pooled map is even; an odd one
    would silently drop a row, so the reference model rejects it."""
    size = x.size or ()
    if any(d % 2 for d in size):
        at = t.path("pool")
        t.fail(at, f"{at} (MaxPool2d 2x2) gets an odd {fmt_size(x.size)} input from {x.source};"
                               " every 2x2 max-pool needs an even height and width")
    return Act(x.channels, tuple(d // 2 for d in size), x.source)


def _convs(t: Tracer, x: Act, in_c: int, out_c: int, padding: int, bias: bool) -> Act:
    """``conv1`` -> ReLU -> ``conv2`` -> ReLU."""
    x = t.conv("conv1", x, in_c, out_c, 3, 1, padding, bias)
    return t.conv("conv2", x, out_c, out_c, 3, 1, padding, bias)


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    """The forward pass of ``UNet2015``, level by level."""
    cin, classes = a.int("in_channels", 1), a.int("num_classes", 1)
    base, depth = a.int("base_channels", 1), a.int("depth", 1)
    if depth > _MAX_DEPTH:
        raise UnetvizError(f"depth: got {depth}; allowed: 1 to {_MAX_DEPTH}")
    padding = a.choice("padding", (0, 1))
    bias = a.bool("bias")
    x = _input_size(t, a, cin, size)
    widths = [base * 2**i for i in range(depth)]
    try:
        for i, w in enumerate(widths):
            title = "bottleneck" if i == depth - 1 and depth > 1 else f"level {i}"
            what = f"{title}: {'max-pool 2x2, ' if i else ''}2x conv3x3 + ReLU -> {w}"
            prev = widths[i - 1] if i else cin
            with t.block(f"down.{i}", what), t.unit("", "downsample" if i else "conv", "Down", x,
                                                     f"{prev}->{w}") as u:
                h = _pool(t, x) if i else x
                # F.relu makes a new tensor that Down.forward returns: the level is its producer
                x = u.done(_convs(t, h, prev, w, padding, bias))
            if i < depth - 1:
                t.push(x, unit=u.path)
        for j in range(depth - 1):
            level = depth - 2 - j
            w = widths[level]
            what = f"up-conv 2x2 {2 * w}->{w}, {'crop and ' if not padding else ''}concat, 2x conv3x3 -> {w}"
            with t.block(f"up.{j}", what), t.unit("", "upsample", "Up", x, f"{2 * w}->{w}") as u:
                y = t.conv("upconv", x, 2 * w, w, 2, 2, 0, bias, transpose=True)
                skip = t.pop("conv1")
                crop: tuple[Size, Size] | None = None
                if not padding and skip.size is not None and y.size is not None:
                    # unpadded convs lose border pixels, so the skip is larger: CenterCrop cuts it
                    # to the up-conv's size, and the sliced tensor is the crop module's output
                    crop = (skip.size, y.size)
                    if any(s < n for s, n in zip(skip.size, y.size, strict=True)):
                        at = t.path("crop")  # cannot happen for a valid size; kept as a guard
                        t.fail(at, f"{at}: skip {fmt_size(skip.size)} is smaller than"
                                               f" the up-convolved {fmt_size(y.size)}")
                    skip = replace(skip, size=y.size, source=t.path("crop"))
                h = t.cat([skip, y], into="conv1", crop=crop)
                x = u.done(_convs(t, h, 2 * w, w, padding, bias))
        with t.unit("final", "conv", "Conv2d", x, f"1x1 -> {classes} classes") as u:
            return u.done(t.conv("", x, base, classes, 1, 1, 0, bias), new=False)
    except ModelFailure as f:
        raise ModelFailure(f.at, f.message + _hint(t.in_size, depth, padding)) from None
