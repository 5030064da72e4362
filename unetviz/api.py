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
    if error is not None:
        # the forward stopped part-way, but the model has every module the constructor makes: the
        # constructor's pass gives the whole manifest, and rejects a config error found past the failure
        result = replace(result, manifest=_constructed(key).manifest)
    return replace(result, preset=preset)


@lru_cache(maxsize=64)
def _constructed(key: str) -> Trace:
    """The constructor's pass (``Tracer(construct=True)``): every module, at no particular size."""
    import json

    config = json.loads(key)
    family, cls, kwargs = split_family(config)
    builder = BUILDERS[cls or family]
    t = Tracer(builder.family, builder.model, construct=True)
    # the size is only nominal: in this pass no size can fail, and none decides which modules exist
    out = builder.build(t, Args(kwargs, builder.defaults, builder.what), (64, 64))
    return t.build(out)


def trace_for_weights(source: Source) -> Trace:
    """The constructor's pass of ``source``: its manifest is every ``state_dict`` tensor, whatever
    input sizes the model runs at."""
    config, preset = resolve(source)
    check_finite(config, "the config")
    return replace(_constructed(_key(config)), preset=preset)


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
