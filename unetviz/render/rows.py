"""The rows every tabular renderer shows: block headings, blocks, units, layers and concat steps.

A row holds its records (the layers it spans, the concat it is); the columns in ``columns.py`` make
every cell from them. The concat arithmetic is worded here, once:
``1920 = 1280 (previous, up_blocks.1.attentions.1) + 640 (skip #6 from down_blocks.1.downsamplers.0, 16x16)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..checkpoints.keymaps import block_id, original_names
from ..core.errors import bad_value
from ..core.records import Concat, Layer, Size, Skip, Trace, Unit, fmt_size, within

DEPTHS = ("units", "layers", "blocks")
"""``--depth`` values; the first is the default (one screen of SD 1.5 with every concat)."""
RowKind = Literal["heading", "block", "unit", "layer", "concat"]


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of a table."""

    kind: RowKind
    """``heading`` (a block's title line), ``block`` (a block summed up, ``--depth blocks``), ``unit``,
    ``layer`` or ``concat`` (a ``torch.cat`` step before its consumer)."""
    path: str
    """The full module path (a concat's is its consumer's)."""
    parent: str = ""
    """The heading or unit the row sits under; tables show ``path`` relative to it."""
    index: int | None = None
    """Step number: position in ``Trace.layers`` or ``Trace.units``."""
    type: str = ""
    in_channels: int | None = None
    out_channels: int | None = None
    in_size: Size | None = None
    out_size: Size | None = None
    tokens: int | None = None
    layers: tuple[Layer, ...] = ()
    """The layers the row spans: quantities (params, ...) are summed over them."""
    concat: Concat | None = None
    pushes: tuple[int, ...] = ()
    """Skip indices pushed by this row's output."""
    block_id: str = ""
    """The LoRA block name (IN04, MID, OUT11) of a Stable Diffusion U-Net's module, else empty."""
    note: str = ""


def relative(path: str, parent: str) -> str:
    """``path`` below ``parent`` (``resnets.0`` under ``down_blocks.1``), or whole."""
    return path[len(parent) + 1:] if parent and path.startswith(parent + ".") else path


def skip_fate(s: Skip) -> str:
    """What became of a skip-stack entry, in the words every skip table uses."""
    if s.to is not None:
        return s.to
    if s.taken is not None:
        return f"{s.taken} takes it, {'nothing to concatenate' if s.empty else 'unused'}"
    return "(never popped)"


def skip_width(s: Skip) -> tuple[str, str]:
    """(channels, size) cells of a skip-stack entry; an empty entry is ``None``."""
    return ("-", "None") if s.empty else (str(s.channels), fmt_size(s.size))


def concat_terms(trace: Trace, c: Concat) -> str:
    """``1920 = 1280 (previous, up_blocks.1.attentions.1) + 640 (skip #6 from down_blocks.1.downsamplers.0, 16x16)``."""
    units = {s.index: s.unit for s in trace.skips}
    parts = []
    for op in c.inputs:
        if op.skip is not None:
            parts.append(f"{op.channels} (skip #{op.skip} from {units.get(op.skip, op.source)},"
                         f" {fmt_size(op.size)})")
        elif op.source == "input":
            parts.append(f"{op.channels} (input)")
        else:
            parts.append(f"{op.channels} (previous, {op.source})")
    crop = f"; skip cropped {fmt_size(c.crop[0])} -> {fmt_size(c.crop[1])}" if c.crop else ""
    return f"{c.channels} = " + " + ".join(parts) + crop


def _concat_row(trace: Trace, c: Concat, parent: str) -> Row:
    return Row(kind="concat", path=c.consumer, parent=parent, type="torch.cat", out_channels=c.channels,
               in_size=c.size, out_size=c.size, concat=c, note=concat_terms(trace, c))


def _pushes(trace: Trace) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for s in trace.skips:
        out[s.unit] = (*out.get(s.unit, ()), s.index)
    return out


