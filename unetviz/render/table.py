"""The rich terminal table: what a learner reads to see channels, sizes and skips evolve."""

from __future__ import annotations

from typing import Any

from ..records import Trace
from ..tracer import fmt_size
from .explain import explain
from .rows import build_rows

STYLE = {"block": "bold cyan", "concat": "yellow", "layer": "", "unit": ""}


def title(trace: Trace) -> str:
    name = trace.preset or "config"
    where = f" ({trace.size_source})" if trace.size_source else ""
    return (f"{name}: {trace.family} {trace.model}, input {trace.in_channels}x{fmt_size(trace.in_size)}{where}")


def summary_lines(trace: Trace) -> list[str]:
    """Totals and the verdict, in plain words (shared by every renderer)."""
    pops = sum(1 for s in trace.skips if s.to is not None)
    out = (f"output {trace.out_channels}x{fmt_size(trace.out_size)}" if trace.out_channels is not None
           else "no output: the model fails at this input")
    lines = [f"{trace.params:,} params in {len(trace.manifest)} tensors; {len(trace.layers)} layers,"
             f" {len(trace.concats)} concats; skip stack: {len(trace.skips)} pushes, {pops} pops; {out}"]
    if trace.error is not None:
        lines.append(f"FAILS at {trace.error.at or 'the input'}: {trace.error.message}")
    return lines


def render_table(trace: Trace, depth: str = "layers") -> Any:
    """A rich renderable (a Group of the layer table, the skip stack and the totals)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title(trace), title_justify="left", expand=False, show_lines=False, pad_edge=False)
    for col, kw in (("#", {"justify": "right", "style": "dim"}), ("path", {}), ("type", {}),
                    ("in -> out ch", {"justify": "right"}), ("size", {"justify": "right"}),
                    ("params", {"justify": "right"}), ("skip", {"style": "magenta"}), ("note", {"style": "dim"})):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for r in build_rows(trace, depth):
        size = r.in_size if r.in_size == r.out_size else f"{r.in_size} -> {r.out_size}"
        ch = r.in_channels if r.kind == "concat" else (
            f"{r.in_channels} -> {r.out_channels}" if r.in_channels else "")
        # Text cells: paths and messages may hold brackets that rich would take for markup
        cells = ("" if r.index is None else str(r.index), r.path, r.type, ch, size,
                 "" if r.params is None else f"{r.params:,}", r.skip, r.note)
        table.add_row(*(Text(c) for c in cells), style=STYLE[r.kind],
                      end_section=r.kind == "block" and depth == "blocks")
    parts: list[Any] = [table, skip_table(trace)]
    parts += [Text(line, style="green") for line in explain(trace)]
    for line in summary_lines(trace):
        parts.append(Text(line, style="bold red" if line.startswith("FAILS") else "bold"))
    return Group(*parts)


def skip_table(trace: Trace) -> Any:
    from rich.table import Table
    from rich.text import Text

    t = Table(title="skip stack (push order)", title_justify="left", pad_edge=False)
    for col in ("#", "pushed by", "channels", "size", "popped by"):
        t.add_column(col, justify="right" if col in ("#", "channels", "size") else "left")
    for s in trace.skips:
        t.add_row(*(Text(c) for c in (str(s.index), s.unit, str(s.channels), fmt_size(s.size),
                                       s.to or "(never popped)")))
    return t
