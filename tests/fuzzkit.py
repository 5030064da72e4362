"""What every family's differential fuzz shares: the outcome of one generated config against the real
model, recording it (``UNETVIZ_FUZZ_RECORD=FILE``: one JSON line each, for the figures) or asserting it."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck

import unetviz

COMMON: dict[str, Any] = {"deadline": None,
                          "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
LONG = int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "300"))
"""Examples per family of the slow variants (``make fuzz`` sets 1000)."""


def constructs(build: Callable[[str | None, dict[str, Any]], Any], cfg: dict[str, Any]) -> str | None:
    """``None`` when the real constructor accepts ``cfg``, else its error."""
    kwargs = {k: v for k, v in cfg.items() if k != "family"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(None, kwargs)
    except Exception as e:  # AssertionError, TypeError, RuntimeError: the constructor's own
        return f"{type(e).__name__}: {e}"
    return None


def outcome(build: Callable[[str | None, dict[str, Any]], Any], cfg: dict[str, Any],
            size: tuple[int, int]) -> tuple[str, str]:
    """``agree`` (both reject, or verify finds nothing), ``ours-rejects``, ``real-rejects`` or ``differs``."""
    try:
        unetviz.trace(cfg, size=size)
    except unetviz.UnetvizError as ours:
        real = constructs(build, cfg)
        return ("agree", f"both reject: {ours}") if real else ("ours-rejects", str(ours))
    real = constructs(build, cfg)
    if real is not None:
        return "real-rejects", real
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = unetviz.verify(cfg, size)
    # every disagreement counts: layers, units, blocks, concats, skips, manifest, params, MACs, failure place
    core = [f"{d.what} {d.path}: ours {d.ours}, real {d.real}" for d in report.disagreements]
    return ("differs", "; ".join(core[:4])) if core else ("agree", "both accept")


def check(family: str, build: Callable[[str | None, dict[str, Any]], Any], cfg: dict[str, Any],
          size: tuple[int, int]) -> None:
    kind, detail = outcome(build, cfg, size)
    record = os.environ.get("UNETVIZ_FUZZ_RECORD")
    if record:
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"family": family, "kind": kind, "detail": detail, "config": cfg,
                                "size": size}) + "\n")
        return
    assert kind == "agree", f"{kind}: {detail}\n{cfg} at {size}"
