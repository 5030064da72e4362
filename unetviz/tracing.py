"""From a source (preset name, config path or dict) to a symbolic trace: the torch-free core.

Two passes of the family's builder: the forward pass at the input size, and, when that stops at a
failure, the constructor's pass (``Tracer(construct=True)``), which reaches every module the
config makes, so the manifest and the parameter count never depend on the size.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .core.config import Args, Context, ContextArg, check_finite, load_file, parse_context
from .core.errors import ModelFailure, UnetvizError
from .core.inputs import InputSpec, SizeText, large_image_note, read_size
from .core.records import Failure, Trace
from .engine.tracer import Tracer
from .families import Family, lookup
from .presets import PRESETS, find_preset

Source = str | Path | dict[str, Any]
SizeArg = SizeText


def preset_config(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's config (callers may change it without touching the preset)."""
    return copy.deepcopy(find_preset(name).config)


def resolve(source: Source) -> tuple[dict[str, Any], str | None]:
    """(config dict, preset name) of a preset name, a config path or a dict."""
    config, preset, _ = resolve_named(source)
    return config, preset


def resolve_named(source: Source, configuration: str | None = None,
                  dataset: str | Path | None = None) -> tuple[dict[str, Any], str | None, str]:
    """(config dict, preset name, display name) of a preset name, a config path (a ``Path`` is always a file or
    a model folder) or a dict (its ``_name``, if any, is its display name). ``configuration`` and ``dataset``
    choose within an nnU-Net plans file (default: 3d_fullres, the dataset.json beside it)."""
    if isinstance(source, dict):
        _no_selection(configuration, dataset, "a config dict")
        return source, None, str(source.get("_name", ""))
    if isinstance(source, str) and source in PRESETS:
        _no_selection(configuration, dataset, f"the preset {source!r}")
        return preset_config(source), source, source
    p = Path(source)
    if p.suffix.lower() == ".safetensors":  # a checkpoint: its config is inferred from the header's shapes
        from .checkpoints.header import read_shapes
        from .checkpoints.inspect import inspect_shapes

        _no_selection(configuration, dataset, p.name)
        return inspect_shapes(read_shapes(p, "--config"), p.name).config, None, p.name
    if isinstance(source, Path) or p.suffix.lower() in (".json", ".yaml", ".yml") or p.exists():
        p = _config_in(p)
        data = load_file(p)
        if isinstance(data.get("configurations"), dict):  # an nnU-Net plans file
            return _plans(data, p, configuration, dataset)
        _no_selection(configuration, dataset, p.name)
        if isinstance(data.get("network_def"), dict):  # a MONAI bundle's inference config
            from .families.monai.bundle import config_from_bundle

            return config_from_bundle(data, p.name), None, _display(p)
        if "model" in data and "family" not in data and "_class_name" not in data:
            # an original inference YAML (v1-inference.yaml, sd_xl_base.yaml): its UNetModel's arguments
            from .families.openai.ldm import ldm_kwargs_from_yaml  # only an original YAML needs the ldm family

            data = {"family": "ldm", **ldm_kwargs_from_yaml(data)}
        return data, None, _display(p)
    _no_selection(configuration, dataset, repr(source))
    name = find_preset(str(source)).name  # raises for an unknown name, with a did-you-mean
    return preset_config(name), name, name


def _no_selection(configuration: str | None, dataset: str | Path | None, what: str) -> None:
    if configuration is not None or dataset is not None:
        key = "--configuration" if configuration is not None else "--dataset"
        raise UnetvizError(f"{key}: only an nnU-Net plans file has configurations and a dataset.json, not {what}")


def _plans(data: dict[str, Any], p: Path, configuration: str | None,
           dataset: str | Path | None) -> tuple[dict[str, Any], None, str]:
    """One configuration of a plans file, with the channels and classes of its dataset.json."""
    from .families.nnunet.plans import config_from_plans

    beside = p.parent / "dataset.json"
    where = Path(dataset) if dataset is not None else beside if beside.is_file() else None
    config = config_from_plans(data, None if where is None else load_file(where, "--dataset"), configuration,
                               p.name)
    name = f"{_display(p)} ({config['configuration']})"
    return {**config, "_name": name}, None, name


def _config_in(p: Path) -> Path:
    """A model folder stands for its ``config.json`` (a pipeline folder for ``unet/config.json``)."""
    if not p.is_dir():
        return p
    # a diffusers model or pipeline folder, or an nnU-Net trained-model folder (plans.json beside dataset.json)
    for candidate in (p / "config.json", p / "unet" / "config.json", p / "plans.json",
                      p / "configs" / "inference.json", p / "configs" / "inference.yaml"):
        if candidate.is_file():
            return candidate
    raise UnetvizError(f"--config: {str(p)!r} is a folder with no config.json (nor unet/config.json, an nnU-Net"
                       " plans.json or a MONAI bundle's configs/inference.json) in it")


def _display(p: Path) -> str:
    # a model folder's unet/config.json (a bundle's configs/inference.json) is best named by the folder it sits in
    if p.name in ("inference.json", "inference.yaml") and p.parent.name == "configs" and p.parent.parent.name:
        return p.parent.parent.name
    if p.name == "config.json" and p.parent.name:
        return f"{p.parent.parent.name}/{p.parent.name}" if p.parent.parent.name else p.parent.name
    return p.name


