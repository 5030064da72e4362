"""The rows every tabular renderer shows: block headings, layers or units, and concat steps.

A concat row spells out its arithmetic the way a learner asks for it:
``1920 = 1280 (previous) + 640 (skip #6 from down_blocks.1.downsamplers.0, 16x16)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import bad_value
from ..records import Concat, Trace
from ..tracer import fmt_size

DEPTHS = ("layers", "units", "blocks")


@dataclass(frozen=True)
class Row:
    kind: str
    """``block`` (a heading), ``layer``, ``unit`` or ``concat``."""
    path: str
    type: str
    in_channels: str
    out_channels: str
    in_size: str
    out_size: str
    params: int | None
    skip: str
    """``push #3`` on the row that produced a skip, ``pop #6 <- unit`` on a concat."""
    note: str
    index: int | None = None
    """Step number: position in ``Trace.layers`` or ``Trace.units``."""


def concat_sum(c: Concat) -> str:
    """``1920 = 1280 (previous) + 640 (skip #6 from down_blocks.1.downsamplers.0, 16x16)``."""
    parts = []
    for op in c.inputs:
        if op.skip is not None:
            parts.append(f"{op.channels} (skip #{op.skip} from {op.source}, {fmt_size(op.size)})")
        elif op.source == "input":
            parts.append(f"{op.channels} (input)")
        else:
            parts.append(f"{op.channels} (previous, {op.source})")
    return f"{c.channels} = " + " + ".join(parts)


def _concat_row(trace: Trace, c: Concat) -> Row:
    pops = [op for op in c.inputs if op.skip is not None]
    units = {s.index: s.unit for s in trace.skips}
    skip = ", ".join(f"pop #{op.skip} <- {units.get(op.skip, op.source) if op.skip is not None else ''}"
                     for op in pops)
    crop = f"; skip cropped {fmt_size(c.crop[0])} -> {fmt_size(c.crop[1])}" if c.crop else ""
    arith = " + ".join(str(op.channels) for op in c.inputs) + f" = {c.channels}"
    return Row("concat", f"cat -> {c.consumer}", "torch.cat", arith, str(c.channels), fmt_size(c.size),
               fmt_size(c.size), None, skip, concat_sum(c) + crop)


def build_rows(trace: Trace, depth: str = "layers") -> list[Row]:
    """Rows in forward order, with a heading row where each block begins."""
    if depth not in DEPTHS:
        raise bad_value("--depth", depth, DEPTHS)
    pushes: dict[str, list[int]] = {}
    for s in trace.skips:
        pushes.setdefault(s.unit, []).append(s.index)
    concat_at: dict[int, list[Concat]] = {}
    for c in trace.concats:
        concat_at.setdefault(c.at, []).append(c)
    headings = dict(trace.blocks)
    rows: list[Row] = []
    current_block = None

    def heading(block: str) -> None:
        nonlocal current_block
        if block != current_block:
            current_block = block
            if block in headings:
                rows.append(Row("block", block, headings[block], "", "", "", "", None, "", ""))

    if depth == "layers":
        last_of_unit = {u.last - 1: u.path for u in trace.units}
        unit_block = {u.path: u.block for u in trace.units}
        for i, layer in enumerate(trace.layers):
            heading(unit_block.get(layer.unit, ""))
            rows.extend(_concat_row(trace, c) for c in concat_at.pop(i, []))
            unit = last_of_unit.get(i)
            pushed = pushes.get(unit, []) if unit else []
            rows.append(Row("layer", layer.path, layer.type, str(layer.in_channels), str(layer.out_channels),
                            fmt_size(layer.in_size), fmt_size(layer.out_size), layer.params,
                            ", ".join(f"push #{k}" for k in pushed), _layer_note(layer.kernel, layer.stride,
                                                                               layer.note, layer.tokens), i))
    else:
        for j, u in enumerate(trace.units):
            heading(u.block)
            for at in [k for k in concat_at if k <= u.first]:
                rows.extend(_concat_row(trace, c) for c in concat_at.pop(at))
            rows.append(Row("unit", u.path, u.type, str(u.in_channels), str(u.out_channels), fmt_size(u.in_size),
                            fmt_size(u.out_size), u.params, ", ".join(f"push #{k}" for k in pushes.get(u.path, [])),
                            u.note, j))
    for rest in concat_at.values():  # a concat after the last layer (the trace failed right after it)
        rows.extend(_concat_row(trace, c) for c in rest)
    if depth == "blocks":
        rows = _collapse(rows)
    return rows


def _layer_note(kernel: tuple[int, ...] | None, stride: tuple[int, ...] | None, note: str,
                tokens: int | None) -> str:
    bits = []
    if kernel is not None:
        k = fmt_size(kernel)
        bits.append(f"k{k}" + (f" s{fmt_size(stride)}" if stride and max(stride) > 1 else ""))
    if tokens is not None:
        bits.append(f"{tokens} tokens")
    if note:
        bits.append(note)
    return ", ".join(bits)


def _collapse(rows: list[Row]) -> list[Row]:
    """One row per block: its first input, its last output, params summed, skips listed."""
    out: list[Row] = []
    group: list[Row] = []

    def flush() -> None:
        if not group:
            return
        head, body = group[0], [r for r in group[1:] if r.kind != "concat"]
        if head.kind != "block" or not body:
            out.extend(group)
            return
        skips = ", ".join(r.skip for r in group if r.skip)
        out.append(Row("block", head.path, head.type, body[0].in_channels, body[-1].out_channels, body[0].in_size,
                       body[-1].out_size, sum(r.params or 0 for r in body), skips,
                       f"{len(body)} units"))

    for r in rows:
        if r.kind == "block":
            flush()
            group = [r]
        elif group:
            group.append(r)
        else:
            out.append(r)
    flush()
    return out