def _unit_row(trace: Trace, j: int, u: Unit, pushes: dict[str, tuple[int, ...]], ids: dict[str, str]) -> Row:
    return Row(kind="unit", path=u.path, parent=u.block if u.block != u.path else "", index=j, type=u.type,
               in_channels=u.in_channels, out_channels=u.out_channels, in_size=u.in_size, out_size=u.out_size,
               layers=trace.layers[u.first:u.last], pushes=pushes.get(u.path, ()), block_id=ids.get(u.path, ""),
               note=u.note)


def _layer_row(i: int, x: Layer, parent: str, pushes: tuple[int, ...], ids: dict[str, str]) -> Row:
    bits = []
    if x.kernel is not None:
        bits.append(f"k{fmt_size(x.kernel)}" + (f" s{fmt_size(x.stride)}" if x.stride and max(x.stride) > 1 else ""))
    if x.note:  # the token count is the size column's ("4096 tok"), not repeated here
        bits.append(x.note)
    return Row(kind="layer", path=x.path, parent=parent, index=i, type=x.type, in_channels=x.in_channels,
               out_channels=x.out_channels, in_size=x.in_size, out_size=x.out_size, tokens=x.tokens, layers=(x,),
               pushes=pushes, block_id=ids.get(x.path, ""), note=", ".join(bits))


def block_ids(trace: Trace) -> dict[str, str]:
    """Module path -> LoRA block name, for the models that have the original naming."""
    return {path: bid for path, original in original_names(trace).items() if (bid := block_id(original))}


def build_rows(trace: Trace, depth: str = "units") -> list[Row]:
    """Rows in forward order: a heading where each block begins, the concats before their consumers."""
    if depth not in DEPTHS:
        raise bad_value("--depth", depth, DEPTHS)
    if depth == "blocks":
        return block_rows(trace)
    pushes = _pushes(trace)
    ids = block_ids(trace)
    concat_at: dict[int, list[Concat]] = {}
    for c in trace.concats:
        concat_at.setdefault(c.at, []).append(c)
    titles = dict(trace.blocks)
    rows: list[Row] = []
    block = None
    for j, u in enumerate(trace.units):
        heading = u.block if u.block in titles else ""
        if u.block != block:
            block = u.block
            if heading:
                rows.append(Row(kind="heading", path=heading, type=titles[heading]))
        # a concat inside a unit (the 2015 U-Net crops and concatenates within its up step) precedes it
        for at in sorted(k for k in concat_at if k < max(u.last, u.first + 1)):
            rows.extend(_concat_row(trace, c, heading) for c in concat_at.pop(at))
        if depth == "units":
            rows.append(_unit_row(trace, j, u, pushes, ids))
            continue
        single = u.last - u.first == 1 and trace.layers[u.first].path == u.path
        if not single:  # the unit's own line, its layers indented under it
            rows.append(Row(kind="heading", path=u.path, parent=heading, type=u.type, note=u.note))
        for i in range(u.first, u.last):
            last = i == u.last - 1
            rows.append(_layer_row(i, trace.layers[i], heading if single else u.path,
                                   pushes.get(u.path, ()) if last else (), ids))
    for rest in concat_at.values():  # a concat after the last unit (the trace failed right after it)
        rows.extend(_concat_row(trace, c, "") for c in rest)
    return rows


def block_rows(trace: Trace) -> list[Row]:
    """One row per block: units grouped by their heading, so the rows partition the model (head and
    tail steps such as conv_in or conv_out are blocks of their own)."""
    titles = dict(trace.blocks)
    pushes = _pushes(trace)
    groups: dict[str, list[Unit]] = {}
    for u in trace.units:
        groups.setdefault(u.block, []).append(u)
    rows = []
    for block, units in groups.items():
        first, last = units[0], units[-1]
        pushed = tuple(i for u in units for i in pushes.get(u.path, ()))
        cats = sum(1 for c in trace.concats if any(within(c.consumer, u.path) for u in units))
        note = (f"{len(units)} units" if len(units) > 1 else "") + (f", {cats} concats" if cats else "")
        rows.append(Row(kind="block", path=block, type=titles.get(block, first.type), in_channels=first.in_channels,
                        out_channels=last.out_channels, in_size=first.in_size, out_size=last.out_size,
                        layers=trace.layers[first.first:last.last], pushes=pushed, note=note))
    return rows
