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
    models = _hinted(models, text)
    if parsed.framework != "torch" and parsed.kind == "concat":
        models = []  # every model unetviz traces is a PyTorch one: none of them made a Keras graph fail
    readers = {"matmul": search.matmul, "state_size": state.size_mismatch,
               "state_keys": state.missing_unexpected, "added_cond": search.added_cond,
               "divisible": search.divisible}
    found: search.Found
    if parsed.kind in ("concat", "broadcast", "conv"):
        read = {"concat": sizes.concat, "broadcast": sizes.broadcast, "conv": search.conv}[parsed.kind]
        found = read(parsed, models, narrowed=bool(scope))
    else:
        found = readers[parsed.kind](parsed, models)
    return answer.word(parsed, found, scope)


def _hinted(models: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The models whose family's package a pasted traceback runs through (``site-packages/monai/...``,
    ``comfy/ldm/...``) first, marked ``hinted``; the others after them, in their order."""
    import re

    paths = " ".join(re.findall(r"[\w./\\-]+\.py", text)).replace("\\", "/")

    def named(f: dict[str, Any]) -> bool:
        return any(f"{p.strip('.')}/" in paths for p in f.get("live", ()))

    marked = [{**f, "hinted": named(f)} for f in models]
    return sorted(marked, key=lambda f: not f["hinted"])


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
