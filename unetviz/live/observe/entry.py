"""``unetviz.trace(module)``: symbolic from an upstream module's own config, else one observed forward pass.

A recognised upstream module (``recognise.py``) is traced symbolically from its config, and that trace
is trusted only if its ``state_dict`` manifest equals the module's own. Otherwise the module is copied to
the meta device and observed: an upstream one with the extra inputs its family's adapter makes (timestep,
text context...), any other with the input ``inputs.py`` builds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from torch import nn

from ...core.errors import UnetvizError
from ...core.inputs import InputSpec
from ...core.records import Trace
from ...families import Family
from .assemble import observe
from .inputs import ModuleSize, first_conv, module_inputs, on_meta, symbolic_shell
from .recognise import config_of, family_of


def trace_module(module: Any, size: ModuleSize = None, input: Any = None, observe_only: bool = False,
                 **kwargs: Any) -> Trace:
    """``unetviz.trace(module)``: symbolic from an upstream module's config, else observed.

    ``size``: N, ``"32x48x64"`` or ``(32, 48, 64)``, one number per spatial axis of the module's input (N on
    every axis); ``input``: a tensor, a shape ``(B, C, ...)`` or a tuple of positional arguments; ``kwargs``
    are passed to the module's forward. ``observe_only``: skip the family shortcut.
    """
    if not isinstance(module, nn.Module):
        raise UnetvizError(f"source: expected a preset name, a config, a path or an nn.Module, got"
                           f" {type(module).__name__}")
    if input is not None and size is not None:  # which one would win is a guess the caller should not need
        raise UnetvizError("size: give size= or input=, not both (input=(B, C, ...) carries the size)")
    family = family_of(module)
    if family is not None and not observe_only and input is None and not kwargs:
        symbolic = _symbolic(module, size)
        if symbolic is not None:
            return symbolic
    model = on_meta(module)
    shape = tuple(input.shape) if isinstance(input, torch.Tensor) else input
    image = isinstance(shape, tuple) and len(shape) == 4 and all(isinstance(d, int) for d in shape)
    if family is not None and (input is None or image):
        return _observe_upstream(model, family, size, shape, kwargs)
    args, kw, source = module_inputs(model, input, size)
    return observe(model, args, {**kw, **kwargs}, family="torch" if family is None else family.family,
                   size_source=source)


def _symbolic(module: nn.Module, size: ModuleSize) -> Trace | None:
    """The symbolic trace of an upstream module from its config, if its manifest is the module's own."""
    from ...tracing import trace_config

    try:
        cfg = config_of(module)
        # as text (``32x48``): the one spelling every version of the config tracer's size type takes
        text = "x".join(str(d) for d in size) if isinstance(size, (tuple, list)) else size
        t = trace_config(cfg, size=text) if cfg is not None else None
    except UnetvizError:
        return None
    real = tuple((k, tuple(int(d) for d in v.shape)) for k, v in module.state_dict(keep_vars=True).items())
    return t if t is not None and t.manifest == real else None


def _observe_upstream(model: nn.Module, family: Family, size: ModuleSize, shape: tuple[int, ...] | None,
                      kwargs: dict[str, Any]) -> Trace:
    """Observe an upstream model with the inputs its adapter makes: it also needs its timestep (and text
    context...); ``shape``: the sample's (B, C, H, W) when given."""
    from ..upstream import family_module

    adapter = family_module(family)
    hint = symbolic_shell(model, size, _declared(model, family))
    if shape is not None:
        hint = replace(hint, in_channels=shape[1], in_size=tuple(shape[2:]), size_source="input")
    args, kw = adapter.inputs(model, hint)
    seen = observe(model, args, {**kw, **kwargs}, family=family.family, size_source=hint.size_source,
                   **getattr(adapter, "OBSERVE", {}))
    spec = _declared(model, family)
    return replace(seen, space=spec.space, factor=spec.factor)  # the family's declaration


def _declared(model: nn.Module, family: Family) -> InputSpec:
    """The family's input; for a class whose config declares its rank (nnU-Net's conv_op, MONAI's spatial_dims),
    the live module shows that declaration by its first convolution (there is no config to read)."""
    conv = first_conv(model) if family.input_from is not None else None
    if conv is None:
        return family.input
    volume = len(conv[1].kernel_size) == 3
    return InputSpec(rank="volume" if volume else "image", space="volume" if volume else "pixel",
                     channels=family.input.channels)
