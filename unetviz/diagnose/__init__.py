"""``unetviz why``: read a pasted shape error and name the layers and models behind its numbers.

``parse`` reads the error's numbers, ``knowledge`` declares the widths of the parts around a U-Net and the
published variants of presets, ``index`` computes (and caches) each model's layers and tensors with the tracer,
``search``/``state``/``sizes`` find what gives the numbers, and ``answer`` words the cause and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .records import Candidate, Diagnosis

__all__ = ["Candidate", "Diagnosis", "why"]


def why(text: str, model: str | Path | dict[str, Any] | None = None) -> Diagnosis:
    """What ``text`` (an error message or a traceback) is about; ``model`` narrows the search to one model (a
    preset or variant name, a config file or dict). Text that is not an error raises ``UnetvizError``."""
    from . import answer, search, sizes, state
    from .parse import parse

    parsed = parse(text)
    if parsed.kind == "other":
        return answer.word(parsed, search.Found(), "")
    models, scope = _models(model, parsed.kind)
    readers = {"matmul": search.matmul, "conv": search.conv, "state_size": state.size_mismatch,
               "state_keys": state.missing_unexpected, "added_cond": search.added_cond,
               "divisible": search.divisible}
    found: search.Found
    if parsed.kind in ("concat", "broadcast"):
        read = sizes.concat if parsed.kind == "concat" else sizes.broadcast
        found = read(parsed, models, narrowed=bool(scope))
    else:
        found = readers[parsed.kind](parsed, models)
    return answer.word(parsed, found, scope)


def _models(model: str | Path | dict[str, Any] | None, kind: str) -> tuple[list[dict[str, Any]], str]:
    """The facts searched: every known model, or the one ``model`` names."""
    from .index import all_facts, compute, facts
    from .knowledge import model_names

    if kind == "divisible":
        return [], ""
    if model is None:
        return all_facts(), ""
    if isinstance(model, str) and model in model_names():
        return [facts(model)], model
    from ..tracing import resolve

    config, preset = resolve(model)
    name = preset or (model if isinstance(model, (str, Path)) else "the given config")
    if preset is not None and preset in model_names():
        return [facts(preset)], preset
    found = compute(str(name), config)
    found["config"] = config
    return [found], str(name)
