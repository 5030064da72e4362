"""The facts the search reads about each model, computed by unetviz's own tracer and cached.

``facts(name)`` traces a preset or variant once (the constructor's pass for every layer and tensor, in both
namings where the model has two, and one forward pass at its own size for the levels of its skips) and keeps
plain numbers: its Linear and conv layers' widths, its state_dict shapes, its context and added-embedding
widths. Computing them for every model takes longer than a command may, so they are kept on disk (``cache``):
the layers in one file, the tensors (larger, read only for state_dict errors) in another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Trace
from . import cache
from .knowledge import config_of, model_names

Facts = dict[str, Any]
"""One model's facts: ``name``, ``family``, ``model``, ``in_channels``, ``context``, ``added``, ``rank``,
``size``, ``levels``, ``linears`` and ``convs`` (``[diffusers path, original path, in, out | weight shape]``),
``tensors`` (``[key, other naming's key, shape]``), ``odd_fails`` (an odd size makes it fail), ``skip_first``
(its concats' order), ``live`` (the family's module prefixes, which a traceback's file paths name)."""

_MEMO: dict[str, Facts] = {}
_TENSORS: dict[str, list[list[Any]]] = {}
_READ: list[bool] = []  # the layers cache has been read in this process


def _read() -> None:
    if not _READ:
        _READ.append(True)
        _MEMO.update(cache.load("layers"))


def facts(name: str) -> Facts:
    """The facts of a preset or variant ``name`` (its tensors apart: ``tensors``), from memory, the disk cache or
    the tracer."""
    _read()
    if name not in _MEMO:
        found = compute(name, config_of(name))
        _TENSORS[name] = found.pop("tensors")
        _MEMO[name] = found
        cache.save("layers", _MEMO)
    return _MEMO[name]


def all_facts() -> list[Facts]:
    """Every known model's facts (built and cached once, in one write)."""
    warm()
    return [_MEMO[n] for n in model_names() if n in _MEMO]


def compute(name: str, config: Mapping[str, Any]) -> Facts:
    """Trace ``config`` and keep what the search compares errors with."""
    from ..checkpoints.keymaps import block_id
    from ..families import lookup
    from ..tracing import constructed, trace_config
    from .knowledge import preset_of

    built = constructed(dict(config))
    pair = _twins(config)
    out: Facts = {"name": name, "family": built.family, "model": built.model, "in_channels": built.in_channels,
                  "added": _added(config), "text_time": config.get("addition_embed_type") == "text_time"
                  or config.get("num_classes") == "sequential", "linears": [], "convs": [], "tensors": []}
    main = built if pair is None else pair[0]
    to_original: Mapping[str, str] = {} if pair is None else pair[1]
    for layer in main.layers:
        weight = next((s for k, s in layer.tensors if k.endswith(".weight")), None)
        if weight is None:
            continue
        original = to_original.get(layer.path, "")
        names = [layer.path, original, block_id(original) if original else ""]
        if layer.type == "Linear":
            out["linears"].append([*names, layer.in_channels, layer.out_channels])
        elif layer.type.startswith("Conv") and len(weight) >= 3:
            out["convs"].append([*names, list(weight)])
    out["tensors"] = [[k, o, list(s)] for k, o, s in (pair[2] if pair else [(k, "", s) for k, s in built.manifest])]
    forward = trace_config(dict(config), preset=preset_of(name))
    out["live"] = list(lookup(dict(config))[0].live)
    out.update(_levels(forward))
    out["skip_first"] = _skip_first(forward)
    out["odd_fails"] = _odd_fails(config, forward, preset_of(name), out["levels"][-1] if out["levels"] else 1)
    context = config.get("cross_attention_dim", config.get("context_dim"))
    out["context"] = context if isinstance(context, int) else (forward.context[1] if forward.context else None)
    return out


def _twins(config: Mapping[str, Any]) -> tuple[Trace, dict[str, str], list[tuple[str, str, Any]]] | None:
    """(diffusers trace, diffusers -> original module path, keys in both namings), or None for one naming."""
    from ..checkpoints.keymaps import twins

    try:
        pair = twins(config)
    except UnetvizError:
        return None
    return pair.diffusers, dict(pair.modules), list(pair.keys)


def _odd_fails(config: Mapping[str, Any], t: Trace, preset: str | None, deepest: int) -> bool:
    """Whether the model fails at all when its input's last axis is half its deepest downscaling short of its own
    size (odd at a level below the first; diffusers' U-Nets resize their upsampled maps to the skip's and never
    fail): only those can make a size error."""
    from ..tracing import trace_config

    size = list(t.in_size)
    short = max(deepest // 2, 1)
    if not size or size[-1] <= short:
        return False
    size[-1] -= short
    try:
        return trace_config(dict(config), size=size, preset=preset).error is not None
    except UnetvizError:
        return False


def _added(config: Mapping[str, Any]) -> int | None:
    value = config.get("projection_class_embeddings_input_dim", config.get("adm_in_channels"))
    return int(value) if isinstance(value, int) else None


def _skip_first(t: Trace) -> bool | None:
    """Whether the model's skip concats put the skip before the upsampled map (MONAI's ``cat([x, sub(x)])``) or
    after it (``cat([h, hs.pop()])``): the order torch's message reports the two sizes in."""
    for c in t.concats:
        marks = [o.skip is not None for o in c.inputs]
        if any(marks):
            return marks[0]
    return None


def _levels(t: Trace) -> Facts:
    """The input's rank and size, and its downscalings on the last axis (the first of a volume may be downscaled
    at fewer stages): 1, 2, 4... up to the smallest map any layer makes (the bottleneck)."""
    size = list(t.in_size)
    smallest = min((x.out_size[-1] for x in t.layers if x.out_size and x.out_size[-1]), default=size[-1] if size
                   else 1)
    deepest = size[-1] // smallest if size and smallest else 1
    levels = [2**k for k in range(deepest.bit_length()) if 2**k <= deepest]
    return {"rank": len(size), "size": size, "levels": levels, "space": t.space, "factor": t.factor}


def warm() -> None:
    """Build every model's facts and write the cache in one go (instead of one write per model)."""
    _read()
    missing = [n for n in model_names() if n not in _MEMO]
    found = {}
    for n in missing:
        try:
            found[n] = compute(n, config_of(n))
        except UnetvizError:  # a preset unetviz cannot trace (yet) is left out of the search, not fatal to it
            continue
    if found:
        for n, f in found.items():
            _TENSORS[n] = f.pop("tensors")
            _MEMO[n] = f
        cache.save("layers", _MEMO)
        cache.save("tensors", _TENSORS)


def tensors(f: Facts) -> list[list[Any]]:
    """A model's ``[key, other naming's key, shape]`` list: read from its own facts (a ``--model`` config) or the
    tensors cache, loaded only for state_dict errors."""
    if "tensors" in f:
        return list(f["tensors"])
    if not _TENSORS:
        _TENSORS.update(cache.load("tensors"))
    if f["name"] not in _TENSORS:
        _TENSORS[f["name"]] = compute(f["name"], config_of(f["name"]))["tensors"]
        cache.save("tensors", _TENSORS)
    return list(_TENSORS[f["name"]])
