"""The weights manifest for porters: every state_dict key and shape, and a check against a file
(read by ``unetviz.checkpoints.header``: a header or a JSON manifest, never tensor data, never a pickle).
"""

from __future__ import annotations

from ..checkpoints.compare import LIST_MAX, PREFIXES, WeightsCheck, check_weights
from ..core.records import Trace, Weights, numel
from .text import wrapped

__all__ = ["PREFIXES", "WeightsCheck", "check_weights", "render_check", "render_weights"]


def render_weights(trace: Trace | Weights, width: int = 120) -> str:
    """Every key, its shape and numel, one tensor a row, fitted to ``width`` columns. A key is never cut or
    split: where the row would not fit, the shape and numel go on a line of their own under the key."""
    title = (f"{trace.name or trace.preset or 'config'}: {len(trace.manifest)} state_dict tensors,"
             f" {trace.params:,} params")
    rows = [(str(i), key, "x".join(map(str, shape)) or "scalar", f"{numel(shape):,}")
            for i, (key, shape) in enumerate(trace.manifest)]
    aliases = getattr(trace, "aliases", {})
    w_i, w_s, w_n = (max([len(h), *(len(r[k]) for r in rows)]) for k, h in ((0, "#"), (2, "shape"), (3, "numel")))
    w_k = max([3, *(len(r[1]) for r in rows)])
    fits = w_i + w_k + w_s + w_n + 6 <= width  # the widest row on one line
    if not fits:  # keys get what the numbers leave; longer ones put their numbers on the next line
        w_k = max(3, width - (w_i + w_s + w_n + 6))
    lines = [title, f"{'#':>{w_i}}  {'key':<{w_k}}  {'shape':>{w_s}}  {'numel':>{w_n}}".rstrip()]
    for i, key, shape, n in rows:
        note = f"  (= {aliases[key]})" if key in aliases else ""
        if len(key) + len(note) <= w_k:
            lines.append(f"{i:>{w_i}}  {(key + note):<{w_k}}  {shape:>{w_s}}  {n:>{w_n}}")
        else:
            lines.append(f"{i:>{w_i}}  {key}{note}")
            lines.append(f"{'':>{w_i}}  {'':<{w_k}}  {shape:>{w_s}}  {n:>{w_n}}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _listed(label: str, items: list[str]) -> list[str]:
    if len(items) <= LIST_MAX:
        return items
    return [*items[:LIST_MAX], f"  ... and {len(items) - LIST_MAX} more {label} (--format json lists all)"]



def _hints(result: WeightsCheck) -> list[str]:
    """Why it does not match: what the file is, when that is known; another naming only if one is untried."""
    if result.ok:
        return []
    if result.file_is:
        tried = "; both namings were compared" if len(result.tried) > 1 else (
            f"; compared in the {result.tried[0]} naming" if result.tried else "")
        return [f"  hint: the file holds {result.file_is}{tried}"]
    if result.matched == 0 and result.unexpected:
        if len(result.tried) > 1:  # every naming was tried: none to suggest
            return [f"  hint: no key matches in the {' or the '.join(result.tried)} naming; the file holds no model"
                    " unetviz recognises"]
        return ["  hint: no key matches; the file may use another naming (the original LDM/SGM names) or hold"
                " another model"]
    return []


def render_check(result: WeightsCheck, source: str, width: int = 120) -> str:
    """The comparison's verdict and hint wrapped to ``width`` at spaces; every key line whole."""
    where = f" (under the prefix {result.prefix!r})" if result.prefix else ""
    where += f" in the {result.naming} naming" if result.naming else ""
    verdict = f"{result.matched} tensors match{where}" + (
        "" if result.ok else f"; {len(result.missing)} missing, {len(result.unexpected)} unexpected,"
                             f" {len(result.mismatched)} with another shape")
    # a long path takes the first line alone, so the verdict reads whole below it
    lines = [f"{source}: {verdict}"] if len(source) + len(verdict) + 2 <= width else [f"{source}:", f"  {verdict}"]
    if result.other:
        lines.append(f"  {result.other} other tensors in the file (outside {result.prefix!r}: other components)"
                     " set aside")
    lines += _hints(result)
    lines = [wrapped(line, width) for line in lines]  # sentences; the key lines below stay whole
    lines += _listed("missing", [f"  missing     {k} {list(s)}" for k, s in result.missing])
    lines += _listed("unexpected", [f"  unexpected  {k} {list(s)}" for k, s in result.unexpected])
    lines += _listed("with another shape", [f"  shape       {k}: model {list(a)}, file {list(b)}"
                                            for k, a, b in result.mismatched])
    return "\n".join(lines)
