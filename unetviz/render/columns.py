"""The table's columns, declared once: every format (terminal, Markdown, HTML, CSV) loops over them.

A column knows its title, alignment, how a cell is made from a row, and its priority when the
terminal is narrow: columns with a higher ``priority`` number are dropped first, and a dropped
``foldable`` column (the note, the skip) is printed under its row instead, so nothing is ever cut.
Per-layer quantities come from ``unetviz.core.quantities``: a new quantity is a new column with no edit here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..core.quantities import LAYER_QUANTITIES, Quantity
from ..core.records import Size, fmt_size
from .rows import Row, relative


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of every table format."""

    name: str
    """Machine name (CSV header, HTML class)."""
    title: str
    """Heading shown to people."""
    align: Literal["left", "right"]
    cell: Callable[[Row], str]
    """The cell shown to people."""
    priority: int
    """0: always shown; higher numbers are dropped first when the width is short."""
    foldable: bool = False
    """When dropped, printed under the row (wrapped) instead of lost."""
    fields: tuple[tuple[str, Callable[[Row], str]], ...] = ()
    """Machine-readable fields for CSV (default: one field, ``name`` = ``cell``)."""


def _index(r: Row) -> str:
    return "" if r.index is None else str(r.index)


def _path(r: Row) -> str:
    return ("cat -> " if r.kind == "concat" else "") + relative(r.path, r.parent)


def _channels(r: Row) -> str:
    if r.concat is not None:
        return " + ".join(str(op.channels) for op in r.concat.inputs) + f" = {r.concat.channels}"
    if r.in_channels is None or r.out_channels is None:
        return ""
    return f"{r.in_channels} -> {r.out_channels}"


def _sizes(a: Size | None, b: Size | None, tokens: int | None) -> str:
    if a is None and b is None:
        return f"{tokens} tok" if tokens is not None else ""
    return fmt_size(a) if a == b else f"{fmt_size(a)} -> {fmt_size(b)}"


def _size(r: Row) -> str:
    return "" if r.kind == "heading" else _sizes(r.in_size, r.out_size, r.tokens)


def _skip(r: Row) -> str:
    if r.concat is not None:
        return ", ".join(f"pop #{op.skip}" for op in r.concat.inputs if op.skip is not None)
    if len(r.pushes) > 2 and list(r.pushes) == list(range(r.pushes[0], r.pushes[-1] + 1)):
        return f"push #{r.pushes[0]}-#{r.pushes[-1]}"
    return ", ".join(f"push #{k}" for k in r.pushes)


def _quantity(q: Quantity) -> Callable[[Row], str]:
    def cell(r: Row) -> str:
        return f"{sum(q.of_layer(x) for x in r.layers):,}" if r.layers else ""

    return cell


def _quantity_raw(q: Quantity) -> Callable[[Row], str]:
    def cell(r: Row) -> str:
        return str(sum(q.of_layer(x) for x in r.layers)) if r.layers else ""

    return cell


def _opt(v: object) -> str:
    return "" if v is None else str(v)


COLUMNS: tuple[Column, ...] = (
    Column(name="index", title="#", align="right", cell=_index, priority=5),
    Column(name="path", title="path", align="left", cell=_path, priority=0,
           fields=(("kind", lambda r: r.kind), ("path", lambda r: r.path))),
    Column(name="type", title="type", align="left", cell=lambda r: r.type, priority=4),
    Column(name="channels", title="channels", align="right", cell=_channels, priority=0,
           fields=(("in_channels", lambda r: _opt(r.in_channels)), ("out_channels", lambda r: _opt(r.out_channels)))),
    Column(name="size", title="size", align="right", cell=_size, priority=1,
           fields=(("in_size", lambda r: fmt_size(r.in_size) if r.in_size else ""),
                   ("out_size", lambda r: fmt_size(r.out_size) if r.out_size else ""),
                   ("tokens", lambda r: _opt(r.tokens)))),
    *(Column(name=q.name, title=q.title, align="right", cell=_quantity(q), priority=q.priority,
             fields=((q.name, _quantity_raw(q)),)) for q in LAYER_QUANTITIES),
    Column(name="block_id", title="lora", align="left", cell=lambda r: r.block_id, priority=6),
    Column(name="skip", title="skip", align="left", cell=_skip, priority=3, foldable=True),
    Column(name="note", title="note", align="left", cell=lambda r: r.note, priority=7, foldable=True),
)


def csv_fields(columns: tuple[Column, ...] = COLUMNS) -> list[tuple[str, Callable[[Row], str]]]:
    return [f for c in columns for f in (c.fields or ((c.name, c.cell),))]
