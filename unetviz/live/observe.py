"""Tracing a live ``nn.Module``: recognise an upstream family, else observe one forward pass.

``trace_module(module, input=..., size=...)`` is what ``unetviz.trace(module)`` calls. A diffusers
``UNet2DModel``/``UNet2DConditionModel`` or a guided-diffusion ``UNetModel`` is traced symbolically
from its own config (the result is trusted only if its ``state_dict`` manifest equals the module's
own); anything else is moved to the meta device and observed (``capture.py``).

Skip pairing of an observed trace (the heuristic, since a Python list used as the skip stack is
invisible to hooks): in each channel concat the operand created last is the running hidden state;
any other operand that was already an input of a module that had finished running (the encoder
layer it fed, e.g. the next down block or the mid block) is a popped skip. That rules out tensors
made only for the concat, such as lucidrains' final ``r = x.clone()`` or a self-conditioning
input. Distinct skip tensors are numbered in creation order (the order an encoder pushes them);
``to`` is the concat's consumer.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..core.errors import UnetvizError
from ..core.kinds import kind_of
from ..core.quantities import layer_macs
from ..core.records import Concat, Failure, Layer, Operand, Skip, Trace, Unit, enclosing
from ..families import Family, recognise
from .capture import Capture, capture, tensors_in

CONTAINERS = (nn.ModuleList, nn.ModuleDict)


def _transparent(m: nn.Module) -> bool:
    """Containers whose children are the steps: ModuleList/Dict and Sequential subclasses named like
    one (guided's TimestepEmbedSequential). A plain ``nn.Sequential`` is one step (lucidrains'
    Downsample, guided's ``out``), as is MONAI's TwoConv."""
    if isinstance(m, CONTAINERS):
        return True
    return isinstance(m, nn.Sequential) and type(m) is not nn.Sequential and "Sequential" in type(m).__name__


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def unit_paths(model: nn.Module) -> tuple[dict[str, str], list[str]]:
    """(unit path -> class name, block heading paths).

    Below the root and its containers sit the top-level steps; a step with a ModuleList child
    (diffusers' down_blocks.i, mid_block) is a heading whose own contained steps are the units;
    any other step that holds parameters is a unit.
    """
    units: dict[str, str] = {}
    blocks: list[str] = []

    def walk(m: nn.Module, path: str, level: int) -> None:
        for name, child in m.named_children():
            p = f"{path}.{name}" if path else name
            listed = path and isinstance(m, CONTAINERS) and (_transparent(child) or type(child) is nn.Sequential)
            if level == 0 and (listed or (isinstance(child, nn.Sequential) and _transparent(child))):
                # an entry of a top-level list that holds steps (guided's input_blocks.3, lucidrains'
                # downs.0): a heading, as the symbolic builders make it
                blocks.append(p)
                walk(child, p, 1)
            elif _transparent(child):
                walk(child, p, level)
            elif level == 0 and any(isinstance(c, CONTAINERS) for c in child.children()):
                blocks.append(p)
                walk(child, p, 1)
            elif _has_params(child):
                units[p] = type(child).__name__

    walk(model, "", 0)
    return units, blocks


def _unit_of(path: str, units: list[str]) -> str:
    return enclosing(path, units) or path


def build_trace(model: nn.Module, cap: Capture, blocks: list[str], *, family: str, in_channels: int,
                in_size: tuple[int, ...], size_source: str, frames_axis: int | None = None) -> Trace:
    """Turn a capture into a ``Trace(source="observed")``: skips paired, units and manifest filled in.
    ``frames_axis``: see ``observe``."""
    from dataclasses import replace

    unit_list = [u.path for u in cap.units]
    layers = tuple(replace(x, unit=_unit_of(x.path, unit_list)) for x in cap.layers)
    # 1. which operands are popped skips (module docstring), numbered in creation order
    popped: dict[int, tuple[int, str, int, Any]] = {}
    marked: set[tuple[int, int]] = set()  # (concat number, operand position) of every pop
    for n, ev in enumerate(cap.cats):
        # the running state is the newest operand; a tensor given twice (no mid block: the last
        # encoder output is both the state and the top skip) is the state first, a pop after
        running = max(range(len(ev.operands)), key=lambda i: (cap.creation.get(ev.operands[i][3], 0), -i))
        for i, (src, ch, size, key, fed) in enumerate(ev.operands):
            if i != running and fed:
                marked.add((n, i))
                popped.setdefault(key, (cap.creation.get(key, 0), *ev.kept.get(key, (src, ch, size))))
    order = sorted(popped, key=lambda k: popped[k][0])
    index = {k: i for i, k in enumerate(order)}
    to: dict[int, str] = {}
    concats = []
    for n, ev in enumerate(cap.cats):
        ops = []
        for i, (src, ch, size, key, _) in enumerate(ev.operands):
            skip = index[key] if (n, i) in marked else None
            if skip is not None:
                to.setdefault(skip, ev.consumer or "")
            ops.append(Operand(source=src, channels=ch, size=size, skip=skip))
        concats.append(Concat(consumer=ev.consumer or "", channels=ev.channels, size=ev.size, inputs=tuple(ops),
                              at=ev.at))
    skips = tuple(Skip(index=i, source=popped[k][1], channels=popped[k][2], size=popped[k][3], to=to.get(i),
                       unit=_unit_of(popped[k][1], unit_list)) for i, k in enumerate(order))
    rank = len(in_size) if frames_axis is None else 2  # a video model's blocks pass (B*F, C, H, W)
    units = tuple(
        _unit(u, layers, blocks, rank, tokens=frames_axis is not None) for u in cap.units)
    out = next(tensors_in(cap.output), None) if cap.error is None else None
    out_c, out_size = _sample_shape(out, frames_axis)
    manifest = tuple((k, tuple(int(d) for d in v.shape)) for k, v in model.state_dict(keep_vars=True).items())
    error = None if cap.error is None else Failure(at=cap.error_at, message=cap.error)
    return Trace(family=family, model=type(model).__name__, preset=None, in_channels=in_channels, in_size=in_size,
                 out_channels=out_c, out_size=out_size,
                 layers=layers, concats=tuple(concats), skips=skips, units=units, manifest=manifest, error=error,
                 size_source=size_source, blocks=tuple((b, type(model.get_submodule(b)).__name__) for b in blocks),
                 source="observed", buffers=frozenset(k for k, _ in model.named_buffers()),
                 macs=sum(layer_macs(x) for x in layers))


def _sample_shape(t: torch.Tensor | None, frames_axis: int | None = None) -> tuple[int | None, tuple[int, ...] | None]:
    """(channels, size) of the model's sample or output: ``shape[1]`` and ``shape[2:]``; for a video tensor
    with frames on ``frames_axis`` (1 or 2 of a 5-d tensor), the other of axes 1 and 2 and (F, H, W)."""
    if t is None or t.dim() < 2:
        return None, None
    shape = tuple(int(d) for d in t.shape)
    if frames_axis in (1, 2) and len(shape) == 5:
        return shape[3 - frames_axis], (shape[frames_axis], *shape[3:])
    return shape[1], shape[2:]


def _unit(u: Any, layers: tuple[Layer, ...], blocks: list[str], rank: int = 2, tokens: bool = False) -> Unit:
    in_size, out_size = _sz(u.in_shape, rank), _sz(u.out_shape, rank)
    in_c, out_c = _ch(u.in_shape, tokens), _ch(u.out_shape, tokens)
    if u.last - u.first == 1 and layers[u.first].path == u.path:  # a bare layer: its own attributes tell
        in_c, out_c = layers[u.first].in_channels, layers[u.first].out_channels
        if tokens:  # a video model's bare GroupNorm on (B, C, F, H, W) (transformer_in.norm): FxHxW, as its row
            in_size, out_size = layers[u.first].in_size, layers[u.first].out_size
    return Unit(path=u.path, kind=kind_of(u.path, u.type, in_size, out_size), type=u.type, in_channels=in_c,
                out_channels=out_c, in_size=in_size, out_size=out_size, params=u.params, first=u.first,
                last=u.last, block=_block(u.path, blocks))


def _ch(shape: tuple[int, ...] | None, tokens: bool = False) -> int:
    """Channels: dim 1; with ``tokens`` (a video model, whose channel-first tensors are 4-d) a 3-d tensor
    is a token sequence (B, N, C) and its channels are the last dim."""
    if tokens and shape is not None and len(shape) == 3:
        return shape[2]
    return shape[1] if shape is not None and len(shape) > 1 else 0


def _sz(shape: tuple[int, ...] | None, rank: int = 2) -> tuple[int, ...] | None:
    """The spatial size of a channel-first tensor of the sample's rank (length, HxW, FxHxW)."""
    return shape[2:] if shape is not None and len(shape) == 2 + rank else None


def _block(path: str, blocks: list[str]) -> str:
    """The heading a unit sits under; a unit under none is a block of its own (as in the tracer)."""
    return enclosing(path, blocks) or path


def observe(model: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], *, family: str = "torch",
            size_source: str = "input", frames_axis: int | None = None) -> Trace:
    """Capture one forward pass of a meta-device model and build its observed trace.

    ``frames_axis``: a video model's sample and output carry frames on this axis ((B, C, F, H, W): 2,
    UNet3DConditionModel; (B, F, C, H, W): 1, SVD) and its blocks fold them into the batch. The trace's
    channels are then the other of axes 1 and 2 and its sizes FxHxW; units and concats are read per frame
    ((B*F, C, H, W): HxW), and a 3-d tensor is a token sequence (B, N, C) (an adapter's ``OBSERVE``)."""
    units, blocks = unit_paths(model)
    video = frames_axis is not None
    cap = capture(model, args, kwargs, set(units), rank=4 if video else None, tokens=video)
    first = next(iter([*tensors_in(args), *tensors_in(kwargs)]), None)
    in_c, size = _sample_shape(first, frames_axis)
    return build_trace(model, cap, blocks, family=family, in_channels=in_c or 0, in_size=size or (),
                       size_source=size_source, frames_axis=frames_axis)


# ---- trace(module) ------------------------------------------------------------------------------
def _family(module: nn.Module) -> Family | None:
    return recognise(type(module).__module__, type(module).__name__)


def config_of(module: nn.Module) -> dict[str, Any] | None:
    """The unetviz config dict of a recognised upstream module, read from its own attributes."""
    record = _family(module)
    family = None if record is None else record.family
    if family == "diffusers":
        config: Any = module.config  # diffusers' FrozenDict of the constructor arguments
        cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not k.startswith("_")}
        return {"_class_name": type(module).__name__, **cfg}
    if family == "guided":
        return _guided_config(module)
    return None  # lucidrains' Unet keeps too few of its constructor arguments: observed instead


