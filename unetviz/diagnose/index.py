"""The facts the search reads about each model, computed by unetviz's own tracer and cached.

``facts(name)`` traces a preset or variant once (the constructor's pass for every layer and tensor, in both
namings where the model has two, and one forward pass at its own size for the levels of its skips) and keeps
plain numbers: its Linear and conv layers' widths, its state_dict shapes, its context and added-embedding
widths. Computing them for every model takes longer than a command may, so they are kept on disk as JSON
under the user's cache folder, in a file whose name holds unetviz's version and a digest of the package's
source files: any change to the code gives a new file, and a file that cannot be read is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Trace
from .knowledge import config_of, model_names

Facts = dict[str, Any]
"""One model's facts: ``name``, ``family``, ``model``, ``in_channels``, ``context``, ``added``, ``rank``,
``size``, ``levels``, ``linears`` and ``convs`` (``[diffusers path, original path, in, out | weight shape]``),
``tensors`` (``[key, other naming's key, shape]``), ``live`` (the family's module prefixes, which a traceback's
file paths name)."""

_MEMO: dict[str, Facts] = {}
_READ: list[bool] = []  # the disk cache has been read in this process


def facts(name: str) -> Facts:
    """The facts of a preset or variant ``name``, from memory, the disk cache or the tracer."""
    if not _READ:
        _READ.append(True)
        _MEMO.update(_load_all())
    if name not in _MEMO:
        _MEMO[name] = compute(name, config_of(name))
        _save(_MEMO)
    return _MEMO[name]


def all_facts() -> list[Facts]:
    """Every known model's facts (built and cached once, in one write)."""
    warm()
    return [_MEMO[n] for n in model_names()]


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


def _added(config: Mapping[str, Any]) -> int | None:
    value = config.get("projection_class_embeddings_input_dim", config.get("adm_in_channels"))
    return int(value) if isinstance(value, int) else None


def _levels(t: Trace) -> Facts:
    """The input's rank and size, and its downscalings on the last axis (the first of a volume may be downscaled
    at fewer stages): 1, 2, 4... up to the smallest map any layer makes (the bottleneck)."""
    size = list(t.in_size)
    smallest = min((x.out_size[-1] for x in t.layers if x.out_size and x.out_size[-1]), default=size[-1] if size
                   else 1)
    deepest = size[-1] // smallest if size and smallest else 1
    levels = [2**k for k in range(deepest.bit_length()) if 2**k <= deepest]
    return {"rank": len(size), "size": size, "levels": levels, "space": t.space, "factor": t.factor}


# ---- the disk cache --------------------------------------------------------------------------------------------
def cache_file() -> Path | None:
    """The cache file for this unetviz (version and source digest in its name); None when caching is off."""
    if os.environ.get("UNETVIZ_NO_CACHE"):
        return None
    root = Path(os.environ.get("UNETVIZ_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME")
                                                            or Path.home() / ".cache") / "unetviz")
    return root / f"why-index-{_version()}-{_digest()}.json"


_TRACED = ("core", "engine", "families", "presets", "checkpoints", "diagnose")
"""The parts of the package the facts are computed by (renderers, the CLI and the torch side are not)."""


@lru_cache(maxsize=1)
def _digest() -> str:
    """A digest of the source files the facts come from, by path, size and modification time (what Python's own
    bytecode cache checks): editing, adding or removing any of them invalidates the cache."""
    package = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    sources = [package / "tracing.py", *(p for part in _TRACED for p in (package / part).rglob("*.py"))]
    for p in sorted(sources):
        st = p.stat()
        h.update(f"{p.relative_to(package)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unetviz").replace("/", "_")
    except PackageNotFoundError:
        return "dev"


def _load_all() -> dict[str, Facts]:
    path = cache_file()
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(found: Mapping[str, Facts]) -> None:
    """Write the cache atomically (a temporary file renamed over it); a folder that cannot be written is skipped."""
    path = cache_file()
    if path is None:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("why-index-*.json"):  # an older unetviz's index: never read again
            if old != path:
                with contextlib.suppress(OSError):
                    old.unlink()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".why-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dict(found), f, separators=(",", ":"))
        os.replace(tmp, path)


def warm() -> None:
    """Build every model's facts and write the cache in one go (instead of one write per model)."""
    if not _READ:
        _READ.append(True)
        _MEMO.update(_load_all())
    missing = [n for n in model_names() if n not in _MEMO]
    for n in missing:
        _MEMO[n] = compute(n, config_of(n))
    if missing:
        _save(_MEMO)
