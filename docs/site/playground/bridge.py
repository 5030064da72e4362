"""The playground's Python side, run by Pyodide in the page (and by tests/test_playground.py natively).

The page calls ``presets()`` once and ``run(...)`` after every change; both answer JSON text. A bad value is
unetviz's own one-line error (``UnetvizError``), never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import unetviz
from unetviz.core.errors import UnetvizError
from unetviz.render.playground import SHAPES, controls, count_default, view, with_levels
from unetviz.tracing import trace_config


def _plain(value: Any) -> Any:
    """A preset's read-only config as plain JSON values (mappingproxies to dicts, tuples to lists)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def presets() -> str:
    """Every preset's name and config, in unetviz's order."""
    return json.dumps({name: _plain(p.config) for name, p in unetviz.PRESETS.items()})


def _read(config_text: str) -> dict[str, Any]:
    try:
        config = json.loads(config_text)
    except ValueError as e:
        raise UnetvizError(f"config: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise UnetvizError(f"config: got a JSON {type(config).__name__}; allowed: a JSON object of config keys")
    return config


def run(config_text: str, preset: str = "", size: str = "", detail: str = "units", levels: int = 0) -> str:
    """Trace the config (``preset``: the preset it started from, whose input declaration it keeps: IF's config
    is pixels, not latents; ``levels``: first change the number of levels to that): the view, the controls and
    the config traced, or ``{"error": ...}`` with unetviz's one-line message."""
    try:
        config = _read(config_text)
        start = preset if preset in unetviz.PRESETS else None
        if levels:
            t = trace_config(config, size or None, preset=start)
            shape = SHAPES[(t.family, t.model)]
            config = with_levels(config, shape, levels, count_default(t, shape))
        t = trace_config(config, size or None, preset=start)
        if start and _plain(unetviz.PRESETS[start].config) != config:
            t = replace(t, preset=f"{start} (edited)")
        return json.dumps({"view": view(t, detail), "controls": controls(t, config), "config": config})
    except UnetvizError as e:
        answer: dict[str, Any] = {"error": str(e)}
        knobs = _controls_of(config_text, preset)
        if knobs is not None:  # the fields stay, holding the bad value, so it can be mended where it was typed
            answer["controls"] = knobs
        return json.dumps(answer)


def _controls_of(config_text: str, preset: str) -> dict[str, Any] | None:
    """The controls of a config that does not trace, read against the preset it started from (which keys the
    model has, their defaults); None when the text is no JSON object or there is no such preset."""
    if preset not in unetviz.PRESETS:
        return None
    try:
        config = _read(config_text)
        return controls(trace_config(_plain(unetviz.PRESETS[preset].config), None, preset=preset), config)
    except UnetvizError:
        return None


def clear() -> None:
    """Forget every trace unetviz has cached, so the next ``run`` traces afresh (benchmarks/bench_playground.py
    times a re-trace, not a cache hit)."""
    from unetviz import tracing

    for cached in (tracing._trace_cached, tracing._constructed, tracing._construct_walk):
        cached.cache_clear()
    tracing._MANIFESTS.clear()