def _guided_config(m: Any) -> dict[str, Any]:
    ins = list(m.input_blocks)
    res = next((b[0] for b in ins if type(b[0]).__name__ == "ResBlock"), None)
    attn = next((layer for b in ins for layer in b if type(layer).__name__ == "AttentionBlock"), None)
    cfg: dict[str, Any] = {
        "family": "guided", "image_size": m.image_size, "in_channels": m.in_channels,
        "model_channels": m.model_channels, "out_channels": m.out_channels, "num_res_blocks": m.num_res_blocks,
        "attention_resolutions": sorted(m.attention_resolutions), "dropout": m.dropout,
        "channel_mult": list(m.channel_mult), "conv_resample": m.conv_resample, "num_classes": m.num_classes,
        "use_fp16": m.dtype == torch.float16, "num_heads": m.num_heads, "num_head_channels": m.num_head_channels,
        "num_heads_upsample": m.num_heads_upsample,
        "use_scale_shift_norm": bool(getattr(res, "use_scale_shift_norm", False)),
        "resblock_updown": any(type(b[0]).__name__ == "ResBlock" and getattr(b[0], "updown", False) for b in ins),
    }
    if attn is not None:
        cfg["use_new_attention_order"] = type(attn.attention).__name__ == "QKVAttention"
    return cfg


