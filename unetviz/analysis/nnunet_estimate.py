"""nnU-Net's own feature-map estimate of a network, from its trace (pure Python, torch-free).

nnU-Net's ``ExperimentPlanner.static_estimate_VRAM_usage`` builds the plans' network and calls its
``compute_conv_feature_map_size(patch_size)`` (dynamic_network_architectures): the elements, per sample, of
every conv's output (each ``ConvDropoutNormReLU``; a residual block's convs and its projection skip), every
transposed conv's output and the seg maps the network returns, each at ``patch // strides`` (floor division,
"we always do same padding"). No norm, nonlinearity, concat or input is counted. The planner compares that
number with a reference (560M for 3d, 85M for 2d, for 8 GB) to pick the patch and the batch size.

``feature_map_size`` repeats that arithmetic on the ``Arch`` the trace was built from, quirks included (a
BottleneckD's first 1x1 conv counted at the block's input size; a block's projection skip counted when its
size or width changes). ``tests/test_cost_memory.py`` checks it against the real function on meta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError
from ..core.records import Size, Trace
from ..families.nnunet import config

WHAT = ("nnU-Net's estimate (nnU-Net est), the compute_conv_feature_map_size(patch) its planner picks patch and"
        " batch by: the outputs of every conv, transposed conv and seg head at patch // strides (no norms, concats"
        " or weights)")
"""The report's one line on what the estimate counts."""


def _plain(v: Any) -> Any:
    """A trace's frozen config (mappingproxies, tuples) as the JSON-like data ``config.parse`` reads."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    return v


def _div(size: Sequence[int], stride: Sequence[int]) -> list[int]:
    return [i // j for i, j in zip(size, stride, strict=True)]


def _prod(channels: int, size: Sequence[int]) -> int:
    out = channels
    for d in size:
        out *= d
    return out


def _residual_block(a: config.Arch, s: int, width_in: int, size: list[int], stride: Size) -> int:
    """``BasicBlockD`` / ``BottleneckD.compute_conv_feature_map_size`` of one block."""
    after = _div(size, stride)
    out = a.features[s]
    if a.block == "BottleneckD":
        mid = (a.bottleneck or [0] * len(a.features))[s]
        n = _prod(mid, size) + _prod(mid, after) + _prod(out, after)
    else:
        n = 2 * _prod(out, after)
    if width_in != out or after != size:  # the block's projection skip (a strided or widening block)
        n += _prod(out, after)
    return n


def _encoder(a: config.Arch, size: list[int]) -> int:
    total = 0
    width = a.in_channels
    if a.cls == "ResidualEncoderUNet":  # the stem: one stride-1 conv to stem_channels
        width = a.stem or a.features[0]
        total += _prod(width, size)
    for s, stride in enumerate(a.strides):
        if a.cls == "PlainConvUNet":
            after = _div(size, stride)
            total += a.per_stage[s] * _prod(a.features[s], after)
        else:
            total += _residual_block(a, s, width, size, stride)
            after = _div(size, stride)
            total += sum(_residual_block(a, s, a.features[s], after, (1,) * a.dims) for _ in range(a.per_stage[s] - 1))
        width = a.features[s]
        size = after
    return total


def _decoder(a: config.Arch, size: list[int]) -> int:
    skips = []
    for stride in a.strides[:-1]:
        size = _div(size, stride)
        skips.append(size)
    total = 0
    n = len(a.features) - 1
    for s in range(n):
        at, width = skips[-(s + 1)], a.features[-(s + 2)]
        total += (a.decoder[s] + 1) * _prod(width, at)  # the stage's convs and the transposed conv, one width
        if a.deep_supervision or s == n - 1:
            total += _prod(a.classes, at)
    return total


def feature_map_size(t: Trace) -> int | None:
    """``compute_conv_feature_map_size(t.in_size)`` of the network an nnU-Net trace was built from; None for any
    other trace (or one without its config, as a live module's)."""
    if t.family != "nnunet" or not t.config:
        return None
    try:
        a = config.parse(Args(_plain(t.config), config.DEFAULTS, "nnunet"))
    except UnetvizError:
        return None
    size = list(t.in_size)
    return _encoder(a, size) + (_decoder(a, size) if len(a.features) > 1 else 0)
