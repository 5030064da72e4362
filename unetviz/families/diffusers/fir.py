"""The score-SDE FIR resampling of diffusers (``upfirdn2d_native`` in upsampling.py): a fixed 4x4 filter
``[1, 3, 3, 1]`` x ``[1, 3, 3, 1]`` that ``F.conv2d`` runs on every channel of every image separately.

It owns no parameters; its row (a parameter-free ``conv1d`` row, for the MACs) is one 1-channel
convolution over all ``C x H x W`` output positions, which is how the real code reshapes it.
"""

from __future__ import annotations

from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer

FIR_TAPS = 16
"""4 x 4: the outer product of the ``(1, 3, 3, 1)`` kernel."""


def fir_filter(t: Tracer, name: str, x: Act, up: bool) -> Act:
    """``upsample_2d`` (x2: zero-insert, pad (2, 1), filter) or ``downsample_2d`` (pad (1, 1), filter,
    keep every other sample) of ``x``; ``x`` keeps its channels."""
    size = x.size or (1, 1)
    if up:
        padded = tuple(2 * d + 3 for d in size)
        positions: Size = tuple(2 * d for d in size)
        out = positions
    else:
        padded = tuple(d + 2 for d in size)
        positions = tuple(d - 1 for d in size)
        out = tuple((d - 2) // 2 + 1 for d in size)
    if min(positions) < 1:
        t.fail(t.path(name), f"{t.path(name)}: the FIR filter (4x4) gets a {fmt_size(size)} input, too small")
        positions = out = tuple(max(1, d) for d in out)
    total = x.channels
    for d in positions:
        total *= d
    flat = 1
    for d in padded:
        flat *= d
    t.fixed_conv(name, Act(1, (x.channels * flat,), x.source), (total,), FIR_TAPS, 1,
                 note=f"FIR {'up' if up else 'down'} x2 of {x.channels} channels, {fmt_size(size)}")
    return Act(x.channels, out, x.source)
