"""What every diagram shares: fonts, colours of the special edges, the legend, label escaping.

Kind colours and legend labels come from ``unetviz.core.kinds`` (the one vocabulary), never from here.
"""

from __future__ import annotations

import html

from ...core.kinds import KIND_NAMES, KINDS

FONT = "Helvetica"
SKIP_COLOR = "#7c3aed"
FAIL_COLOR = "#dc2626"
FAIL_FILL = "#fecaca"
CONTEXT_COLOR = "#0d9488"
TEMB_COLOR = "#db2777"
NOTE_MAX = 60


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def kind_color(kind: str) -> str:
    """The fill of a unit or layer of ``kind`` (white for a kind outside the vocabulary)."""
    style = KINDS.get(kind)  # type: ignore[call-overload]
    return "#ffffff" if style is None else style.color


def legend_entries() -> list[tuple[str, str]]:
    """(label, colour) once per legend label, in the vocabulary's order."""
    seen: dict[str, str] = {}
    for name in KIND_NAMES:
        style = KINDS[name]
        seen.setdefault(style.label, style.color)
    return list(seen.items())


def _swatch(color: str) -> str:
    return f'<TD BGCOLOR="{color}" WIDTH="14"> </TD>'


def _arrow(color: str, style: str = "") -> str:
    glyph = {"dashed": "- - ▸", "dotted": "···▸"}.get(style, "──▸")
    return f'<TD><FONT COLOR="{color}">{glyph}</FONT></TD>'


def legend(flow: bool = False, scale: list[tuple[str, str]] | None = None) -> str:
    """The legend table: every kind's colour (or, for a heat map, its ``scale``: (label, colour) steps),
    the skip edge, and (layer detail) the other inputs."""
    rows = [(_swatch(color), label) for label, color in (scale if scale is not None else legend_entries())]
    rows.append((_arrow(SKIP_COLOR, "dashed"), "skip #index ch size"))
    if flow:
        rows.append((_arrow(CONTEXT_COLOR), "context (keys / values)"))
        rows.append((_arrow(TEMB_COLOR, "dotted"), "time embedding added here"))
        rows.append(("<TD>⊕</TD>", "sum of a residual"))
    rows.append((_swatch(FAIL_FILL), "fails here"))
    cells = "".join(f'<TR>{cell}<TD ALIGN="LEFT">{esc(label)}</TD></TR>' for cell, label in rows)
    title = '<TR><TD COLSPAN="2"><B>legend</B></TD></TR>'
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">{title}{cells}</TABLE>>'

