"""Size errors (a skip concat or add whose sizes differ): which known models fail with exactly these sizes, at
which input, where, and the nearest sizes that work, all found by running unetviz's tracer.

A skip that is one pixel off its upsampled partner is odd-sized: the input, halved at each level, reached an
odd size ``s`` at some level. Which of the message's two sizes is the skip follows from the model's concat order
(torch names the first operand's size first). For a model downscaling up to ``D`` (from the index), the input
``s * D / 2**k`` gives exactly ``s`` at the level ``k`` above the bottleneck; the tracer is run there and its
failure checked for both sizes. The sizes that work are the multiples of ``D``; the nearest two are traced too
(for the first model found). Models that never fail at odd sizes (diffusers' U-Nets resize instead) are skipped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..core.errors import UnetvizError
from . import cache
from .index import Facts
from .parse import Parsed
from .records import Candidate
from .search import Found

BUDGET = 8
"""Traces one unnarrowed search may run (each is milliseconds; this keeps a command well under half a second)."""
MODELS = 4
"""Models named at most when many reproduce the error."""


def concat(p: Parsed, models: list[Facts], narrowed: bool = False) -> Found:
    a, b = int(p.numbers["expected"]), int(p.numbers["got"])  # type: ignore[arg-type]
    if p.numbers.get("cat_dim") == 0:
        return tokens(a, b)
    ranks = _ranks(p)
    tries = []
    for f in models:
        if f["rank"] not in ranks or len(f["levels"]) < 2 or not f.get("odd_fails", True):
            continue
        for s in _skip_sizes(p, a, b, f.get("skip_first")):
            for k, level in _levels_for(s, f["levels"]):
                n = s * level
                tries.append((not f.get("hinted", False), abs(math.log2(n / f["size"][-1])), k, f, n))
    tries.sort(key=lambda x: (x[0], x[1], x[2]))
    hits: list[Candidate] = []
    ran = 0
    for _, _, _, f, n in tries:
        if (not narrowed and ran >= BUDGET) or len(hits) >= MODELS or any(c.model == f["name"] for c in hits):
            continue
        ran += 1
        failure = _fails(f, n)
        if failure is None or not {a, b} <= _last_sizes(failure[1]):
            continue
        # the nearest working sizes are traced for the first model found (the answer's); the others' are its
        # multiples
        works = _working(f, n) if not hits else []
        hits.append(Candidate(model=f["name"], layer=failure[0] or "", side="fails",
                              widths={"size": _size(f, n), "works": works, "multiple": f["levels"][-1],
                                      "space": f["space"], "factor": f["factor"]}))
    _keep()
    return Found(candidates=tuple(hits), facts={"ranks": sorted(ranks)})


def _skip_sizes(p: Parsed, a: int, b: int, skip_first: bool | None) -> list[int]:
    """Which of the two sizes can be the skip's: torch's current message names the first operand's size first
    (``ordered``), and a model puts its skip first or last (``skip_first``); a mismatched skip is odd (its partner
    was halved and doubled). The older messages (``Got A and B``) are read in either order: their order is not
    documented and the issues' examples disagree."""
    if abs(a - b) != 1:
        return [x for x in (a, b) if x % 2]
    if p.kind == "concat" and skip_first is not None and p.numbers.get("ordered"):
        skip = a if skip_first else b
        return [skip] if skip % 2 else []
    return [x for x in (a, b) if x % 2]


def _last_sizes(message: str) -> set[int]:
    """The last axis of every size (``12x12``, ``5x12x26``) a failure message names; its numbers if it names none."""
    found = {int(m.split("x")[-1]) for m in re.findall(r"\d+(?:x\d+)+", message)}
    return found or set(_ints(message))