def trace_config(config: dict[str, Any], size: SizeArg = None, preset: str | None = None, name: str = "",
                 context: ContextArg = None) -> Trace:
    """The symbolic trace of a config dict at ``size`` (default: the config's own), fed ``context`` (default:
    what a pipeline passes)."""
    check_finite(config, "the config")
    family, kwargs = lookup(config)
    spec = input_spec(family, preset, kwargs)
    req = read_size(size, spec)
    trace = _trace_cached(_key(config), None if req is None else req.size, parse_context(context))
    note = large_image_note(req, spec, trace.in_size)
    return replace(trace, preset=preset, name=name or preset or "", space=spec.space, factor=spec.factor,
                   warnings=trace.warnings + ((note,) if note else ()))


def input_spec(family: Family, preset: str | None = None, kwargs: dict[str, Any] | None = None) -> InputSpec:
    """The declared input of a config: its preset's, where the preset declares one, else its family's (read from
    the config's own rank declaration for the families whose configs make one)."""
    own = find_preset(preset).input if preset is not None and preset in PRESETS else None
    return own or family.input_for(kwargs or {})


def trace_source(source: Source, size: SizeArg = None, context: ContextArg = None) -> Trace:
    config, preset, name = resolve_named(source)
    return trace_config(config, size, preset, name, context)


def constructed(source: Source) -> Trace:
    """The constructor's pass of ``source``: its manifest is every ``state_dict`` tensor, whatever
    input sizes the model runs at."""
    config, preset, name = resolve_named(source)
    check_finite(config, "the config")
    return replace(_constructed(_key(config)), preset=preset, name=name)


def _key(config: dict[str, Any]) -> str:
    """The cache key of a config: its JSON (what was given, not the defaults: builders tell the two apart)."""
    try:
        return json.dumps(config, sort_keys=True, default=_plain)
    except (TypeError, ValueError) as e:
        raise UnetvizError(f"config: must hold JSON values only ({e})") from None


key_of = _key


def _plain(value: Any) -> Any:
    if isinstance(value, MappingProxyType):
        return dict(value)
    raise TypeError(f"not a JSON value: {value!r}")


_MANIFESTS: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {}
"""Config key -> the manifest of a forward pass that met every module."""


@lru_cache(maxsize=64)
def _trace_cached(key: str, size: tuple[int, ...] | None, context: Context = None) -> Trace:
    family, kwargs = lookup(json.loads(key))
    args = Args(kwargs, family.defaults, family.what, family.ignores_unknown)
    t = Tracer(family.family, family.model, context=context)
    error = None
    out = None
    try:
        out = family.build(t, args, size)
    except ModelFailure as f:
        error = Failure(at=f.at, message=f.message)
    except RecursionError:  # pragma: no cover - a runaway config, never a traceback
        raise UnetvizError("config: too deeply nested") from None
    if context is not None and not t.context_read:
        raise UnetvizError(f"--context: got {'x'.join(map(str, context)) if isinstance(context, tuple) else context};"
                           f" unetviz feeds a chosen context to UNet2DConditionModel configs only, not {family.model}")
    if not t.in_size:
        raise UnetvizError("config: the builder found no input size")  # pragma: no cover
    # every size a model runs at meets the same modules: the state_dict order is sorted once per config
    known = _MANIFESTS.get(key) if error is None else None
    result = replace(t.build(out, error=error, config=_frozen(args.values), manifest=known),
                     given=_frozen(json.loads(key)), warnings=_ignored(args, family.what))
    if error is None:
        if len(_MANIFESTS) >= 256:  # bounded, like the trace caches: a long fuzz run traces thousands of configs
            _MANIFESTS.pop(next(iter(_MANIFESTS)))
        _MANIFESTS.setdefault(key, result.manifest)
    else:
        # the forward stopped part-way, but the model has every module the constructor makes: the
        # constructor's pass gives the whole manifest, and rejects a config error found past the failure
        whole = _construct_walk(key)
        result = replace(result, manifest=whole.manifest, buffers=whole.buffers, aliases=whole.aliases)
    return result


@lru_cache(maxsize=64)
def _constructed(key: str) -> Trace:
    """The constructor's pass (``Tracer(construct=True)``): every module, at no particular size. A forward
    pass at the config's own size that ran to the end has met every module too: it is reused."""
    try:
        forward = _trace_cached(key, None)
        if forward.error is None:
            return forward
    except UnetvizError:
        pass  # e.g. a config with no size of its own: the constructor's pass needs none
    return _construct_walk(key)


@lru_cache(maxsize=64)
def _construct_walk(key: str) -> Trace:
    family, kwargs = lookup(json.loads(key))
    t = Tracer(family.family, family.model, construct=True)
    args = Args(kwargs, family.defaults, family.what, family.ignores_unknown)
    # the size is only nominal: in this pass no size can fail, and none decides which modules exist
    out = family.build(t, args, (64, 64))
    return replace(t.build(out, config=_frozen(args.values)), given=_frozen(json.loads(key)))


def _ignored(args: Args, what: str) -> tuple[str, ...]:
    if not args.ignored:
        return ()
    lines = [f"config: ignored {len(args.ignored)} key(s) that {what} does not take (as diffusers does):"
             f" {', '.join(args.ignored)}"]
    lines += [f"config: {k} is IGNORED{hint} (a mistyped key changes the model you see)"
              for k, hint in args.near.items()]
    return tuple(lines)


def _frozen(value: Any) -> Any:
    """Read-only view: dicts become mappingproxies, lists tuples, so no caller can change a cached
    trace or, through it, a family's DEFAULTS."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value
