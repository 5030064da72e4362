"""The public entry points: ``trace`` (symbolic, torch-free) and ``verify`` (lazy torch)."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .records import Trace, Weights
from .tracing import SizeArg, Source, constructed, resolve, trace_source

__all__ = ["inspect", "resolve", "trace", "verify", "weights"]

if TYPE_CHECKING:
    from .inspect import Inspection
    from .render.weights import WeightsCheck
    from .verification import Report


def trace(source: Source | Any, size: SizeArg = None, **kwargs: Any) -> Trace:
    """Trace a preset name, a config path, a config dict, or a live ``nn.Module``.

    ``size``: ``64``, ``"64x96"`` or ``(64, 96)`` (height, width); default: the config's own size.
    For an ``nn.Module``, ``kwargs`` go to the observed tracer (``input=...``).
    """
    if not isinstance(source, (str, Path, dict)):
        from .observe import trace_module

        return trace_module(source, size=size, **kwargs)
    return trace_source(source, size)


def weights(source: Source) -> Weights:
    """The ``state_dict`` manifest of ``source`` from its constructor alone: ``.tensors`` (key -> shape,
    in order), ``.params``, ``.to_json()``; no input size is involved, so a model that fails at every
    size you might pick still has all its weights listed."""
    t = constructed(source)
    return Weights(tensors=MappingProxyType(dict(t.manifest)), family=t.family, model=t.model, preset=t.preset,
                   name=t.name)


def inspect(path: str | Path) -> tuple[Inspection, WeightsCheck]:
    """What is this checkpoint? Its naming, prefix, family and a config rebuilt from the header's shapes
    (never the data, never a pickle), with how the config's manifest matches the file."""
    from .checkpoint import read_shapes
    from .inspect import inspect_shapes
    from .render.weights import check_weights

    p = Path(path)
    shapes = read_shapes(p, "inspect")
    found = inspect_shapes(shapes, p.name)
    return found, check_weights(weights(found.config), shapes)


def verify(source: Source, size: SizeArg = None) -> Report:
    """Build the real upstream model on the meta device and compare it with the trace."""
    from .verification import verify as _verify

    return _verify(source, size)
