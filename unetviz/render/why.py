"""``unetviz why``'s answer as a renderable: a short paragraph, the matching layers in both namings, the fix.

Paths and keys are long (``down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k``): each gets a line of its
own under its model, so at 80 columns nothing is cut and a path wraps only where it is longer than the line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..diagnose import Candidate, Diagnosis

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

_SIDES = {"layer": "layer", "input": "input", "checkpoint": "file", "model": "model", "fails": "fails"}
_KINDS = {"matmul": "matrix product (a Linear's widths)", "conv": "conv input channels",
          "state_size": "state_dict size mismatch", "state_keys": "state_dict missing/unexpected keys",
          "concat": "concat sizes", "broadcast": "tensor sizes", "added_cond": "added conditioning",
          "divisible": "image size", "other": "error"}
_HIDDEN = ("space", "factor", "layers")
_LABELS = {"lines": "fits mismatched keys:", "works": "works at", "lora": "LoRA factor",
           "multiple": "needs multiples of", "size": "fails at"}


def render_why(diagnosis: Diagnosis, width: int) -> RenderableType:
    """The diagnosis; ``width`` is the terminal's (text wraps at word boundaries, paths fold)."""
    from rich.console import Group
    from rich.text import Text  # rich loads with the renderer, not with the package
    parts: list[RenderableType] = []
    head = Text("why: ", style="bold")
    head.append(_KINDS.get(diagnosis.kind, diagnosis.kind), style="cyan")
    if diagnosis.scope:
        head.append(f" (only {diagnosis.scope})", style="dim")
    parts.append(head)
    if diagnosis.message:
        parts.append(Text(diagnosis.message, style="dim", overflow="fold"))
    if not diagnosis.matched:
        parts.append(Text.assemble(("no match: ", "bold yellow"), diagnosis.cause))
        return Group(*parts)
    parts.append(Text(""))
    parts.append(Text(diagnosis.cause))
    for c in diagnosis.candidates:
        parts.append(_candidate(c))
    parts.append(Text(""))
    if diagnosis.inputs:
        parts.append(Text.assemble(("other side: ", "bold"), "; ".join(diagnosis.inputs)))
    if diagnosis.fix:
        parts.append(Text.assemble(("fix: ", "bold green"), diagnosis.fix))
    for alt in diagnosis.alternatives:
        parts.append(Text.assemble(("also fits: ", "dim"), alt))
    return Group(*parts)


def _candidate(c: Candidate) -> Text:
    from rich.text import Text

    t = Text("\n")
    t.append(f"{_SIDES.get(c.side, c.side)}: ", style="bold")
    t.append(c.model, style="cyan")
    if c.also:
        shown = ", ".join(c.also[:4]) + (f" +{len(c.also) - 4} more" if len(c.also) > 4 else "")
        t.append(f" (also {shown})", style="dim")
    if c.layer:
        t.append(f"\n  {c.layer}", style="bold")
    if c.original:
        t.append(f"\n  = {c.original}")
    if c.block_id:
        t.append(f"  [{c.block_id}]", style="magenta")
    numbers = ", ".join(f"{_LABELS.get(k, k)} {_fmt(k, v)}" for k, v in c.widths.items()
                        if k not in _HIDDEN and not (k == "works" and not v))
    if "keys" in c.widths:
        numbers = f"owns {c.widths['keys']} of the {c.widths['of']} keys"
    alike = c.widths.get("layers", 1)
    if isinstance(alike, int) and alike > 1:  # the model has more layers of these widths than the one named
        numbers += f" ({alike} layers alike)"
    if numbers:
        t.append(f"\n  {numbers}", style="dim")
    t.overflow = "fold"
    return t


def _fmt(key: str, v: object) -> str:
    if isinstance(v, list):
        sep = " or " if key == "works" else "x"
        return sep.join(str(x) for x in v) if v else "-"
    return str(v)