def _levels_for(s: int, levels: list[int]) -> list[tuple[int, int]]:
    """The downscalings at which a skip of odd size ``s`` can be the first mismatch the forward meets: the decoder
    merges the deepest level first, so every size below ``s``'s level but the bottleneck must be even, halving
    by rounding up (strided convs) or down (pooling). Where to run the tracer; the tracer decides."""
    out = []
    deepest = levels[-1]
    for k in range(1, len(levels)):
        up = [-(-s // 2**j) for j in range(1, k)]
        down = [s // 2**j for j in range(1, k)]
        if all(x % 2 == 0 for x in up) or all(x % 2 == 0 for x in down):
            out.append((k, deepest // 2**k))
    return [(k, x) for k, x in out if x >= 1]


def tokens(a: int, b: int) -> Found:
    """A concat along the batch (dimension 0) of two sequences of different lengths: conditionings whose token
    counts are whole numbers of an encoder's sequence (CLIP's 77), such as a long prompt and a short negative one."""
    from .knowledge import WIDTHS

    hits = [Candidate(model=w.name, layer="", side="input", widths={"tokens": w.tokens, "chunks": [a // w.tokens,
                                                                                               b // w.tokens]})
            for w in WIDTHS if w.tokens and w.tokens > 1 and a % w.tokens == 0 and b % w.tokens == 0 and a != b]
    return Found(candidates=tuple(hits[:1]), facts={"tokens": True})


def _ranks(p: Parsed) -> set[int]:
    """The spatial ranks the error can come from: a dimension index of 4 or a Keras shape of rank 5 is a volume."""
    rank = p.numbers.get("rank")
    if isinstance(rank, int):
        return {rank - 2}
    dim = p.numbers.get("dim")
    if isinstance(dim, int) and dim >= 4:
        return {3}
    return {1, 2, 3}


def _size(f: Facts, n: int) -> list[int]:
    size = list(f["size"])
    if f["rank"] == 2:
        return [n, n]
    size[-1] = n
    return size


_VERDICTS: dict[str, Any] = {}
"""The tracer's verdicts by ``model|size`` (``[where, message]`` or None), kept in the ``sizes`` cache."""
_CHANGED: list[bool] = []


def _fails(f: Facts, n: int) -> tuple[str | None, str] | None:
    """(where, message) of the trace's failure at the input ``n`` on the last axis, or None when it runs."""
    from ..tracing import trace_config
    from .knowledge import config_of

    key = f"{f['name']}|{'x'.join(map(str, _size(f, n)))}"
    known = "config" not in f  # a --model config's verdicts are not kept: its name does not identify it
    if known and not _VERDICTS:
        _VERDICTS.update(cache.load("sizes") or {"": None})
    if known and key in _VERDICTS:
        found = _VERDICTS[key]
        return None if found is None else (found[0], found[1])
    try:
        t = trace_config(f["config"] if "config" in f else config_of(f["name"]), size=_size(f, n))
        verdict = None if t.error is None else (t.error.at, t.error.message)
    except UnetvizError:
        verdict = None
    if known:
        _VERDICTS[key] = None if verdict is None else list(verdict)
        _CHANGED.append(True)
    return verdict


def _keep() -> None:
    if _CHANGED:
        cache.save("sizes", _VERDICTS)
        _CHANGED.clear()


def _working(f: Facts, n: int) -> list[int]:
    """The nearest multiples of the model's largest downscaling around ``n`` that the tracer runs through."""
    step = f["levels"][-1]
    lo = n // step * step
    return [m for m in (lo, lo + step) if m > 0 and _fails(f, m) is None]


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def broadcast(p: Parsed, models: list[Facts], narrowed: bool = False) -> Found:
    """``The size of tensor a (N) must match the size of tensor b (M) at non-singleton dimension K``: a spatial
    dimension (2 or more) is an add-merged skip's size; dimension 1 is channels, which no size search explains."""
    dim = p.numbers.get("dim")
    if isinstance(dim, int) and dim < 2:
        return Found(facts={"channels": True})
    return concat(p, models, narrowed)


def describe(c: Candidate) -> dict[str, Any]:
    """The numbers of a size candidate for the wording."""
    return dict(c.widths)
