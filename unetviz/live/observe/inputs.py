"""The input a live module is run with: the tensor or shape given, or one made from ``size=``.

Rank. With ``size=`` (or nothing) the input's channels and rank are read off the module's first
convolution in registration order (``named_modules()``): ``Conv3d`` means a volume (an int N is NxNxN),
``Conv2d`` an image (NxN), ``Conv1d`` a signal (N). This is the one place unetviz reads a rank off a
module, and only because nothing else tells the channels; a module whose input is not what that conv
takes (it reshapes first, or registers another conv first) is given ``input=(B, C, ...)`` instead. A
size of any length is traced as given when it has that many numbers; any other length is refused with
one line (``UnetvizError``) rather than left to fail inside the forward pass.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ...core.errors import UnetvizError, bad_value
from ...core.inputs import InputSpec, read_size
from ...core.records import Size, Trace, fmt_size
from ..layer_rows import CONV_TYPES, Conv

ModuleSize = int | str | tuple[int, ...] | list[int] | None
"""``size=`` for a live module: N (on every axis), ``"32x48x64"`` or ``(32, 48, 64)``, one number per axis."""

DEFAULT_SIDE = 64
AXES = {1: "L", 2: "HxW", 3: "DxHxW"}
ALLOWED = "N, or one positive integer per spatial axis of the module's input, e.g. 64, 64x96 or (32, 48, 64)"


def first_conv(model: nn.Module) -> tuple[str, Conv] | None:
    """(path, module) of the first convolution in registration order, if any."""
    for path, m in model.named_modules():
        if isinstance(m, CONV_TYPES):
            return path, m
    return None


def _numbers(size: object) -> tuple[int, ...]:
    """The numbers of a size as given: ``(n,)`` for a single one."""
    if isinstance(size, str):
        parts: list[object] = list(size.lower().split("x"))
    elif isinstance(size, (tuple, list)):
        parts = list(size)
    else:
        parts = [size]
    if not parts:
        raise bad_value("size", size, ALLOWED)
    return tuple(_number(p, size) for p in parts)


def _number(p: object, size: object) -> int:
    if isinstance(p, str) and p.strip().isdigit():
        p = int(p)
    # bool is an int, and int() would truncate 2.5: only whole numbers (or their text) count
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise bad_value("size", size, ALLOWED)
    return p


def module_size(model: nn.Module, size: ModuleSize, conv: tuple[str, Conv]) -> tuple[Size, str]:
    """(spatial size, where it came from) for ``model``, at the rank of its first convolution ``conv``."""
    path, module = conv
    rank = len(module.kernel_size)  # a tuple of one number per spatial axis, whatever was passed
    if size is None:
        return (DEFAULT_SIDE,) * rank, f"default {fmt_size((DEFAULT_SIDE,) * rank)} (give size= or input=)"
    dims = _numbers(size)
    if len(dims) == 1:
        return dims * rank, "--size"
    if len(dims) != rank:
        axes = AXES.get(rank, f"{rank} numbers")
        raise UnetvizError(f"size: got {fmt_size(dims)} ({len(dims)} numbers), but {type(model).__name__}'s first"
                           f" convolution {path or '(the module)'} is a {type(module).__name__}, which takes"
                           f" {axes}; give {rank} numbers (or one), or input=(B, C, ...) for an input of"
                           " another rank")
    return dims, "--size"


def module_inputs(model: nn.Module, input: Any, size: ModuleSize) -> tuple[tuple[Any, ...], dict[str, Any], str]:
    """Positional args, keyword args and where the size came from, for a module of no known family:
    ``input`` (a tensor, a shape ``(B, C, ...)`` or a tuple of positional arguments) as given, moved to
    the meta device; else one tensor of ``size`` (module docstring)."""
    meta = torch.device("meta")
    if isinstance(input, torch.Tensor):
        return (torch.empty(input.shape, dtype=input.dtype, device=meta),), {}, "input"
    if isinstance(input, (tuple, list)) and input and all(isinstance(d, int) for d in input):
        return (torch.empty(tuple(input), device=meta),), {}, "input"
    if isinstance(input, (tuple, list)):
        return tuple(torch.empty(t.shape, dtype=t.dtype, device=meta) if isinstance(t, torch.Tensor) else t
                     for t in input), {}, "input"
    conv = first_conv(model)
    if conv is None:
        raise UnetvizError("input: give input=(B, C, ...) or a tensor; the module has no convolution to tell its"
                           " input channels")
    spatial, source = module_size(model, size, conv)
    return (torch.empty(1, conv[1].in_channels, *spatial, device=meta),), {}, source


def on_meta(module: nn.Module) -> nn.Module:
    """A meta-device copy in eval mode; the caller's model (weights, device, training flag) is untouched."""
    try:
        clone = copy.deepcopy(module)
    except Exception as e:  # never fall back to moving the caller's own model to meta
        raise UnetvizError(f"module: cannot copy {type(module).__name__} to trace it on the meta device"
                           f" ({type(e).__name__}: {e}); trace a config instead, or build the model on"
                           " torch.device('meta') and pass that") from None
    return clone.to("meta").eval()


def symbolic_shell(model: nn.Module, size: Any, spec: InputSpec) -> Trace:
    """A minimal trace carrying the input channels and size, for an upstream adapter's ``inputs``; ``size`` in
    the size grammar of the family's declared input (``spec``)."""
    cfg = getattr(model, "config", None)
    conv = first_conv(model)  # no in_channels attribute (nnU-Net's input_channels): the first conv's input
    own = getattr(cfg, "in_channels", 0) or getattr(model, "in_channels", 0) or getattr(model, "input_channels", 0)
    in_c = int(own or (conv[1].in_channels if conv is not None else 0) or getattr(model, "channels", 3))
    req = read_size(size, spec)
    source = "--size"
    if req is None:
        s = getattr(cfg, "sample_size", None) or getattr(model, "image_size", None) or 64
        req = read_size(tuple(s) if isinstance(s, (list, tuple)) else int(s), spec)
        source = "sample_size"
    assert req is not None
    hw = req.size
    return Trace(family="observed", model=type(model).__name__, preset=None, in_channels=in_c, in_size=hw,
                 out_channels=None, out_size=None, layers=(), concats=(), skips=(), units=(), manifest=(),
                 size_source=source)
