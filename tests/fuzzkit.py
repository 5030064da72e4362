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


Build = Callable[[str | None, dict[str, Any]], Any]
"""An upstream adapter's ``build(class name or None, kwargs)``: the real model on the meta device."""


def constructs(build: Build, cfg: dict[str, Any]) -> str | None:
    """``None`` when the real constructor accepts ``cfg``, else its error."""
    kwargs = {k: v for k, v in cfg.items() if k != "family" and not k.startswith("_")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(cfg.get("_class_name"), kwargs)
    except Exception as e:  # AssertionError, TypeError, RuntimeError, ZeroDivisionError: the constructor's own
        return f"{type(e).__name__}: {e}"
    return None


def outcome(build: Build, cfg: dict[str, Any], size: Any, ignore: tuple[str, ...] = (),
            unsupported: bool = False) -> tuple[str, str]:
    """``agree`` (both reject, or verify finds nothing), ``unsupported`` (only with ``unsupported``: unetviz
    says it does not trace a part yet), ``ours-rejects``, ``real-rejects`` or ``differs``. ``ignore``: kinds of
    disagreement (prefixes of ``what``) a family's tests compare apart."""
    try:
        unetviz.trace(cfg, size=size)
    except unetviz.UnetvizError as ours:
        if unsupported and isinstance(ours, unetviz.NotTraced):
            return "unsupported", str(ours)
        real = constructs(build, cfg)
        return ("agree", f"both reject: {ours}") if real else ("ours-rejects", str(ours))
    real = constructs(build, cfg)
    if real is not None:
        return "real-rejects", real
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = unetviz.verify(cfg, size)
    # every disagreement counts (layers, units, blocks, concats, skips, manifest, params, MACs, failure place)
    # but the kinds the caller names
    core = [f"{d.what} {d.path}: ours {d.ours}, real {d.real}" for d in report.disagreements
            if not (ignore and d.what.startswith(ignore))]
    return ("differs", "; ".join(core[:4])) if core else ("agree", "both accept")


def check(family: str, build: Build, cfg: dict[str, Any], size: Any, ignore: tuple[str, ...] = (),
          unsupported: bool = False) -> None:
    """Record the outcome (``UNETVIZ_FUZZ_RECORD``), or assert it passes: ``agree``, or ``unsupported`` when
    the caller counts those apart."""
    kind, detail = outcome(build, cfg, size, ignore, unsupported)
    record = os.environ.get("UNETVIZ_FUZZ_RECORD")
    if record:
        with open(record, "a", encoding="utf-8") as f:
            f.write(json.dumps({"family": family, "kind": kind, "detail": detail, "config": cfg,
                                "size": size}) + "\n")
        return
    assert kind in (("agree", "unsupported") if unsupported else ("agree",)), f"{kind}: {detail}\n{cfg} at {size}"


def failing_module(model: Any, run: Callable[[], Any]) -> tuple[str | None, Any]:
    """(the innermost module entered and not left when ``run`` raises, the error text), or (None, its result):
    where the real forward fails, as unetviz's ``Failure.at`` names it (a module's first registered name)."""
    names = {id(m): n for n, m in model.named_modules()}
    stack: list[str] = []

    def left(*_: Any) -> None:  # a forward hook that returned the name would replace the module's output
        stack.pop()

    hooks = [m.register_forward_pre_hook(lambda mod, _: stack.append(names[id(mod)])) for m in model.modules()]
    hooks += [m.register_forward_hook(left) for m in model.modules()]
    try:
        return None, run()
    except Exception as e:
        return stack[-1] if stack else "", f"{type(e).__name__}: {e}"
    finally:
        for h in hooks:
            h.remove()

