"""The score-SDE FIR resampling of diffusers (``upfirdn2d_native`` in upsampling.py): a fixed 4x4 filter
``[1, 3, 3, 1]`` x ``[1, 3, 3, 1]`` that ``F.conv2d`` runs on every channel of every image separately.

It owns no parameters; its row (a parameter-free ``conv2d`` row, for the MACs) is what the real call is:
``upfirdn2d_native`` reshapes (B, C, H, W) to (B*C, 1, H', W') (zero-inserted and padded) and runs one
1-channel 4x4 ``F.conv2d`` over it, so the row is 1 -> 1 channels at H' x W', on ``C`` batch rows per sample.
"""

from __future__ import annotations

from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer

FIR_TAPS = 4
"""The filter is 4 x 4: the outer product of the ``(1, 3, 3, 1)`` kernel."""


def fir_filter(t: Tracer, name: str, x: Act, up: bool, at: str = "") -> Act:
    """``upsample_2d`` (x2: zero-insert, pad (2, 1), filter) or ``downsample_2d`` (pad (1, 1), filter,
    keep every other sample) of ``x``; ``x`` keeps its channels. ``at``: the calling module's path when it
    is not ``name`` in the current scope (``Tracer.fixed_conv``)."""
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
        where = at or t.path(name)
        t.fail(where, f"{where}: the FIR filter (4x4) gets a {fmt_size(size)} input, too small")
        positions = out = tuple(max(1, d) for d in out)
    with t.batched(t.batch * x.channels):  # each channel is an image of its own: (B*C, 1, H', W')
        t.fixed_conv(name, Act(1, padded, x.source), positions, FIR_TAPS, 1, at=at,
                     note=f"FIR {'up' if up else 'down'} x2 of {x.channels} channels, {fmt_size(size)}")
    return Act(x.channels, out, x.source)
