"""The public entry points: ``trace`` (symbolic, torch-free) and ``verify`` (lazy torch)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .core.config import ContextArg
from .core.errors import UnetvizError
from .core.records import Trace, Weights
from .tracing import SizeArg, Source, constructed, resolve, trace_source

__all__ = ["check", "cost", "inspect", "keymap", "resolve", "trace", "verify", "weights"]

if TYPE_CHECKING:
    from .analysis.compare import Report
    from .analysis.cost import CostReport
    from .checkpoints.inspect import Inspection
    from .render.weights import WeightsCheck


def trace(source: Source | Any, size: SizeArg = None, context: ContextArg = None, **kwargs: Any) -> Trace:
    """Trace a preset name, a config path, a config dict, or a live ``nn.Module``.

    ``size``: ``64``, ``"64x96"`` or ``(64, 96)`` (height, width); default: the config's own size.
    ``context``: the ``encoder_hidden_states`` a caller passes, ``(tokens, width)``, ``"77x1024"`` or ``"none"``;
    default: what the model's pipeline passes (77 tokens as wide as the first cross-attention reads).
    For an ``nn.Module``, ``kwargs`` go to the observed tracer (``input=...``).
    """
    if not isinstance(source, (str, Path, dict)):
        from .live.observe import trace_module

        if context is not None:
            raise UnetvizError("context: give a module its encoder_hidden_states as a keyword instead")
        return trace_module(source, size=size, **kwargs)
    return trace_source(source, size, context)


def weights(source: Source, naming: str | None = None) -> Weights:
    """The ``state_dict`` manifest of ``source`` from its constructor alone: ``.tensors`` (key -> shape,
    in order), ``.params``, ``.to_json()``; no input size is involved, so a model that fails at every
    size you might pick still has all its weights listed. ``naming``: ``diffusers`` or ``original``
    (CompVis/Stability's ``input_blocks...``) for Stable Diffusion U-Nets; default: the source's own."""
    t = constructed(source)
    if naming is not None and naming != own_naming(t):
        t = _twin(t, naming)
    return Weights(tensors=MappingProxyType(dict(t.manifest)), family=t.family, model=t.model, preset=t.preset,
                   name=t.name, buffers=t.buffers)


NAMINGS = ("diffusers", "original")


def own_naming(t: Trace) -> str:
    return "original" if t.family == "ldm" else "diffusers"


def _twin(t: Trace, naming: str) -> Trace:
    from .checkpoints.keymaps import twins
    from .core.errors import bad_value

    if naming not in NAMINGS:
        raise bad_value("--naming", naming, NAMINGS)
    pair = twins(_config_of(t))
    return pair.original if naming == "original" else pair.diffusers


def _config_of(t: Trace) -> dict[str, Any]:
    from .checkpoints.keymaps import thawed

    return dict(thawed(t.given))


def keymap(source: Source) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """Every tensor of a Stable Diffusion U-Net as (diffusers key, original key, shape), one to one."""
    from .checkpoints.keymaps import twins

    return twins(_config_of(constructed(source))).keys


def check(source: Source, path: str | Path) -> WeightsCheck:
    """How a weights file (a safetensors header or a JSON manifest) matches ``source``'s manifest, in
    whichever naming the file uses: the model's own, or the other one where the model has both."""
    from .checkpoints.header import read_shapes
    from .core.errors import UnetvizError
    from .render.weights import check_weights

    shapes = read_shapes(Path(path))
    t = constructed(source)
    result = check_weights(t, shapes, own_naming(t))
    if result.matched < len(t.manifest):
        other = "original" if own_naming(t) == "diffusers" else "diffusers"
        try:
            second = check_weights(_twin(t, other), shapes, other)
        except UnetvizError:
            return result  # no second naming: the first answer stands
        if second.matched > result.matched:
            return second
    return result


def inspect(path: str | Path) -> tuple[Inspection, WeightsCheck]:
    """What is this checkpoint? Its naming, prefix, family and a config rebuilt from the header's shapes
    (never the data, never a pickle), with how the config's manifest matches the file."""
    from .checkpoints.header import read_shapes
    from .checkpoints.inspect import inspect_shapes
    from .render.weights import check_weights

    p = Path(path)
    shapes = read_shapes(p, "inspect")
    found = inspect_shapes(shapes, p.name)
    return found, check_weights(weights(found.config), shapes)


def cost(source: Source, sizes: str | None = None, batch: int = 1, dtype: str = "fp16") -> CostReport:
    """MACs and activation memory of ``source`` at several sizes (see ``unetviz cost --help``)."""
    from .analysis.cost import cost as run

    return run(source, sizes, batch, dtype)


def verify(source: Source, size: SizeArg = None, context: ContextArg = None) -> Report:
    """Build the real upstream model on the meta device and compare it with the trace; ``context`` as in
    ``trace`` (the real model is fed the same)."""
    from .live.verification import verify as _verify

    return _verify(source, size, context)