def _input_args(model: nn.Module, input: Any, size: Any) -> tuple[tuple[Any, ...], dict[str, Any], str]:
    """Positional args, keyword args and where the size came from, for a plain module."""
    from ..core.config import parse_size

    meta = torch.device("meta")
    if isinstance(input, torch.Tensor):
        return (torch.empty(input.shape, dtype=input.dtype, device=meta),), {}, "input"
    if isinstance(input, (tuple, list)) and input and all(isinstance(d, int) for d in input):
        return (torch.empty(tuple(input), device=meta),), {}, "input"
    if isinstance(input, (tuple, list)):
        return tuple(torch.empty(t.shape, dtype=t.dtype, device=meta) if isinstance(t, torch.Tensor) else t
                     for t in input), {}, "input"
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))), None)
    if first is None:
        raise UnetvizError("input: give input=(N, C, H, W) or a tensor; the module has no convolution to"
                           " tell its input channels")
    dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(first)] if type(first) in (
        nn.Conv1d, nn.Conv2d, nn.Conv3d) else 2
    hw = parse_size(size) or (64, 64)
    spatial = hw if dims == 2 else (hw[0],) * dims
    source = "--size" if size is not None else "default 64x64 (give size= or input=)"
    return (torch.empty(1, first.in_channels, *spatial, device=meta),), {}, source


