"""The public entry points: ``trace`` (symbolic, torch-free) and ``verify`` (lazy torch)."""

from __future__ import annotations

import copy
import difflib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .config import Args, check_finite, load_file, parse_size, split_family
from .errors import ModelFailure, UnetvizError
from .families import BUILDERS
from .presets import PRESETS
from .records import Failure, Trace
from .tracer import Tracer

Source = str | Path | dict[str, Any]


def preset_config(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's config (callers may change it without touching the preset)."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnetvizError(f"preset: unknown preset {name!r}{hint} (allowed: {', '.join(PRESETS)};"
                           " or a path to a .json/.yaml config)")
    return copy.deepcopy(PRESETS[name].config)


def resolve(source: Source) -> tuple[dict[str, Any], str | None]:
    """(config dict, preset name) of a preset name, a config path (a ``Path`` is always a file) or a dict."""
    if isinstance(source, dict):
        return source, None
    if isinstance(source, str) and source in PRESETS:
        return preset_config(source), source
    p = Path(source)
    if isinstance(source, Path) or p.suffix.lower() in (".json", ".yaml", ".yml") or p.exists():
        return load_file(p), None
    return preset_config(str(source)), None  # raises: unknown preset, with a did-you-mean


def trace(source: Source | Any, size: int | str | tuple[int, int] | None = None, **kwargs: Any) -> Trace:
    """Trace a preset name, a config path, a config dict, or a live ``nn.Module``.

    ``size``: ``64``, ``"64x96"`` or ``(64, 96)`` (height, width); default: the config's own size.
    For an ``nn.Module``, ``kwargs`` go to the observed tracer (``input=...``).
    """
    if not isinstance(source, (str, Path, dict)):
        from .observe import trace_module

        return trace_module(source, size=size, **kwargs)
    config, preset = resolve(source)
    check_finite(config, "the config")
    hw = parse_size(size)
    key = _key(config)
    return _trace_cached(key, hw, preset)


def _key(config: dict[str, Any]) -> str:
    import json

    try:
        return json.dumps(config, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise UnetvizError(f"config: must hold JSON values only ({e})") from None


@lru_cache(maxsize=64)
def _trace_cached(key: str, size: tuple[int, int] | None, preset: str | None) -> Trace:
    import json

    config = json.loads(key)
    family, cls, kwargs = split_family(config)
    builder = BUILDERS.get(cls or family)
    if builder is None:
        raise UnetvizError(f"family: {family!r} is not available in this version of unetviz;"
                           f" allowed: {', '.join(BUILDERS)}")
    args = Args(kwargs, builder.defaults, builder.what)
    t = Tracer(builder.family, builder.model)
    error = None
    out = None
    try:
        out = builder.build(t, args, size)
    except ModelFailure as f:
        error = Failure(f.at, f.message)
    except RecursionError:  # pragma: no cover - a runaway config, never a traceback
        raise UnetvizError("config: too deeply nested") from None
    if not t.in_size:
        raise UnetvizError("config: the builder found no input size")  # pragma: no cover
    result = t.build(out, error=error, config=_frozen(args.values))
    return replace(result, preset=preset)


def trace_for_weights(source: Source) -> Trace:
    """A trace whose manifest is complete: the weights do not depend on the input size, but a trace
    that fails part-way only knows the layers before the failure, so other sizes are tried."""
    t = trace(source)
    for size in (256, 572, 512, 1024, 2048, 4096, 128):  # deep models need a large power of two
        if t.error is None:
            break
        t = trace(source, size=size)
    return t


def _frozen(value: Any) -> Any:
    """Read-only view: dicts become mappingproxies, lists tuples, so no caller can change a cached
    trace or, through it, a family's DEFAULTS."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def verify(source: Source, size: int | str | tuple[int, int] | None = None) -> Any:
    """Build the real upstream model on the meta device and compare it with the trace."""
    from .verification import verify as _verify

    return _verify(source, size)
