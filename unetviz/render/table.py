"""The terminal table: what a learner reads to see channels, sizes and skips evolve.

It fits the width it is given without cutting a path or a number: paths are shown relative to the
heading they sit under (an indented tree), columns are dropped by priority as the width shrinks,
and a dropped note or skip is printed under its row, wrapped. Only ``unetviz.cli`` prints.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.quantities import is_free
from ..core.records import Trace, fmt_size
from .columns import COLUMNS, Column
from .explain import explain, input_text
from .rows import Row, build_rows, relative, skip_fate, skip_width

if TYPE_CHECKING:
    from rich.console import Group

GAP = 2
STYLE = {"heading": "bold cyan", "block": "", "concat": "yellow", "layer": "", "unit": ""}


def title(trace: Trace) -> str:
    name = trace.name or trace.preset or "config"
    where = f" ({trace.size_source})" if trace.size_source else ""
    fed = f", context {trace.context[0]} tokens x {trace.context[1]}" if trace.context is not None else ""
    return f"{name}: {trace.family} {trace.model}, input {input_text(trace)}{where}{fed}"


def summary_lines(trace: Trace) -> list[str]:
    """Totals and the verdict, in plain words (shared by every renderer)."""
    pops = sum(1 for s in trace.skips if s.to is not None)
    out = (f"output {trace.out_channels}x{fmt_size(trace.out_size)}" if trace.out_channels is not None
           else "no output: the model fails at this input")
    # one vocabulary with verify and the graph: layers are the modules that own parameters; the attention
    # matmuls and fixed-kernel convs are parameter-free rows, counted apart
    free = sum(1 for x in trace.layers if is_free(x))
    rows = f" (+{free} parameter-free rows: attention matmuls, fixed-kernel convs)" if free else ""
    lines = [f"{trace.params:,} params in {len(trace.manifest)} tensors; {len(trace.layers) - free} layers{rows},"
             f" {len(trace.concats)} concats; skip stack: {len(trace.skips)} pushes, {pops} pops; {out}"]
    if trace.error is not None:
        lines.append(f"FAILS at {trace.error.at or 'the input'}: {trace.error.message}")
    return lines


def _levels(rows: list[Row]) -> list[int]:
    """Tree depth of every row: a row sits one level below the heading it is relative to."""
    level: dict[str, int] = {}
    out = []
    for r in rows:
        d = level[r.parent] + 1 if r.parent in level else 0
        if r.kind == "heading":
            level[r.path] = d
        out.append(d)
    return out


PATH_MIN = 24
"""The path column shrinks to this (longer paths then take a line of their own) before params are dropped."""
SHRINK_FOR = 2
"""Columns of this priority or lower (params) are kept by shrinking the path column first."""


def fit_columns(rows: list[Row], cells: list[list[str]], width: int) -> tuple[list[int], list[int]]:
    """(indices of the columns to show, their widths): drop the highest priority number until the row fits;
    before a column of priority ``SHRINK_FOR`` or lower goes, the path column narrows (never below
    ``PATH_MIN``), and a path longer than it is printed on a line of its own above its row."""
    widths = [max([len(c.title)] + [len(cells[i][k]) for i, r in enumerate(rows) if r.kind != "heading"])
              for k, c in enumerate(COLUMNS)]
    path_k = next(k for k, c in enumerate(COLUMNS) if c.name == "path")
    # a column empty in every row (no skips in a trace without a skip stack) is not shown at all
    keep = [k for k, c in enumerate(COLUMNS)
            if c.priority == 0 or any(cells[i][k] for i, r in enumerate(rows) if r.kind != "heading")]

    def total(ks: list[int]) -> int:
        return sum(widths[k] for k in ks) + GAP * (len(ks) - 1)

    while total(keep) > width:
        droppable = [k for k in keep if COLUMNS[k].priority > 0]
        if not droppable:
            break
        worst = max(droppable, key=lambda k: (COLUMNS[k].priority, k))
        if COLUMNS[worst].priority <= SHRINK_FOR and widths[path_k] > PATH_MIN:
            widths[path_k] = max(PATH_MIN, widths[path_k] - (total(keep) - width))
            continue
        keep.remove(worst)
    return keep, [widths[k] for k in keep]


def _line(cells: Sequence[str], widths: Sequence[int], cols: Sequence[Column]) -> str:
    parts = [c.rjust(w) if col.align == "right" else c.ljust(w) for c, w, col in zip(cells, widths, cols, strict=True)]
    return (" " * GAP).join(parts).rstrip()


def _wrap(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(text, width=max(20, width), initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False) or [indent]


def table_lines(trace: Trace, depth: str, width: int) -> list[tuple[str, str]]:
    """(text, style) lines of the layer table at ``width`` columns."""
    rows = build_rows(trace, depth)
    levels = _levels(rows)
    cells = [[c.cell(r) for c in COLUMNS] for r in rows]
    path_k = next(k for k, c in enumerate(COLUMNS) if c.name == "path")
    for i, lv in enumerate(levels):
        cells[i][path_k] = "  " * lv + cells[i][path_k]
    keep, widths = fit_columns(rows, cells, width)
    cols = [COLUMNS[k] for k in keep]
    path_w = widths[keep.index(path_k)]
    folded = [k for k, c in enumerate(COLUMNS) if c.foldable and k not in keep]
    out = [(_line([c.title for c in cols], widths, cols), "bold"),
           ("-" * min(width, sum(widths) + GAP * (len(cols) - 1)), "dim")]
    for i, r in enumerate(rows):
        indent = "  " * levels[i]
        if r.kind == "heading":
            text = f"{relative(r.path, r.parent)}  {r.type}" + (f"  ({r.note})" if r.note else "")
            out += [(line, STYLE["heading"]) for line in _wrap(text, width, indent)]
            continue
        row = [cells[i][k] for k in keep]
        if len(cells[i][path_k]) > path_w:  # a long path on a line of its own, never cut; its numbers below
            out.append((cells[i][path_k], STYLE[r.kind]))
            row[keep.index(path_k)] = ""
        out.append((_line(row, widths, cols), STYLE[r.kind]))
        extra = " · ".join(cells[i][k] for k in folded if cells[i][k])
        if extra:
            out += [(line, "dim") for line in _wrap(extra, width, indent + "    ")]
    return out


def render_table(trace: Trace, depth: str = "units", width: int = 120) -> Group:
    """A rich renderable: the title, the layer table, the skip stack, the arithmetic and the totals."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Text] = [Text(line, style="bold") for line in _wrap(title(trace), width, "")]
    parts += [Text(text, style=style, no_wrap=True) for text, style in table_lines(trace, depth, width)]
    parts.append(Text(""))
    parts += [Text(text, style=style, no_wrap=True) for text, style in skip_lines(trace, width)]
    for line in explain(trace):
        indent = "  " if line.startswith("  ") else ""
        parts += [Text(w, style="green") for w in _wrap(line.strip(), width, indent)]
    for line in summary_lines(trace):
        style = "bold red" if line.startswith("FAILS") else "bold"
        parts += [Text(w, style=style) for w in _wrap(line, width, "")]
    return Group(*parts)


def skip_lines(trace: Trace, width: int) -> list[tuple[str, str]]:
    """The skip stack, push order: who pushed each entry and who pops it."""
    if not trace.skips:
        return []
    head = ("#", "pushed by", "ch", "size", "popped by")
    body = [(str(s.index), s.unit, *skip_width(s), skip_fate(s)) for s in trace.skips]
    widths = [max(len(row[k]) for row in (head, *body)) for k in range(5)]
    right = (True, False, True, True, False)

    def line(row: Sequence[str]) -> str:
        return (" " * GAP).join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True))

    out = [("skip stack (push order)", "bold"), (line(head).rstrip(), "bold")]
    for row in body:
        text = line(row).rstrip()
        if len(text) > width:  # a very long path: the popper on a line of its own
            text = line((*row[:4], "")).rstrip()
            out += [(text, "magenta"), ((" " * (widths[0] + GAP)) + "-> " + row[4], "magenta")]
        else:
            out.append((text, "magenta"))
    return out