def trace_module(module: Any, size: Any = None, input: Any = None, observe_only: bool = False,
                 **kwargs: Any) -> Trace:
    """``unetviz.trace(module)``: symbolic from an upstream module's config, else observed.

    ``input``: a tensor, a shape tuple ``(N, C, H, W)`` or a tuple of positional arguments;
    ``kwargs`` are passed to the module's forward. ``observe_only``: skip the family shortcut.
    """
    if not isinstance(module, nn.Module):
        raise UnetvizError(f"source: expected a preset name, a config, a path or an nn.Module, got"
                           f" {type(module).__name__}")
    family = _family(module)
    if family is not None and not observe_only and input is None and not kwargs:
        from ..tracing import trace_config as symbolic

        try:
            cfg = config_of(module)
            t = symbolic(cfg, size=size) if cfg is not None else None
        except UnetvizError:
            t = None
        real = tuple((k, tuple(int(d) for d in v.shape)) for k, v in module.state_dict(keep_vars=True).items())
        if t is not None and t.manifest == real:
            return t
    model = _on_meta(module)
    shape = tuple(input.shape) if isinstance(input, torch.Tensor) else input
    if family is not None and (input is None or (isinstance(shape, tuple) and len(shape) == 4
                                                 and all(isinstance(d, int) for d in shape))):
        from dataclasses import replace

        from .upstream import family_module

        # an upstream model also needs its timestep (and text context...): the adapter makes them
        adapter = family_module(family)
        hint = symbolic_shell(model, size)
        if input is not None:
            hint = replace(hint, in_channels=shape[1], in_size=tuple(shape[2:]), size_source="input")
        args, kw = adapter.inputs(model, hint)
        return observe(model, args, {**kw, **kwargs}, family=family.family, size_source=hint.size_source,
                       **getattr(adapter, "OBSERVE", {}))
    args, kw, source = _input_args(model, input, size)
    return observe(model, args, {**kw, **kwargs}, family="torch" if family is None else family.family,
                   size_source=source)


def _on_meta(module: nn.Module) -> nn.Module:
    """A meta-device copy in eval mode; the caller's model (weights, device, training flag) is untouched."""
    try:
        clone = copy.deepcopy(module)
    except Exception as e:  # never fall back to moving the caller's own model to meta
        raise UnetvizError(f"module: cannot copy {type(module).__name__} to trace it on the meta device"
                           f" ({type(e).__name__}: {e}); trace a config instead, or build the model on"
                           " torch.device('meta') and pass that") from None
    return clone.to("meta").eval()


def symbolic_shell(model: nn.Module, size: Any) -> Trace:
    """A minimal trace carrying the input channels and size, for an upstream adapter's ``inputs``."""
    from ..core.config import parse_size

    cfg = getattr(model, "config", None)
    in_c = int(getattr(cfg, "in_channels", 0) or getattr(model, "in_channels", 0) or getattr(model, "channels", 3))
    hw = parse_size(size)
    source = "--size"
    if hw is None:
        s = getattr(cfg, "sample_size", None) or getattr(model, "image_size", None) or 64
        hw = parse_size(tuple(s) if isinstance(s, (list, tuple)) else int(s))
        source = "sample_size"
    assert hw is not None
    return Trace(family="observed", model=type(model).__name__, preset=None, in_channels=in_c, in_size=hw,
                 out_channels=None, out_size=None, layers=(), concats=(), skips=(), units=(), manifest=(),
                 size_source=source)
