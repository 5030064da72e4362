"""The text of ``unetviz diff A B``: the summary, then block by block, unit by unit, side by side.

Each unit row shows A's and B's channels and sizes and the change in parameters; a changed note
(heads, context) or type is folded under its row. Nothing is cut: a row too wide for the width is
stacked (A and B on lines of their own) and long text is wrapped. Renderers never print.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ..core.records import Unit, fmt_size
from .explain import input_text
from .rows import relative

if TYPE_CHECKING:
    from rich.console import Group

    from ..analysis.diff import BlockDiff, Diff, UnitDiff

GAP = 2
Line = tuple[str, str]


def _wrap(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width=max(20, width), initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False, break_long_words=False) or [indent]


def _ch(u: Unit | None) -> str:
    return "-" if u is None else f"{u.in_channels} -> {u.out_channels}"


def _size(u: Unit | None) -> str:
    if u is None:
        return ""
    return fmt_size(u.in_size) if u.in_size == u.out_size else f"{fmt_size(u.in_size)} -> {fmt_size(u.out_size)}"


def _delta(a: int, b: int) -> str:
    d = b - a
    return "0" if d == 0 else f"{'+' if d > 0 else '-'}{abs(d):,}"


def _cells(ud: UnitDiff, block: str) -> list[str]:
    a = ud.a.params if ud.a else 0
    b = ud.b.params if ud.b else 0
    mark = "" if not ud.changes else ud.changes[0] if ud.changes[0].startswith("only") else "*"
    return ["  " + relative(ud.path, block), _ch(ud.a), _size(ud.a), _ch(ud.b), _size(ud.b), _delta(a, b), mark]


def _folded(ud: UnitDiff, d: Diff) -> list[str]:
    """The type and note of a unit when they differ, as ``A: ...`` / ``B: ...`` lines."""
    if ud.a is None or ud.b is None:
        return []
    out = []
    if "type" in ud.changes:
        out += [f"{d.a_name}: {ud.a.type}", f"{d.b_name}: {ud.b.type}"]
    if "note" in ud.changes:
        out += [f"{d.a_name}: {ud.a.note or '(no note)'}", f"{d.b_name}: {ud.b.note or '(no note)'}"]
    return out


RIGHT = (False, True, True, True, True, True, False)


def _row(cells: list[str], widths: list[int]) -> str:
    parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, RIGHT, strict=True)]
    return (" " * GAP).join(parts).rstrip()


def _heading(bd: BlockDiff, d: Diff, width: int) -> list[Line]:
    if bd.a_title == bd.b_title:
        text = f"{bd.path}  {bd.a_title}"
    else:
        text = f"{bd.path}  {d.a_name}: {bd.a_title or '(absent)'} | {d.b_name}: {bd.b_title or '(absent)'}"
    text += f"  (params {_delta(bd.a_params, bd.b_params)})" if bd.a_params != bd.b_params else ""
    return [(line, "bold cyan") for line in _wrap(text, width)]


def _stacked(cells: list[str], d: Diff, width: int) -> list[str]:
    """A unit row too wide for ``width``: the path and the change, then A and B on lines of their own."""
    head = f"{cells[0]}  params {cells[5]}" + (f"  {cells[6]}" if cells[6] else "")
    return [*_wrap(head, width), *_wrap(f"{d.a_name}: {cells[1]} {cells[2]}".rstrip(), width, "      "),
            *_wrap(f"{d.b_name}: {cells[3]} {cells[4]}".rstrip(), width, "      ")]


def diff_lines(d: Diff, width: int = 100, changed_only: bool = False) -> list[Line]:
    """(text, style) lines of the comparison at ``width`` columns: title, summary, then the blocks."""
    out: list[Line] = [(line, "bold") for line in _wrap(f"{d.a_name} vs {d.b_name}: {_side(d, 'a')} | {_side(d, 'b')}",
                                                         width)]
    out += [(line, "green") for line in _wrap(d.summary, width)] + [("", "")]
    head = ["block / unit", f"{d.a_name} ch", "size", f"{d.b_name} ch", "size", "params B-A", ""]
    body = [(bd, ud, _cells(ud, bd.path)) for bd in d.blocks for ud in bd.units if ud.changes or not changed_only]
    widths = [max(len(r[k]) for r in [head] + [c for _, _, c in body]) for k in range(len(head))]
    fits = sum(widths) + GAP * (len(widths) - 1) <= width
    out.append((_row(head, widths) if fits else "block / unit  (each row: A's and B's channels and size)", "bold"))
    out.append(("-" * min(width, sum(widths) + GAP * (len(widths) - 1)), "dim"))
    shown = ""
    for bd, ud, cells in body:
        if bd.path != shown:
            shown = bd.path
            out += _heading(bd, d, width)
        style = "" if not ud.changes else "yellow"
        out += [(line, style) for line in ([_row(cells, widths)] if fits else _stacked(cells, d, width))]
        out += [(line, "dim") for text in _folded(ud, d) for line in _wrap(text, width, "      ")]
    total = (f"params: {d.a.params:,} ({d.a_name}) vs {d.b.params:,} ({d.b_name}),"
             f" difference {_delta(d.a.params, d.b.params)}")
    out += [("", "")] + [(line, "bold") for line in _wrap(total, width)]
    return out


def _side(d: Diff, which: str) -> str:
    t = d.a if which == "a" else d.b
    return f"{t.family} {t.model}, input {input_text(t)}"


def diff_text(d: Diff, width: int = 100, changed_only: bool = False) -> str:
    """The comparison as plain text."""
    return "\n".join(text for text, _ in diff_lines(d, width, changed_only)) + "\n"


def render_diff(d: Diff, width: int = 100, changed_only: bool = False) -> Group:
    """A rich renderable of the comparison (``unetviz.cli`` prints it)."""
    from rich.console import Group
    from rich.text import Text

    return Group(*(Text(text, style=style, no_wrap=True) for text, style in diff_lines(d, width, changed_only)))
