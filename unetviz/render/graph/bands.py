"""Columns and resolution bands of the layer diagram: the U laid out left to right.

Every unit goes into a column: the encoder's levels from left to right, the bottleneck, the decoder's
levels from right to left, the conditioning (time embedding, context) leftmost. A column starts at
its level's band, so the columns step down to the bottleneck and back up: the U. The level of a unit
is counted from its input size (a change of 1.5x or more along the first dimension is a new level),
so a family with unpadded convolutions (Ronneberger's 572, 570, 568, ...) still gets one level per
pooling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.records import Size, Trace, Unit, numel
from ...core.records import fmt_size as fmt
from .flow import Flow
from .layout import build_layout

STEP = 1.5
"""Ratio of sizes (first spatial dimension) that starts a new level."""


@dataclass
class Column:
    phase: str
    """cond, enc, mid or dec."""
    band: int
    size: str
    groups: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        word = {"cond": "conditioning", "enc": "encoder", "mid": "bottleneck", "dec": "decoder"}[self.phase]
        return word if self.phase == "cond" else f"{word} · {self.size}"


def _levels(sizes: list[Size | None]) -> list[int]:
    """Level per entry: +1 when the size shrinks by STEP or more from the level's first size, -1 when
    it grows; vector entries (None) keep the level before them."""
    level, ref, out = 0, 0, []
    for s in sizes:
        if s:
            if ref and s[0] * STEP <= ref:
                level, ref = level + 1, s[0]
            elif ref and s[0] >= ref * STEP:
                level, ref = max(0, level - 1), s[0]
            ref = ref or s[0]
        out.append(level)
    return out


def _size_of(trace: Trace, path: str, unit: Unit | None) -> Size | None:
    if unit is not None:
        return unit.in_size
    x = next((x for x in trace.layers if x.path == path), None)
    return None if x is None else x.in_size


def _sizes(trace: Trace, path: str, unit: Unit | None) -> list[Size]:
    """Every map size a group reads or writes, of any rank (the smallest names the bottleneck)."""
    if unit is not None:
        return [s for s in (unit.in_size, unit.out_size) if s]
    return [s for x in trace.layers if x.path == path for s in (x.in_size, x.out_size) if s]


def columns(trace: Trace, flow: Flow) -> tuple[list[Column], list[str]]:
    """The columns left to right, and the label of each band (top to bottom)."""
    lay = build_layout(trace, "units")
    phase = {it.path: ph for ph, items in (("enc", lay.enc), ("mid", lay.mid), ("dec", lay.dec)) for it in items}
    main = [(g, u) for g, u, _ in flow.groups if g in phase]
    levels = dict(zip([g for g, _ in main], _levels([_size_of(trace, g, u) for g, u in main]), strict=True))
    # the bottleneck one band below the deepest encoder or decoder column: its own units may reach a level
    # further down (nnU-Net's last stage strides inside the bottleneck), which would leave an empty band
    deepest = max((lv for g, lv in levels.items() if phase[g] != "mid"), default=max(levels.values(), default=0))
    bottom = min((s for g, u in main if phase[g] == "mid" for s in _sizes(trace, g, u)), key=numel, default=None)
    cond = Column("cond", 0, "", [g for g, _, _ in flow.groups if g not in phase])
    cols: list[Column] = [cond]
    bands: dict[int, str] = {}
    for g, u in main:
        ph = phase[g]
        band = deepest + 1 if ph == "mid" else levels[g]
        size = fmt(bottom if ph == "mid" and bottom else _size_of(trace, g, u))
        if cols[-1].phase != ph or cols[-1].band != band:
            cols.append(Column(ph, band, size))
        cols[-1].groups.append(g)
        if ph != "dec" or band not in bands:
            bands.setdefault(band, f"{size}" if ph != "mid" else f"{size} bottleneck")
    return cols, [bands.get(b, "") for b in range(max(bands, default=0) + 1)]
