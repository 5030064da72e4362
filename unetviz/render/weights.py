"""The weights manifest for porters: every state_dict key and shape, and a check against a file
(read by ``unetviz.checkpoints.header``: a header or a JSON manifest, never tensor data, never a pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import Shape, Trace, Weights, numel


@dataclass(frozen=True, kw_only=True)
class WeightsCheck:
    """How a weights file compares with the trace's manifest."""

    missing: tuple[tuple[str, Shape], ...]
    """In the model, not in the file."""
    unexpected: tuple[tuple[str, Shape], ...]
    """In the file, not in the model (after the prefix is taken off)."""
    mismatched: tuple[tuple[str, Shape, Shape], ...]
    """Same key, different shape: (key, model's, file's)."""
    matched: int
    """Keys present in both with the same shape."""
    prefix: str = ""
    """The key prefix the file's tensors carry (``unet.``, ``model.diffusion_model.``), taken off."""
    other: int = 0
    """Tensors of the file outside that prefix (other components: VAE, text encoders), set aside."""
    naming: str = ""
    """The naming the file was matched in (``diffusers`` or ``original``)."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "unetviz.check/1", "ok": self.ok, "matched": self.matched, "naming": self.naming,
                "prefix": self.prefix,
                "other_tensors": self.other,
                "missing": {k: list(s) for k, s in self.missing},
                "unexpected": {k: list(s) for k, s in self.unexpected},
                "mismatched": {k: {"model": list(a), "file": list(b)} for k, a, b in self.mismatched}}


PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model.", "unet.", "model.", "diffusion_model.")
"""Prefixes single-file checkpoints put before the U-Net's keys (A1111, ComfyUI, kohya, diffusers pipelines)."""
LIST_MAX = 50


def _prefix(ours: dict[str, Shape], shapes: dict[str, Shape]) -> str:
    """The prefix under which most of the file's keys are the model's (``""`` when they already are)."""
    best, hits = "", sum(1 for k in shapes if k in ours)
    for p in PREFIXES:
        n = sum(1 for k in shapes if k.startswith(p) and k[len(p):] in ours)
        if n > hits:
            best, hits = p, n
    return best


def check_weights(trace: Trace | Weights, shapes: dict[str, Shape], naming: str = "") -> WeightsCheck:
    ours = dict(trace.manifest)
    prefix = _prefix(ours, shapes)
    inside = {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}
    missing = tuple((k, s) for k, s in trace.manifest if k not in inside)
    unexpected = tuple((k, s) for k, s in inside.items() if k not in ours)
    mismatched = tuple((k, ours[k], s) for k, s in inside.items() if k in ours and tuple(ours[k]) != tuple(s))
    return WeightsCheck(missing=missing, unexpected=unexpected, mismatched=mismatched,
                        matched=len(ours) - len(missing) - len(mismatched), prefix=prefix,
                        other=len(shapes) - len(inside), naming=naming)


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


def render_check(result: WeightsCheck, source: str) -> str:
    where = f" (under the prefix {result.prefix!r})" if result.prefix else ""
    where += f" in the {result.naming} naming" if result.naming else ""
    lines = [f"{source}: {result.matched} tensors match{where}"
             + ("" if result.ok else f"; {len(result.missing)} missing, {len(result.unexpected)} unexpected,"
                                     f" {len(result.mismatched)} with another shape")]
    if result.other:
        lines.append(f"  {result.other} other tensors in the file (outside {result.prefix!r}: other components)"
                     " set aside")
    if result.matched == 0 and result.unexpected:
        lines.append("  hint: no key matches; the file may use another naming (the original LDM/SGM names) or"
                     " hold another model")
    lines += _listed("missing", [f"  missing     {k} {list(s)}" for k, s in result.missing])
    lines += _listed("unexpected", [f"  unexpected  {k} {list(s)}" for k, s in result.unexpected])
    lines += _listed("with another shape", [f"  shape       {k}: model {list(a)}, file {list(b)}"
                                            for k, a, b in result.mismatched])
    return "\n".join(lines)
